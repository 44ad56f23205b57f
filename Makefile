# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

# requirements.lock pins every package, torch==2.13.0 included (the CPU build on this machine).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/relnet reproduce sort-of-clevr

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/pairs.py
	$(BIN)/python benchmarks/sort_of_clevr_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
