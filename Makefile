# Spare Cycles — the README's commands. Everything a fresh machine needs is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# PROTOCOL.md: frames over 1 MiB close the socket with 1009 (daphne enforces it). No
# --proxy-headers: the app believes forwarded headers only from TRUSTED_PROXIES, and
# `make run` faces clients directly, so it trusts none.
DAPHNE_FLAGS := --websocket-max-message-size 1048576
# `make run` collects into and serves this checkout's staticfiles/, whatever STATIC_ROOT the
# environment names (the tests give their servers an empty one of their own).
RUN_STATIC_ROOT ?= $(CURDIR)/staticfiles
export PYTHONPATH := $(CURDIR)/platform
# `make run` serves on this checkout's development key (random, django-insecure-, mode 0600,
# made by settings.py on first use) unless you set SECRET_KEY or SECRET_KEY_FILE: a server
# refuses to start on it otherwise (platform/sparecycles/secret_key.py).
DEV_KEY := $(if $(SECRET_KEY)$(SECRET_KEY_FILE),,SECRET_KEY_FILE=$(or $(SPARECYCLES_VAR_DIR),$(CURDIR)/var)/development-secret-key)

.PHONY: help install chromium sandbox run test test-unit test-e2e lint lint-imports clean

help:
	@echo "make run    install everything, load the demo and serve http://$(HOST):$(PORT)/"
	@echo "make test   install everything (Chromium too) and run every test"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# The volunteer page starts Python on a small core of the standard library, compiled, and
# mounts the rest afterwards (platform/sparecycles/web/split_stdlib.mjs; docs/isolation.md "Warm starts").
STDLIB_SPLIT := node_modules/pyodide/python_stdlib_core.zip
$(STDLIB_SPLIT): node_modules/.package-lock.json platform/sparecycles/web/split_stdlib.mjs
	node platform/sparecycles/web/split_stdlib.mjs node_modules/pyodide node_modules/pyodide

install: $(VENV)/.installed node_modules/.package-lock.json $(STDLIB_SPLIT)

# Debian's Chromium for the browser tests (Playwright's own download cannot work offline).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# Debian's bubblewrap isolates custom validators (docs/sandbox.md). Without root or sudo it
# is skipped: as root `unshare` serves instead, otherwise custom validators fail closed.
sandbox:
	@if ! command -v bwrap >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap \
			|| echo "bubblewrap not installed: custom validators need root (unshare) or it, see docs/sandbox.md"; \
	fi

run: install sandbox
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py setup_demo
	@# Hashed shell names and .gz/.br copies (web/static_delivery.py; quick brotli for big files,
	@# and a rerun compresses the runtime only when it changed).
	STATIC_ROOT=$(RUN_STATIC_ROOT) SPARECYCLES_STATIC_QUICK=1 $(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  Spare Cycles is at  http://$(HOST):$(PORT)/   (press Start to compute)"
	@echo "  Admin:              http://$(HOST):$(PORT)/admin/   user: $${ADMIN_USER:-admin}  password: $${ADMIN_PASSWORD:-admin}"
	@echo ""
	STATIC_ROOT=$(RUN_STATIC_ROOT) $(DEV_KEY) $(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) sparecycles.asgi:application

test: install chromium sandbox test-unit test-e2e

test-unit:
	$(BIN)/python -m pytest -q

# Browser tests run in their own invocation: Playwright's event loop upsets later async tests.
test-e2e:
	$(BIN)/python -m pytest -q -m e2e tests/e2e

lint:
	$(BIN)/ruff check platform tests tools workunits
	$(BIN)/lint-imports

# The layering contract in pyproject.toml ([tool.importlinter]; PYTHONPATH is platform/).
# tests/test_import_contracts.py runs it too, so `make test` holds it.
lint-imports: $(VENV)/.installed
	$(BIN)/lint-imports

clean:
	rm -rf var/test-*.sqlite3* staticfiles .pytest_cache
