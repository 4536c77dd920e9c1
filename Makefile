# The front door: `make run` starts the daemon on the bundled demo, `make test`
# runs every test.  Both create the virtual environment on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config.toml

.PHONY: run test test-clock lint format bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "auditcorr needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/auditcorr run --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The time-sensitive tests again under shifted clocks (needs faketime); see CONTRIBUTING.md.
test-clock: $(STAMP)
	tests/clock/run $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/backfill.py --events 1000000 --runs 3

# Re-resolve the pinned versions after changing dependencies in pyproject.toml.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	(echo "# Pinned versions for repeatable installs (make lock regenerates this file)."; \
	 .venv-lock/bin/pip freeze --exclude-editable | grep -v '^auditcorr') > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache
