# The two commands of the README: `make run` (engine on the seeds) and `make test` (the whole suite).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SEMSEARCH := $(VENV)/bin/semsearch
# Two stamps: the project alone (what `make run` needs), then the extras the tests and the gates need besides
# (test: pytest, ruff, mypy...; milvus and ray: the servers the tests start). `make test` after `make run` only adds
# the extras; a changed pyproject.toml redoes both.
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test

.PHONY: install install-test run test test-quick lint browser clean

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch lies on this machine's disk; asking for it first keeps pip from pulling a CUDA build.
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e .
	touch $(INSTALLED)

$(INSTALLED_TEST): $(INSTALLED)
	$(PYTHON) -m pip install --quiet -e '.[test,milvus,ray]'
	touch $(INSTALLED_TEST)

install: $(INSTALLED)

install-test: $(INSTALLED_TEST)

run: install
	$(SEMSEARCH) serve

browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

test: install-test browser
	$(PYTHON) -m pytest -ra

test-quick: install-test
	$(PYTHON) -m pytest -m 'not slow' -x

clean:
	rm -rf $(VENV) indexes *.egg-info
