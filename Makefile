# feedsync — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

UV_VERSION := 0.13.9
TOOLS := .tools

# Some machines' pip configuration names local index folders that do not exist (file:///opt/pypi/...);
# pip then warns once per package about each. That is the machine's, not ours: keep it off a user's screen.
NO_LOCATION_NOISE := 2>&1 | { grep -v "^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\.$$" || true; }

# The venv holds exactly the lock: a changed lock rebuilds it rather than layering on top.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	@echo "installing requirements-dev.lock into $(VENV) (every hash checked), then feedsync without dependencies"
	@set -o pipefail; $(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock $(NO_LOCATION_NOISE)
	@set -o pipefail; $(BIN)/pip install --quiet --no-deps -e . $(NO_LOCATION_NOISE)
	$(BIN)/python deploy/check-lock.py requirements-dev.lock
	touch $(STAMP)

setup: $(STAMP) ## create .venv from requirements-dev.lock (hashes checked), then feedsync itself without dependencies

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# requirements.lock is what runs (the Docker image): the core and every extra (`all`: console, sftp,
# arrow). requirements-dev.lock adds the tools and tests on the same versions (it is compiled under the
# first as a constraint). Both universal, for Python >= 3.11.
LOCK := $(TOOLS)/bin/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 --quiet

# `make lock` keeps every version already locked and resolves only what pyproject.toml added or changed,
# so adding one package does not move the others; `make lock-upgrade` takes the newest versions allowed.
lock: $(TOOLS)/bin/uv ## lock what pyproject.toml added or changed, keeping every other locked version (with hashes)
	$(LOCK) --extra all -o requirements.lock
	$(LOCK) --extra all --extra dev --constraint requirements.lock -o requirements-dev.lock

lock-upgrade: $(TOOLS)/bin/uv ## refresh both locks to the newest versions pyproject.toml allows
	$(LOCK) --upgrade --extra all -o requirements.lock
	$(LOCK) --upgrade --extra all --extra dev --constraint requirements.lock -o requirements-dev.lock

deps-latest: ## a scratch venv with the newest versions pyproject.toml allows: collect every test, run the unit tier
	bash deploy/deps-latest.sh

services: ## start local PostgreSQL and RabbitMQ (installed with apt first when missing and run as root)
	@bash deploy/ensure-services.sh

test-tools: ## install chromium and openssh-server for the browser and SFTP tiers when missing (root with apt)
	@bash deploy/ensure-test-tools.sh

migrate: setup ## create the database and apply migrations
	$(BIN)/feedsync migrate

demo: setup services ## run the main job on sample data: a generated user feed through the whole pipeline
	$(BIN)/feedsync demo

test: setup services test-tools ## unit, integration, e2e and conformance tests against the real services
	$(BIN)/pytest

test-fast: setup ## the unit tier only (stub broker; still needs PostgreSQL)
	$(BIN)/pytest tests/unit

lint: setup ## ruff (checks and format), mypy --strict (package code and tests), the import contracts (lint-imports), and sql.SQL only on string literals
	$(BIN)/ruff check schemas workers producers tests benchmarks deploy/check-sql.py
	$(BIN)/ruff format --check schemas workers producers tests benchmarks deploy/check-sql.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python deploy/check-sql.py schemas workers producers

bench: setup services ## the performance suite (writes benchmarks/RESULTS.md)
	$(BIN)/python -m benchmarks.run

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help setup lock lock-upgrade deps-latest test-tools services migrate demo test test-fast lint bench clean
