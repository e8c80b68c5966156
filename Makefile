# Two commands do everything on a fresh machine:
#   make demo   -> creates .venv, installs memsim, runs the default simulation into out/demo
#   make test   -> creates .venv, installs memsim with test extras, runs lint, types and tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to a CPU build (never the multi-GB CUDA one) in pyproject's extras.
TEST_EXTRAS := dev,trace,parquet,dask,explore,rl

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# After installing, compile the DRAM controller's numba code once (memsim.dram.warm), so
# the first `memsim dram` starts in about a second instead of compiling for 15-30 s.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	$(BIN)/python -m memsim.dram.warm
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[$(TEST_EXTRAS)]"
	$(BIN)/python -m memsim.dram.warm
	touch $@

demo: $(VENV)/.installed
	$(BIN)/memsim run --out out/demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
