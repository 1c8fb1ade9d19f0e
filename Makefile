# Every entry point does its own set-up: `make sim` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup sim test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

sim: setup
	$(BIN)/nodectl simulate --kind climate --hours 24 --out sim-out

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) sim-out build
