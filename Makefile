# Two commands for learners: `make lab` and `make test`; `make tutorial` runs every notebook
# headless. Each sets itself up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest supported TensorFlow/Keras (requirements-compat.txt), for make test-compat.
COMPAT_VENV ?= .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed
COMPAT_NOTEBOOKS ?= notebooks/03_fgsm.ipynb notebooks/08_uncertainty.ipynb
NBVAL_CELL_TIMEOUT ?= 900
TUTORIAL_ARGS ?=

# Notebooks run with their own folder as working directory: make data paths absolute.
ifdef ADVLAB_DATA_DIR
export ADVLAB_DATA_DIR := $(abspath $(ADVLAB_DATA_DIR))
endif
ifdef ADVLAB_CACHE_DIR
export ADVLAB_CACHE_DIR := $(abspath $(ADVLAB_CACHE_DIR))
endif

.PHONY: lab test test-compat tutorial reproduce lint format setup clean

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

# The helpers are installed as the notebooks' Colab cell installs them: `pip install -e .`,
# which brings no pins of its own, on top of the service's packages.
$(COMPAT_STAMP): requirements-compat.txt pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_BIN)/python -m pip install --quiet --upgrade pip
	$(COMPAT_BIN)/python -m pip install --quiet -r requirements-compat.txt
	$(COMPAT_BIN)/python -m pip install --quiet -e .
	$(COMPAT_BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (advlab compat)" > /dev/null
	touch $(COMPAT_STAMP)

## Test the oldest supported TensorFlow/Keras (what a hosted service or an older laptop has):
## load every shipped model through the lab's code, then run notebooks 03 and 08 (smoke
## profile unless ADVLAB_PROFILE is set; COMPAT_NOTEBOOKS="notebooks" runs them all).
test-compat: export ADVLAB_PROFILE ?= smoke
test-compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -m pytest -p no:cacheprovider tests/test_versions.py tests/test_models.py
	$(COMPAT_BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=$(NBVAL_CELL_TIMEOUT) -p no:cacheprovider $(COMPAT_NOTEBOOKS)

## Run every notebook in order (default profile unless ADVLAB_PROFILE is set), then
## rewrite the README's results table, also after a failure (the exit status is kept).
## Options: make tutorial TUTORIAL_ARGS="--only 03 04" (see tools/run_tutorial.py --help);
## DATASET=cifar10 make tutorial sets every notebook's DATASET and renders results/cifar10.json.
tutorial: $(STAMP)
	$(BIN)/python tools/run_tutorial.py $(if $(DATASET),--dataset $(DATASET)) $(TUTORIAL_ARGS); status=$$?; \
	$(BIN)/python tools/render_results.py --dataset $(or $(DATASET),gtsrb) && exit $$status

## Recompute the shipped records of the full-scale experiments (results/records/) whose
## settings or model files changed, in the default profile; up-to-date ones are skipped.
## Options: make reproduce REPRODUCE_ARGS="--only 07" or "--force" (tools/reproduce.py --help).
reproduce: $(STAMP)
	$(BIN)/python tools/reproduce.py $(REPRODUCE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check helpers tests tools benchmarks notebooks
	$(BIN)/ruff format --check helpers tests tools benchmarks

format: $(STAMP)
	$(BIN)/ruff format helpers tests tools benchmarks
	$(BIN)/ruff check --fix helpers tests tools benchmarks notebooks

clean:
	rm -rf $(VENV) $(COMPAT_VENV) build *.egg-info .pytest_cache
