# The two commands of the README: `make demo` and `make test`. Everything else serves them.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv

.PHONY: setup setup-spark browser demo airflow test test-unit test-spark lint bench bench-ingest bench-warehouse bench-spark fuzz superset-check clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# bytecode compiled once here: every later process (CLI, Airflow, dbt, tests) starts faster,
# also where PYTHONDONTWRITEBYTECODE keeps Python from caching it itself
setup: $(UV)
	$(UV) sync --locked --quiet --compile-bytecode $(if $(wildcard $(VENV)/.spark),--group spark)

# the `spark` dbt target's engine (issue 23): Debian's OpenJDK 17 when no java is found, and
# the `spark` dependency group (pyspark, dbt-spark), which later `make setup`s keep
setup-spark: $(UV)
	@command -v java > /dev/null || { \
		echo "== installing Debian's OpenJDK 17 (Spark runs on the JVM)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq openjdk-17-jre-headless > /dev/null; }
	@command -v java > /dev/null || { echo "java could not be installed" >&2; exit 1; }
	$(UV) sync --locked --quiet --compile-bytecode --group spark
	touch $(VENV)/.spark

demo: setup
	scripts/demo.sh

# Airflow standalone on the sandbox's last 7 days, DAGs unpaused, the login printed
airflow: setup
	scripts/airflow_local.sh

lint: setup
	$(VENV)/bin/ruff check extract engagement devtools dags tests scripts setup.py
	$(VENV)/bin/ruff format --check extract engagement devtools dags tests scripts setup.py
	scripts/lint_sql.sh
	$(VENV)/bin/python scripts/settings_reference.py --check

# docs/configuration.md from the settings model (engagement/settings.py); `make lint` checks it
.PHONY: docs
docs: setup
	$(VENV)/bin/python scripts/settings_reference.py

# the report's test opens it in headless Chromium: Debian's `chromium`, installed when missing
# (apt-get as root, else through sudo)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium > /dev/null || { \
		echo "== installing Debian's chromium (the report's browser test)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium > /dev/null; }
	@command -v chromium > /dev/null || { echo "chromium could not be installed" >&2; exit 1; }

test: setup lint browser
	$(VENV)/bin/python -m pytest

# the `spark` engine's tests (marker spark): the marts built by Spark, locally and on a
# standalone cluster on loopback, equal to DuckDB's (tests/test_spark.py)
test-spark: setup-spark lint
	$(VENV)/bin/python -m pytest -m spark

# the fast part alone: everything but the end-to-end tests (marker e2e)
test-unit: setup lint
	$(VENV)/bin/python -m pytest -m "not e2e"

bench: bench-ingest bench-warehouse bench-spark

# support-site ingest speed vs a plain-Python baseline (input built in a temp dir)
bench-ingest: setup
	$(VENV)/bin/python scripts/bench_ingest.py

# a day's whole run after 1 and after DAYS days of history, LINES log lines a day; publishing
# with PUBLISH_ROWS rows of post metrics and of sessions
DAYS ?= 30
LINES ?= 200000
PUBLISH_ROWS ?= 5000000
bench-warehouse: setup
	$(VENV)/bin/python scripts/bench_warehouse.py --days $(DAYS) --lines $(LINES) \
		--publish-rows $(PUBLISH_ROWS)

# a day's build on DuckDB and on Spark (local mode) at SPARK_LINES log lines a day, each
# engine's published marts equal to the other's
SPARK_LINES ?= 1000000 10000000
bench-spark: setup-spark
	$(VENV)/bin/python scripts/bench_spark.py --lines $(SPARK_LINES)

# extract/_logparse.c rebuilt with ASan/UBSan and fed random and mutated lines for
# FUZZ_SECONDS (FUZZ_SEED to repeat a run, FUZZ_REPLAY to rerun one failing iteration)
FUZZ_SECONDS ?= 60
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(VENV)/bin/python scripts/fuzz_logparse.py

# Apache Superset itself (from PyPI, in .tools/superset, beside the project's environment) on
# the bi profile's bundle and a published mart (MART: make demo's by default): init, import,
# every chart's data through its API, the engine read-only and pool-less. No Docker needed.
SUPERSET_VERSION := $(shell sed -n 's/^FROM apache\/superset:\(.*\)$$/\1/p' bi/superset/Dockerfile)
MART ?= data/warehouse/engagement.duckdb
superset-check: $(UV)
	$(UV) venv --quiet --allow-existing --python 3.11 $(TOOLS)/superset
	$(UV) pip install --quiet --python $(TOOLS)/superset/bin/python \
		apache-superset==$(SUPERSET_VERSION) \
		$$(grep -o 'duckdb[a-z-]*==[0-9.]*' bi/superset/Dockerfile | sort -u) \
		rich cachetools flask-caching==2.3.1
	$(TOOLS)/superset/bin/python scripts/superset_check.py $(MART)

clean:
	rm -rf data .airflow .airflow-local dbt_project/target dbt_project/logs
