#!/usr/bin/env bash
# sqlfluff over the dbt models and tests with the dbt templater (`make lint`). The templater
# compiles through the project's profile, which attaches the raw warehouse read-only: an
# empty one in a temporary directory is enough to compile.
set -euo pipefail
cd "$(dirname "$0")/../dbt_project"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ENGAGEMENT_RAW_DB=$work/raw.duckdb ENGAGEMENT_BUILD_DB=$work/lint.duckdb \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
../.venv/bin/python -c 'import duckdb, sys; duckdb.connect(sys.argv[1]).close()' "$ENGAGEMENT_RAW_DB"
# run from dbt_project/: sqlfluff only takes `templater = dbt` from the working directory
../.venv/bin/sqlfluff lint models tests --processes 2 2>&1 \
    | tee "$work/out"
grep -q "dbt templater" "$work/out" || { echo "sqlfluff did not use the dbt templater" >&2; exit 1; }
