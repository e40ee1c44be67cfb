# DRGI Lab. `make app` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast lint app demo bench bench-quality screenshots clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned (a CPU wheel); everything else after it leaves torch alone.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements.txt -r requirements-dev.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Browser tests (tests/e2e) need Debian chromium: without it they skip, or fail when CI is set
# (`bash .ci/run` sets it).
test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -x -m "not slow and not e2e" $(PYTEST_ARGS)

# Screenshots of every page on the demo runs (after `make app` exported their bundles).
screenshots: install
	DRGI_LAB_E2E_REPO_ROOTS=1 DRGI_LAB_SCREENSHOTS=docs/screenshots HF_HUB_OFFLINE=1 \
		$(PY) -m pytest -q tests/e2e -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .

demo: install
	HF_HUB_OFFLINE=1 $(PY) -m tvr.demo

# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads must not spin against the server on 2 cores.
# `python -m app` binds 127.0.0.1 whatever the current folder (app/__main__.py).
# --demo: first what `make demo` and `python -m analysis.export --demo` do (only what is missing or
# stale), in the server's own process (app/__main__.py).
app: install
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m app --demo

bench: install
	$(PY) benchmarks/frame_sampling.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/search_latency.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/wti_similarity.py
	$(PY) benchmarks/drgi_parameters.py
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/train_step_overhead.py

# DRGI on SynthVTT: every lever on val (3 seeds each, chooses a setting), then base vs DRGI
# (old default) vs DRGI (val-chosen) on test, 5 seeds (about 3 hours on 2 cores; finished runs
# are kept in benchmarks/runs/ and reused).
bench-quality: install
	HF_HUB_OFFLINE=1 $(PY) -m tvr.demo --backbone
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/drgi_val_sweep.py
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/drgi_test_table.py \
		--methods meanp,seqtransf,wti,xclip,tcmgc,gare,dmae
	$(PY) -m tvr.data.synthvtt --out data/synthvtt-large --test 2000 --quiet
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/drgi_test_table.py --methods wti --large

clean-venv:
	rm -rf $(VENV)
