# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The tested CPU build; pyproject.toml states the supported range.
TORCH_PIN ?= torch==2.13.0

.PHONY: run test venv bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## Train on the bundled sample corpus in the TUI.
run: venv
	$(VENV)/bin/lstmtui

## Run the whole test suite.
test: venv
	$(PY) -m pytest -q

bench: venv
	$(VENV)/bin/lstmtui bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
