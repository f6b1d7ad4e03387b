# Two commands on a fresh machine: `make demo` (audit the bundled example submissions) and
# `make test` (lint, types, the whole test-suite). Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
OUT    ?= out

.PHONY: demo test test-quick lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a CPU build from local disk; a range could pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[torch,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pgolf-audit fixtures/submissions/*/ --format terminal,html,json --out $(OUT) --exit-zero

lint: $(STAMP)
	$(VENV)/bin/ruff check audit rules reference_impl tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -q -n 2

test-quick: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/static_speed.py
	$(PY) bench/reference_eval.py
	$(PY) bench/time_margins.py
	$(PY) bench/accuracy.py
	$(PY) bench/probe_bench.py mutants --static-shapes --json $(OUT)/probe-mutants.json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
