# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned, in the same command, so nothing pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hwnas demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:hypothesispytest tests

clean:
	rm -rf $(VENV) runs
