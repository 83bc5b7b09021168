# Two commands for a new machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CI and the tests use the machine's real PostgreSQL and Redis (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
TEST_BROKER_URL ?= redis://127.0.0.1:6379/2
CHROMIUM_PATH ?= /usr/bin/chromium

.PHONY: venv system-deps static-build test lint demo migrate clean bench loadtest reliability

$(BIN)/.installed: requirements.txt requirements-worker.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

# Debian packages the tests need: bubblewrap (the grading sandbox), Chromium (browser tests) and, where the machine
# has no npm, Debian's nodejs and npm (the code editor bundle; frontend/ asks for Node 20, which this machine has).
system-deps:
	@missing=""; command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	test -x $(CHROMIUM_PATH) || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi; \
	fi

# The student's code editor (CodeMirror 6, frontend/): the exact lockfile's packages from the npm registry, bundled by
# esbuild into static/js/build/ (git-ignored). Rebuilt when the lockfile, the build script or the sources change.
EDITOR_BUNDLE := static/js/build/editor.js
static-build: $(EDITOR_BUNDLE)

$(EDITOR_BUNDLE): frontend/package.json frontend/package-lock.json frontend/build.mjs $(wildcard frontend/src/*.js)
	cd frontend && npm ci --no-audit --no-fund && npm run --silent build

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: venv system-deps static-build lint
	DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_CONN_MAX_AGE=0 REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	CHROMIUM_PATH=$(CHROMIUM_PATH) $(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: venv system-deps static-build
	bash scripts/demo.sh

bench: venv system-deps
	$(BIN)/python manage.py grading_bench

# 300 students launch within a minute and answer the five seed questions (its own database and Redis DBs).
loadtest: venv
	$(BIN)/python scripts/loadtest.py

# 1,000 scores recorded while the LMS is down for 12 simulated minutes: delivered/lost must be 1000/0.
reliability: venv
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python scripts/gradebook_reliability.py

clean:
	rm -rf $(VENV) .cache db.sqlite3 staticfiles static/js/build frontend/node_modules
