# TriggerMail's two commands are `make run` and `make test`; the rest are their parts.
# Every target that runs Python first makes sure .venv exists and matches the requirements files.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; older than a requirements file means "install again".
STAMP := $(VENV)/.requirements-installed
PORT ?= 8000
export PORT
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help run smoke-run bench bench-quick bench-latency bench-dashboard bench-scale test lint format typecheck pytest fuzz contract sdk-node venv deps-system clean distclean

help: ## List the targets
	@echo "TriggerMail make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22
	@echo
	@echo "Variables: PORT=$(PORT) (web port for make run), DATABASE_URL (unset: SQLite in var/)."

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(STAMP) ## Create .venv and install requirements-dev.txt (only when they changed)

run: $(STAMP) ## Set up .env, migrate, load the demo, then run web + worker on http://127.0.0.1:PORT
	@scripts/run.sh

smoke-run: $(STAMP) ## Start make run on a free port, post its curl example, check the captured email
	@scripts/smoke-run.sh

# The throughput suite of issue #5 (bench/suite.py): P1-P6 and 1 vs 2 worker hosts on the production
# configuration, a PostgreSQL database of the run's own, the table written to var/bench-<stamp>.md with a
# latency PNG. It fails only on a lost, duplicated or unasked-for email; timings are reported, never asserted.
# The Dashboard benchmark is separate (several minutes of its own): make bench-dashboard.
bench: $(STAMP) ## Throughput suite P1-P6 + scaling, about 11 minutes (BENCH_ARGS="--p5-rate 1500")
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(STAMP) ## The CI variant of make bench, under 2 minutes; fails on any lost or duplicate email
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

bench-latency: $(STAMP) ## Only P3, P4 and P3R of make bench: event-to-provider latency (ORM, then Redis broker), delayed sends with 1M pending
	$(BIN)/python -m bench --only P3,P4,P3R $(BENCH_ARGS)

bench-dashboard: $(STAMP) ## Time the Dashboard with 1,000,000 sends on a PostgreSQL database of its own (BENCH_ARGS="--runs 5")
	$(BIN)/python -m bench.dashboard $(BENCH_ARGS)

# Issue #14's scale check (bench/scale.py, not in CI): P1, P3, the 7-day Dashboard and retention on an empty
# database, then again with 20,000,000 stored events (and their decisions, sends, webhook events) loaded; the
# table with its ratios goes to var/bench-scale-<stamp>.md. Needs ~10 GB of disk and over an hour on 2 cores.
bench-scale: $(STAMP) ## Empty vs 20 M stored events: P1, P3, Dashboard, retention (BENCH_ARGS="--events 200000")
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

# Every step runs even when an earlier one fails, so one run shows all that is wrong.
test: $(STAMP) ## Lint, type check and run the test suite (DATABASE_URL picks the database)
	@failed=""; \
	for step in lint typecheck pytest; do $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; done; \
	if [ -n "$$failed" ]; then echo "make test failed:$$failed"; exit 1; fi

lint: $(STAMP) ## ruff check, ruff format --check and the import contracts (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SECRET_KEY="$${SECRET_KEY:-lint-only}" $(BIN)/lint-imports --no-cache

# What ruff cannot fix is printed here and fails `make lint`; formatting goes ahead regardless.
format: $(STAMP) ## Fix what ruff can fix and format the code
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

# django-stubs imports the settings, which refuse to load without a SECRET_KEY (.env may not exist yet).
typecheck: $(STAMP) ## mypy with django-stubs (config in pyproject.toml)
	SECRET_KEY="$${SECRET_KEY:-typecheck-only}" $(BIN)/mypy .

pytest: $(STAMP) sdk-node ## Only the test suite; pass options with ARGS="-k name"
	$(BIN)/pytest $(ARGS)

# The Node SDKs that tests/test_sdk_matrix.py drives, pinned by tests/sdk/package-lock.json. `npm ci`
# runs only when node_modules is missing or older than the lock file; without npm the tests say so.
SDK_NODE_STAMP := tests/sdk/node_modules/.installed
sdk-node: ## Install the Node SDKs the SDK tests run (npm ci in tests/sdk), when the lock file changed
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory --silent $(SDK_NODE_STAMP); \
	else echo "npm not found: the Node SDK tests will be skipped"; fi

$(SDK_NODE_STAMP): tests/sdk/package-lock.json
	cd tests/sdk && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The property suite of issue #10 (tests/fuzz) under Hypothesis's `fuzz` profile: 2,000 random
# examples per pure property and 400 per database property, instead of `make test`'s 60 (12) fixed
# ones. Failing examples are kept in .hypothesis/ and tried first on the next run.
fuzz: $(STAMP) ## Property tests only, thousands of random examples each (tests/fuzz); ARGS="-k matching"
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz $(ARGS)

# The API contract test of issue #11 (tests/test_api_contract.py) as a deeper run: schemathesis against
# real gunicorn with 1,000 examples per operation and its coverage phase (every boundary of every field,
# each IANA zone), which `make test` leaves out to stay quick. Same checks; CONTRACT_ARGS passes more
# of schemathesis's options, e.g. CONTRACT_ARGS="--max-time=900".
contract: $(STAMP) ## schemathesis against real gunicorn, 1,000 examples per operation + coverage phase (CONTRACT_EXAMPLES=5000)
	CONTRACT_EXAMPLES=$${CONTRACT_EXAMPLES:-1000} CONTRACT_PHASES=examples,coverage,fuzzing CONTRACT_TIMEOUT=3600 \
		$(BIN)/pytest tests/test_api_contract.py -p no:cacheprovider $(ARGS)

# Real processes (two gunicorn, two qcluster hosts, Redis broker, a PostgreSQL database of the run's
# own) under kill -9, provider faults, webhook redeliveries, duplicate posts and a dropped database.
# Both fail on any duplicate or lost email; the table is also written to var/chaos-<date>.txt.
.PHONY: chaos chaos-quick pgbouncer
chaos: $(STAMP) ## Chaos run: 5,000 events under faults, fails on any duplicate or loss (CHAOS_ARGS="--seed 1")
	$(BIN)/python -m chaos.run --events 5000 --duration 60 $(CHAOS_ARGS)

# CHAOS_POOLER_URL=postgres://root@127.0.0.1:6432/postgres (after `make pgbouncer`) runs the web and
# worker processes through PgBouncer in transaction mode; the run's database is still made directly.
chaos-quick: $(STAMP) ## The small chaos run CI does: 600 events, about a minute (CHAOS_POOLER_URL: via PgBouncer)
	$(BIN)/python -m chaos.run --events 600 --duration 20 --kill-every 2,5 --pg-drops 1 $(CHAOS_ARGS)

# README, PgBouncer: every database of 127.0.0.1:5432 on port 6432, transaction pooling, run as postgres.
pgbouncer: $(STAMP) ## Start PgBouncer on 127.0.0.1:6432 in transaction mode (idempotent; make deps-system installs it)
	$(BIN)/python -m harness.pgbouncer start

deps-system: ## apt-install what tests and make bench need (chromium, chromium-driver, fonts-liberation, wrk, pgbouncer) if missing
	@scripts/deps-system.sh

clean: ## Remove var/ (database, captured mail), collected static files, caches and the install stamp
	rm -rf var/ staticfiles/ .mypy_cache/ .ruff_cache/ .pytest_cache/ .hypothesis/ $(STAMP)

distclean: clean ## Also remove .venv and .env (a new SECRET_KEY is written on the next make run)
	rm -rf $(VENV) .env
