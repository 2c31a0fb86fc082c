# The README's commands. `make run` sets up and runs the main example; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test soak lint bench bench-peers clean

# Output of the installs is shown only when they fail (setuptools' editable-install notices are noise).
QUIET = out=$$($(1) 2>&1) || { echo "$$out"; exit 1; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing millstream and its dependencies into $(VENV) ..."
	@$(call QUIET,$(PY) -m pip install -q --upgrade pip "setuptools>=64" wheel)
	@$(call QUIET,$(PY) -m pip install -q -e '.[dev]')
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/millstream run examples/streaming/flights.py

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

# Long kill -9 runs (nightly): the soak tests again with 200 kills each (`make test` runs them with 20).
soak: setup
	MILLSTREAM_SOAK_KILLS=$${MILLSTREAM_SOAK_KILLS:-200} $(VENV)/bin/pytest -q -m soak

bench: setup
	$(PY) -P bench $(BENCH_ARGS)

# The whole-process peer comparison of the W1-W3 Beam program, with the stage profile (docs/performance.md);
# Bytewax joins when the `peers` extra is installed (pip install -e '.[peers]').
bench-peers: setup
	$(PY) -P bench --peers --profile $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .millstream
