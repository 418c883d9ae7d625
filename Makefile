# orderflow — `make dev` brings the whole stack up, `make test` runs the suite, `make test-fast`
# the part of it that starts no servers (the inner loop: about half a minute of CPU).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint fmt check-compose bench clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m devstack

test: $(STAMP) lint check-compose
	bash .ci/system-packages
	$(BIN)/python -m pytest

# Every test not marked `stack` (tests/conftest.py marks those that start servers): messages,
# contracts, replay of the stored histories, the fast workflow layer on the time-skipping
# server. No lint, no Postgres, no dev server.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not stack" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# No Docker engine is needed: the file is checked against the Compose specification, the
# Grafana dashboards against what provisioning needs (tests/test_monitoring.py checks the rest).
check-compose: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/check-jsonschema --schemafile monitoring/grafana/dashboard.schema.json monitoring/grafana/dashboards/*.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Speed and scale on the real stack, one table (bench/scale.py: the lifecycle beside the
# bare-Temporal ceiling, POST-to-e-mail latency, parked orders and a restart, support reads
# at 100,000 orders), the customer's status page over 100,000 orders, then the reports over
# 100,000 orders. `make bench PARKED=10000`.
PARKED ?= 1000
bench: $(STAMP)
	$(BIN)/python -m bench.scale --parked $(PARKED)
	$(BIN)/python -m bench.status_page
	$(BIN)/python -m bench.reports

# schemathesis over the OpenAPI of a running `make dev` (every check; schemathesis.toml here).
fuzz: $(STAMP)
	$(BIN)/st run http://127.0.0.1:$${ORDERFLOW_API_PORT:-8000}/openapi.json --checks all \
		-H "Authorization: Bearer $$(cat .data/dev-api-key)"
