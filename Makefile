# Every entry point does its own set-up: `make sim` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# lora-packet, the independent LoRaWAN implementation the PHY-log check runs (node + npm).
LORA_CHECK := tools/lora-packet-check
NPM_STAMP  := $(LORA_CHECK)/node_modules/.installed

.PHONY: setup sim test test-slow fuzz bench clean

setup: $(STAMP) $(NPM_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): $(LORA_CHECK)/package-lock.json
	npm ci --prefix $(LORA_CHECK) --no-audit --no-fund
	touch $(NPM_STAMP)

sim: setup
	$(BIN)/nodectl simulate --kind climate --hours 24 --out sim-out

# Two workers, one per core; a test file stays on one worker (its module fixtures run once).
test: setup
	$(BIN)/pytest -q -n 2 --dist loadfile

# The long runs (a simulated month of a glass node): not part of `make test`.
test-slow: setup
	$(BIN)/pytest -q -s -m slow

# Every fuzz target with at least 100,000 inputs (a quick version runs in `make test`);
# a target stays on one of two workers (docs/fuzzing.md).
fuzz: setup
	FUZZ_EXAMPLES=100000 $(BIN)/pytest -q -n 2 --dist loadfile tests/fuzz

# The benchmarks (docs/benchmarks.md): writes bench/results.json and bench/results.md.
# Not part of `make test`; about 10-15 minutes on 2 cores.
bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) sim-out build
