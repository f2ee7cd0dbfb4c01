# vidtempo: `make demo` runs the main job end to end, `make test` runs the tests, `make bench` the benchmarks.
# Each target creates or refreshes .venv first; a second run with nothing changed installs nothing.
# GPU users: `make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"`.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
TORCH_STAMP := $(VENV)/.torch-$(shell printf '%s' '$(TORCH)' | md5sum | cut -c1-12)
INSTALL_STAMP := $(VENV)/.vidtempo-installed
PYTEST_ARGS ?= -n 2 --dist loadfile --durations 15
DEMO_ARGS ?=

.PHONY: install test lint demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(TORCH_STAMP): | $(PY)
	$(PY) -m pip install -q $(TORCH)
	rm -f $(VENV)/.torch-* && touch $@

$(INSTALL_STAMP): pyproject.toml $(TORCH_STAMP)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(INSTALL_STAMP)

lint: $(INSTALL_STAMP)
	$(VENV)/bin/ruff check .

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

demo: $(INSTALL_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m vidtempo.training.demo $(DEMO_ARGS)

bench: $(INSTALL_STAMP)
	HF_HUB_OFFLINE=1 $(PY) tests/benchmarks/run_all.py

clean:
	rm -rf $(VENV) .cache build *.egg-info
