# The two commands of the README:  `make demo` (set up + run the demo)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
# torch 2.13.0 is the CPU build on the project's machines; override for another build, e.g.
#   make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
TORCH  ?= torch==2.13.0
PLUGINS := $(wildcard plugins/*/pyproject.toml)
STAMP  := $(VENV)/.mtrec-installed

.PHONY: setup demo test test-fast clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(TORCH)
	$(VENV)/bin/python -m pip install -q -e ".[ui,test]" $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

# The demo runs gmc's CPU-sized defaults (about five minutes on a 2-core CPU, a model that learns);
# add --quick for a one-minute pipeline check.
demo: $(STAMP)
	$(VENV)/bin/mtrec run --plugin gmc --name demo

# The full suite, the slow end-to-end tests included: what CI runs (.ci/run).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# The inner loop: everything but the tests marked `slow` (whole runs, fresh venvs, torchrun; the
# marker is registered in pyproject.toml).  A few minutes on a 2-core CPU; `make test` before pushing.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info
