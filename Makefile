# Two entry points: `make demo` and `make test`. Both build .venv from scratch when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export NO_COLOR ?=

.PHONY: demo test test-min lint bench clean screenshot fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@sh examples/demo.sh $(BIN)

# axe-core, for the accessibility checks of the HTML reports in Chromium (tests/browser.py):
# from npm, when npm is there (.ci/run installs it); without it those checks skip locally.
AXE := .cache/axe/node_modules/axe-core/axe.min.js
$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4.14.1 >/dev/null; \
	else echo "npm not found: the accessibility checks of the reports will skip"; fi

# The suite runs beside a throwaway PostgreSQL cluster (tests/with-postgres.sh) when the
# server binaries are installed; without them it says so and the shared-history tests skip.
test: $(VENV)/.installed-test $(AXE)
	$(BIN)/ruff check alliance_cli tests bench
	$(BIN)/ruff format --check alliance_cli tests bench
	$(BIN)/mypy --strict alliance_cli/core
	$(BIN)/mypy
	bash tests/with-postgres.sh $(BIN)/python -m pytest -q

# The suite on the lowest declared version of every dependency (constraints/min.txt).
test-min:
	$(PYTHON) -m venv .venv-min
	.venv-min/bin/python -m pip install --quiet --upgrade pip
	.venv-min/bin/python -m pip install --quiet -c constraints/min.txt -e . \
		pytest hypothesis jsonschema build hatchling
	.venv-min/bin/python -m pytest -q -p no:cacheprovider

# The fuzzers of tests/test_fuzz.py at length: 2,000 examples each, fresh random seeds (make
# test runs 60 each with a fixed seed). A failure prints the smallest input that fails.
fuzz: $(VENV)/.installed-test
	ALLIANCE_FUZZ_EXAMPLES=$${ALLIANCE_FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q \
		tests/test_fuzz.py -p no:cacheprovider --hypothesis-show-statistics

bench: $(VENV)/.installed-test
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/history.py

# docs/report-demo.png: the demo client's report in headless Chromium (needs chromium).
screenshot: $(VENV)/.installed-test
	$(BIN)/python -m tests.screenshot

clean:
	rm -rf $(VENV) .venv-min build dist *.egg-info .pytest_cache .ruff_cache
