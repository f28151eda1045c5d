# One place to install, run, test and lint cdtt. Every target builds the venv first if needed.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock up demo test faults lint bench clean

install: $(STAMP)

# The venv holds exactly requirements/dev.lock (uv, bootstrapped by pip at the lock's version,
# installs it in seconds), then cdtt itself, editable. Only python3.12 is needed beforehand.
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements/dev.lock)
UV := $(BIN)/uv pip

# vietnamadminunits only lends its data file (commune centres, read with sqlite3 at
# `cdtt units load`): --no-deps keeps out shapely, geopy and the rest its parser needs, which
# is also why it is not in the locks. axe-core (package.json, npm ci) is what the browser
# tests check the dashboard's accessibility with; it is never served.
$(STAMP): pyproject.toml requirements/dev.lock Makefile package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	$(UV) sync --quiet --python $(BIN)/python requirements/dev.lock
	$(UV) install --quiet --python $(BIN)/python --no-deps -e .
	$(UV) install --quiet --python $(BIN)/python --no-deps 'vietnamadminunits==1.0.4'
	npm ci --ignore-scripts --no-audit --no-fund --silent
	touch $(STAMP)

# After changing pyproject.toml's dependencies: pin them again (both locks, every platform).
lock: install
	$(UV) compile --quiet --universal --python-version 3.12 pyproject.toml -o requirements/runtime.lock
	$(UV) compile --quiet --universal --python-version 3.12 --extra dev --extra embedded \
		pyproject.toml -o requirements/dev.lock

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
