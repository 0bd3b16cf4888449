# flopgap: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use (or when pyproject.toml is newer than it).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test lint bench clean

help: ## List the targets
	@grep -E '^[a-z0-9]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all]'
	@touch $(STAMP)

demo: $(STAMP) ## Benchmark the built-in model zoo over loopback; print the report, write results/demo.csv
	$(VENV)/bin/flopgap demo --out results

test: $(STAMP) ## Run the test suite
	$(PY) -m pytest

lint: $(STAMP) ## ruff lint + format check + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy agent shared collector bench tools
	$(VENV)/bin/mypy --strict shared agent/probes agent/board/facts

bench: $(STAMP) ## Run every benchmark in bench/ and write bench/RESULTS.md
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,bench]'
	$(PY) -m bench

.PHONY: aarch64 py310
aarch64: $(STAMP) ## The agent's wheel in an arm64 Debian userland under qemu: bench + doctor (root)
	PYTHON=$(abspath $(PY)) tools/aarch64_check.sh results/aarch64

py310: $(STAMP) ## The agent's wheel and its tests on Python 3.10 (pyenv's, or PYTHON310=path)
	PYTHON=$(abspath $(PY)) tools/python310_check.sh results/python310

clean: ## Remove the virtualenv and generated results
	rm -rf $(VENV) results
