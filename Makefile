# PagerPal: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test lint install migrate clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/flask --app pagerpal_web db upgrade

# Web (gunicorn) and worker on the SQLite default, sending disabled, at http://$(HOST):$(PORT)
run: migrate
	HOST=$(HOST) PORT=$(PORT) scripts/run-local

# Demo team, schedules, policies, sources and incidents in the `make run` database (refuses one with incidents)
demo: migrate
	$(BIN)/flask --app pagerpal_web pagerpal demo-data $(DEMO_ARGS)

# Parallel pass, then the few tests that must run alone (exit 5 = none selected by PYTEST_ARGS).
# Three workers finish first on two cores. Bytecode is cached even where the environment turns
# that off: the processes the tests start (worker, gunicorn, CLI) would each compile every module.
TEST_WORKERS ?= 3
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not serial" $(PYTEST_ARGS)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance .pytest_cache test-artifacts
