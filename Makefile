# The two commands of the README: `make demo` (the main job) and `make test` (the whole test suite).
# Each creates its own virtualenv in .venv with a CPU build of PyTorch (fast to install).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
QKV_DATA ?= $(abspath ../shared/data)
export QKV_DATA

.PHONY: demo test lint setup clean bench

$(BIN)/qkv: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/qkv

setup: $(BIN)/qkv

# Each family at the size `qkv sweep` chose for the demo's 45-second budget (docs/compare.md, "Width and
# depth, swept"): one layer per Transformer stack, the recurrent models at their defaults.
demo: setup
	$(BIN)/qkv compare --recipes results/sweep/g2p-45s-width-layers/sweep.json --out runs/compare

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/qkv
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/qkv

bench: setup
	$(BIN)/qkv bench attention --out runs/bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
