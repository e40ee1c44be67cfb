# DRGI Lab. `make app` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast lint app demo bench clean-venv

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

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -x -m "not slow and not e2e" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

demo: install
	HF_HUB_OFFLINE=1 $(PY) -m tvr.demo

app: demo
	HF_HUB_OFFLINE=1 $(PY) -m analysis.export --demo
	HF_HUB_OFFLINE=1 $(VENV)/bin/streamlit run app/main.py

bench: install
	$(PY) benchmarks/frame_sampling.py

clean-venv:
	rm -rf $(VENV)
