# The two commands of the README: `make run` and `make test`. Each sets itself up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: 2.13.0 is the local CPU build here; an unpinned torch pulls GBs of CUDA.
TORCH := torch==2.13.0

.PHONY: run test test-fast lint format setup setup-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

## make run: the main job, the Lorenz-63 benchmark with the quick preset (≤ 5 min on 2 cores).
run: $(VENV)/.installed
	$(BIN)/dynaforge benchmark lorenz63 --preset quick

## make test: style (ruff check + format check, rules in pyproject.toml), then the test suite
## (slow-marked tests included).
test: lint
	$(BIN)/python -m pytest -q

test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

## make format: apply the formatter and the safe lint fixes.
format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

## make bench: the performance benchmarks against the named peers (ratio tables).
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
