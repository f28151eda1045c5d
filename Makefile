# One place to install, run, test and lint cdtt. Every target builds the venv first if needed.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up demo test faults lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: install
	$(BIN)/cdtt up

demo: install
	$(BIN)/cdtt up --demo

test: install
	$(BIN)/python -m pytest

# Every fault case three times, the burst for 60 s; then docs/reliability.md from the figures.
faults: install
	CDTT_FAULT_REPEAT=3 CDTT_FAULT_BURST_SECONDS=60 $(BIN)/python -m pytest tests/faults -m faults
	$(BIN)/python -m tests.faults.report

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services cdtt

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
