# vidtempo: `make demo` runs the main job end to end, `make test` runs the tests, `make bench` the benchmarks.
# Every target installs into .venv from the committed lock (requirements/lock.txt, exact versions, CPU torch).
# The venv is rebuilt when the lock changes, vidtempo re-installed when pyproject.toml changes; nothing else
# triggers an install. `make lock` re-resolves the lock from pyproject.toml; `make test-latest` runs the suite
# against the newest releases pyproject.toml allows (a drift check, not part of CI).
# GPU users: `make test TORCH="torch==2.13.0 --index-url <their CUDA wheel index>"` swaps the torch build.

PYTHON ?= python3
VENV ?= .venv
LATEST_VENV ?= .venv-latest
LOCK := requirements/lock.txt
TORCH ?=
PY := $(VENV)/bin/python
LOCK_STAMP := $(VENV)/.lock-installed
INSTALL_STAMP := $(VENV)/.vidtempo-installed
PYTEST_ARGS ?= -n 2 --dist loadfile --durations 15
DEMO_ARGS ?=
UV_VERSION := 0.13.9
FIND_LINKS := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),)

.PHONY: install test lint format demo demo-paper bench lock test-latest clean

# The locked environment: a fresh venv with exactly the lock's versions (--no-deps: the lock is complete).
$(LOCK_STAMP): $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-deps --require-hashes -r $(LOCK)
	$(if $(TORCH),$(PY) -m pip install -q $(TORCH),)
	touch $@

$(INSTALL_STAMP): pyproject.toml $(LOCK_STAMP)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(INSTALL_STAMP)

lint: $(INSTALL_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALL_STAMP)
	$(VENV)/bin/ruff format .

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

demo: $(INSTALL_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m vidtempo.cli.demo $(DEMO_ARGS)

# The paper's claims: benchmark seeds x training seeds x arms, paired bootstrap intervals (docs/demo.md).
# Every arm (loss, bank, MoCo, aggregators, iMAC, TCA_v) at 3 benchmark seeds x 3 training seeds: 81 runs,
# about 1.5 h on a quiet 2-core machine; `DEMO_PAPER_ARGS="... --arm-train-seeds 0"` runs the arms at one seed.
DEMO_PAPER_ARGS ?= --output outputs/paper --num-sources 24 --num-distractors 30 --seconds 20 26 \
	--benchmark-seeds 0 1 2 --train-seeds 0 1 2 --arms main tcav triplet infonce moco imac lstm gru netvlad
demo-paper: $(INSTALL_STAMP)
	HF_HUB_OFFLINE=1 nice -n 10 $(PY) -m vidtempo.cli.demo_paper $(DEMO_PAPER_ARGS)

bench: $(INSTALL_STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

# Re-resolve the lock from pyproject.toml (its `dev` extra, which includes `offline` and `milvus`) with uv.
lock:
	$(PYTHON) -m pip install -q "uv==$(UV_VERSION)"
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in --extra dev \
		--override requirements/overrides.txt $(FIND_LINKS) --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes --no-header --annotation-style line \
		-o $(LOCK)

# Drift check: resolve the newest versions pyproject.toml allows (uv, ignoring the lock; torch stays the locked
# CPU build: newer builds on the registry are multi-GB CUDA builds), install them into .venv-latest, print the
# versions that differ from the lock, then run the whole suite there.
test-latest:
	$(PYTHON) -m pip install -q "uv==$(UV_VERSION)"
	mkdir -p .cache
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in --extra dev --upgrade \
		--override requirements/overrides.txt $(FIND_LINKS) --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --no-annotate -o .cache/latest.txt
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --no-deps -r .cache/latest.txt
	$(LATEST_VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	@echo "== versions that differ from the lock:"
	@grep -E '^[a-zA-Z0-9_.-]+==' $(LOCK) | cut -d' ' -f1 | sort > .cache/locked.txt
	@sort .cache/latest.txt | grep -E '==' | comm -13 .cache/locked.txt - || true
	HF_HUB_OFFLINE=1 $(LATEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LATEST_VENV) .cache build *.egg-info
