PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo check test bench clean

# tests run in parallel processes (pytest-xdist); the compiled-epoch builds and the
# browser, Ray and console-script tests wait on their own processes, so two workers on
# two cores nearly halve the suite. WORKERS=0 runs them in this one process.
WORKERS ?= auto

$(BIN)/mlplab: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH (or: make PYTHON=python3)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(BIN)/mlplab

demo: $(BIN)/mlplab
	$(BIN)/mlplab demo --out runs/demo

# the fast tier (about a minute): every module's contract, without the slow-marked tests
check: $(BIN)/mlplab
	$(BIN)/python -m pytest -q -m "not slow" -n $(WORKERS) --dist worksteal

# the whole suite, slow tests included (what CI runs)
test: $(BIN)/mlplab
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist worksteal

bench: $(BIN)/mlplab
	$(BIN)/mlplab bench

clean:
	rm -rf runs .pytest_cache
