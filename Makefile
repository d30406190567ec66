# vitcourse: build the executed book and run every check.
#
#   make book    execute every chapter and build the HTML into _build/html
#   make test    unit tests, notebooks (nbval), exercises (papermill + nbval), book build
#
# Both create the virtual environment first (make setup) if it is missing or stale.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Figures must carry their own HTML to survive in the static book (see _config.yml);
# no chapter may wait on the Hub; fewer threads than cores keeps 2-core runners responsive.
export PLOTLY_RENDERER := notebook
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export MPLBACKEND := Agg
export PATH := $(abspath $(BIN)):$(PATH)
# The checkout's own package comes first, also inside notebook kernels.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

# SKIP_SETUP=1 uses an existing environment as it is (e.g. a shared .venv).
SETUP_DEPS := $(if $(SKIP_SETUP),,$(STAMP))

CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
TEST_OUT := _build/test

.PHONY: help setup book test test-unit test-notebooks test-exercises test-book exercises bench sync-notebooks clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: $(SETUP_DEPS)  ## create .venv and install requirements.txt and vitcourse (idempotent)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

book: setup  ## execute every chapter and build the HTML book into _build/html (warnings are errors)
	$(BIN)/jupyter-book build . --builder html --warningiserror --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

test: setup  ## every check: unit tests, chapter notebooks, exercises, the book build
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-notebooks
	$(MAKE) --no-print-directory test-exercises
	$(MAKE) --no-print-directory test-book

test-unit: setup  ## unit tests of the package and the repository (pairs in sync, set-up cells)
	$(BIN)/python -m pytest tests -q

test-notebooks: setup  ## execute every chapter notebook with nbval (lax: no stored outputs to compare)
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider $(CHAPTERS)

test-exercises: setup  ## TP1: papermill runs the solved notebook, nbval re-runs it and compares outputs
	rm -rf $(TEST_OUT)/exercises && mkdir -p $(TEST_OUT)/exercises
	$(BIN)/python -m papermill exercises/tp1/tp1.ipynb $(TEST_OUT)/exercises/tp1.ipynb \
		--cwd exercises/tp1 -p PROFILE smoke --log-level WARNING
	$(BIN)/python -m pytest -q --nbval -p no:cacheprovider \
		--nbval-sanitize-with exercises/nbval_sanitize.cfg --nbval-cell-timeout 600 \
		$(TEST_OUT)/exercises/tp1.ipynb

test-book: book  ## the book builds with warnings as errors

exercises: setup  ## run the TP1 sweep (patch size x embedding dimension), one papermill run per point
	$(BIN)/vitcourse sweep exercises/tp1/tp1_point.ipynb --out _build/exercises/tp1 \
		--grid PATCH_SIZE=8,16,32,64 --grid EMBED_DIM=8,32,128,512 -p PROFILE=$${PROFILE:-smoke}

bench: setup  ## time our ViT-Ti/S/B against timm's, same weights, CPU (minutes; not part of make test)
	$(BIN)/python benchmarks/bench_vit_vs_timm.py $(BENCH_ARGS)

sync-notebooks: setup  ## regenerate every .ipynb from its .md (and the Colab set-up cells)
	$(BIN)/python -m vitcourse.notebooks sync

clean:  ## remove build outputs (keeps .venv)
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean  ## remove build outputs and .venv
	rm -rf $(VENV)
