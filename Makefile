# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo reproduce test bench clean

# requirements.lock pins every package, torch==2.13.0 included (the CPU build on this machine).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The demo: the shipped CNN+RN and CNN+MLP on 1,000 freshly generated images (the paper's contrast), then the pixel
# CNN+RN trained from scratch with the `keypoints` preset (two stages) and the state-description RN, each evaluated
# on fresh images and reported in runs/demo/. Measured from a fresh clone on 2 cores (AMD EPYC, session 29): 14.4 min
# in all, install included; the CNN+RN 98.2% relational / 100.0% non-relational after 11.5 min of training (>= 94%
# relational at 7.9 min), the state RN 99.1% / 100% after 1.9 min. (Intel Xeon, session 19: 17.1 min, and the CNN+RN
# was the shipped weights bit for bit.)
demo: install
	$(BIN)/relnet eval sort-of-clevr --checkpoint checkpoints/sort_of_clevr/rn
	$(BIN)/relnet eval sort-of-clevr --checkpoint checkpoints/sort_of_clevr/mlp
	$(BIN)/relnet reproduce sort-of-clevr --preset keypoints --models rn --runs runs/demo --report runs/demo/sort_of_clevr_rn.md --train.threads=2
	$(BIN)/relnet reproduce sort-of-clevr --models rn-state --runs runs/demo --report runs/demo/sort_of_clevr_state.md

# The Sort-of-CLEVR reproduction behind reports/sort_of_clevr.md: the keypoint CNN+RN and CNN+MLP trained
# from scratch and evaluated on 1,000 fresh images (~25 min on 2 cores, Intel Xeon, session 19: 12.0 + 9.6 min of
# training).
# The grid models of reports/sort_of_clevr_grid.md: `relnet reproduce sort-of-clevr --preset fast --models rn,mlp,rn-state
# --report reports/sort_of_clevr_grid.md` (hours).
reproduce: install
	$(BIN)/relnet reproduce sort-of-clevr --train.threads=2

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/pairs.py
	$(BIN)/python benchmarks/sort_of_clevr_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
