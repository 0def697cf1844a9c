# Two entry points, each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test
demo: $(VENV)/.installed
	$(VENV)/bin/ledger demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@
