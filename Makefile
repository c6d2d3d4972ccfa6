# Two set-up commands for a fresh clone:
#   make demo   create .venv, install pinned dependencies, run the demo survey end to end
#   make test   same environment, whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m rapid.science.warmup
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rapid demo

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) rapid-work
