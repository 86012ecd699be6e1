# The two set-up commands of glance_ext (see README.md):
#   make demo   a local Glance with the plugins, importing real images
#   make test   everything the tests need, then the unit and functional suites
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_STATE ?= .state/demo

.PHONY: demo demo-down test venv sysdeps sysdeps-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e . -r test-requirements.txt tox

sysdeps:
	tools/install-system-deps.sh

sysdeps-test:
	tools/install-system-deps.sh --test

demo: venv sysdeps
	$(BIN)/python tools/demo.py --state-dir $(DEMO_STATE)

demo-down:
	$(BIN)/glance-ext local-glance down --state-dir $(DEMO_STATE)

test: venv sysdeps-test
	$(BIN)/tox -e pep8,unit,functional

clean:
	-$(BIN)/glance-ext local-glance down --state-dir $(DEMO_STATE) --purge
	rm -rf .tox build *.egg-info
