# Tracemark developer commands. `make run` for the app with demo data, `make test` for the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PASSWORD ?= tracemark
PYTEST_ARGS ?=

.PHONY: run test lint format chromium serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.app

## run: set up a virtualenv, migrate SQLite, load demo data and serve on http://127.0.0.1:8000
run: $(VENV)/.app
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true DEMO_PASSWORD=$(DEMO_PASSWORD) $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Tracemark: http://$(HOST):$(PORT)/   sign in as admin / $(DEMO_PASSWORD)"
	@echo ""
	DEBUG=true $(BIN)/python manage.py runserver $(HOST):$(PORT)

## chromium: the browser the end-to-end tests drive (Debian's package)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium is required for the browser tests"; exit 1; }

## axe-core for the accessibility sweep (package.json), installed when missing or changed
node_modules/axe-core/axe.min.js: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund
	touch $@

## test: install test dependencies, chromium and axe-core, lint, then run the whole suite
test: $(VENV)/.test chromium node_modules/axe-core/axe.min.js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
