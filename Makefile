# Two commands for learners: `make lab` and `make test`; `make tutorial` runs every notebook
# headless. Each sets itself up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBVAL_CELL_TIMEOUT ?= 900
TUTORIAL_ARGS ?=

# Notebooks run with their own folder as working directory: make data paths absolute.
ifdef ADVLAB_DATA_DIR
export ADVLAB_DATA_DIR := $(abspath $(ADVLAB_DATA_DIR))
endif
ifdef ADVLAB_CACHE_DIR
export ADVLAB_CACHE_DIR := $(abspath $(ADVLAB_CACHE_DIR))
endif

.PHONY: lab test tutorial lint format setup clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (advlab)" > /dev/null
	touch $(STAMP)

setup: $(STAMP)

## Open JupyterLab on the notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## Run every test: lint (ruff check and format), pytest on helpers, then nbval on every
## notebook (smoke profile unless ADVLAB_PROFILE is set).
test: export ADVLAB_PROFILE ?= smoke
test: $(STAMP)
	$(BIN)/ruff check helpers tests tools benchmarks notebooks
	$(BIN)/ruff format --check helpers tests tools benchmarks
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=$(NBVAL_CELL_TIMEOUT) -p no:cacheprovider notebooks

## Run every notebook in order (default profile unless ADVLAB_PROFILE is set), then
## rewrite the README's results table, also after a failure (the exit status is kept).
## Options: make tutorial TUTORIAL_ARGS="--only 03 04" (see tools/run_tutorial.py --help).
tutorial: $(STAMP)
	$(BIN)/python tools/run_tutorial.py $(TUTORIAL_ARGS); status=$$?; \
	$(BIN)/python tools/render_results.py && exit $$status

lint: $(STAMP)
	$(BIN)/ruff check helpers tests tools benchmarks notebooks
	$(BIN)/ruff format --check helpers tests tools benchmarks

format: $(STAMP)
	$(BIN)/ruff format helpers tests tools benchmarks
	$(BIN)/ruff check --fix helpers tests tools benchmarks notebooks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
