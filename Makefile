# The two commands of the README: `make run` (engine on the seeds) and `make test` (the whole suite).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SEMSEARCH := $(VENV)/bin/semsearch
INSTALLED := $(VENV)/.installed

.PHONY: install run test test-quick lint browser clean

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch lies on this machine's disk; asking for it first keeps pip from pulling a CUDA build.
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e '.[test,milvus,ray]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(SEMSEARCH) serve

browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

test: install browser
	$(PYTHON) -m pytest -ra

test-quick: install
	$(PYTHON) -m pytest -m 'not slow' -x

clean:
	rm -rf $(VENV) indexes *.egg-info
