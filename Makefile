# feedsync — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install feedsync with its dependencies

services: ## start local PostgreSQL and RabbitMQ if they are installed but down
	@bash deploy/ensure-services.sh

migrate: setup ## create the database and apply migrations
	$(BIN)/feedsync migrate

demo: setup services ## run the main job on sample data: a generated user feed through the whole pipeline
	$(BIN)/feedsync demo

test: setup services ## unit, integration, e2e and conformance tests against the real services
	$(BIN)/pytest

test-fast: setup ## the unit tier only (stub broker; still needs PostgreSQL)
	$(BIN)/pytest tests/unit

lint: setup ## ruff (checks and format), mypy --strict (package code and tests) and the import contracts (lint-imports)
	$(BIN)/ruff check schemas workers producers tests benchmarks
	$(BIN)/ruff format --check schemas workers producers tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup services ## the performance suite (writes benchmarks/RESULTS.md)
	$(BIN)/python -m benchmarks.run

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help setup services migrate demo test test-fast lint bench clean
