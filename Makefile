# stroke-mlops — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DATA := data/raw/healthcare-dataset-stroke-data.csv
SHARED_DATA := ../shared/data/healthcare-dataset-stroke-data.csv
DATA_SOURCE := https://www.kaggle.com/datasets/fedesoriano/stroke-prediction-dataset
STORE ?= outputs/store

.PHONY: help install hooks data demo test lint format typecheck clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-26s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements/runtime.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@echo "installing the project and its dev tools into $(VENV) (pip's output: $(VENV)/install.log)"
	@{ $(BIN)/pip install --upgrade pip && \
	   $(BIN)/pip install -c requirements/runtime.lock -e '.[dev]'; } > $(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; echo "pip failed: see $(VENV)/install.log"; exit 1; }
	@touch $@

install: $(INSTALLED) ## create .venv and install the project with its dev tools

hooks: install ## run ruff, ruff-format and mypy on every git commit (pre-commit)
	$(BIN)/pre-commit install

data: $(DATA) ## put the dataset in data/raw/ (copied from ../shared/data when present)

$(DATA):
	@mkdir -p $(dir $@)
	@if [ -f "$(SHARED_DATA)" ]; then cp "$(SHARED_DATA)" $@ && echo "copied $(SHARED_DATA) -> $@"; \
	else echo "The dataset is not here. Download healthcare-dataset-stroke-data.csv from"; \
	     echo "  $(DATA_SOURCE)"; echo "and save it as $@ (unchanged), then run make again."; exit 1; fi

demo: install data ## run the whole pipeline locally on the real data, then query the served model
	$(BIN)/stroke-mlops run --data $(DATA) --store $(STORE)
	$(BIN)/stroke-mlops predict-demo --store $(STORE)

test: install data lint typecheck ## lint, type-check and run every test tier that runs here
	$(BIN)/pytest

lint: install ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy over the library, adapters and tests
	$(BIN)/mypy

clean: ## remove local run outputs (keeps .venv and data)
	rm -rf outputs local_outputs gx/uncommitted

# Image, containers and cluster targets live beside this file.
-include mk/*.mk

.PHONY: bench
bench: install data ## pipeline step timings, then the serving benchmark
	$(BIN)/python benchmarks/pipeline_benchmark.py
	$(BIN)/python benchmarks/serving_benchmark.py
