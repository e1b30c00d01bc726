# The two entry points of the README. Both create .venv on first use and are quick after that:
# the install step re-runs only when pyproject.toml changes (tracked by a stamp file).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.videoktr-installed

.PHONY: install test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects no tests: that is a failure, never a pass.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

# The whole method on the built-in synthetic world, on CPU: writes demo_output/ (report.html,
# plots, summary.json). DEMO_ARGS passes options, e.g. DEMO_ARGS="--seed 1 --json out.json".
demo: install
	$(BIN)/videoktr demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache demo_output
