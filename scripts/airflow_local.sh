#!/usr/bin/env bash
# `make airflow`: Airflow (standalone: scheduler, dag-processor, triggerer, api-server) on
# the sandbox and sample logs of the last 7 days, DAGs unpaused: the scheduler catches the
# week up by itself. Ctrl-C stops it all. Production: docker-compose.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
export ENGAGEMENT_DATA_DIR="${ENGAGEMENT_DATA_DIR:-$PWD/data/airflow-local}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow-local}"
source scripts/sandbox_env.sh
bin=.venv/bin
export PATH="$PWD/.venv/bin:$PATH"  # standalone starts its components as `airflow ...`
start=$(date -u -d '7 days ago' +%F)
export ENGAGEMENT_START_DATE="$start" ENGAGEMENT_LANDING_DELAY_MINUTES=0
export X_BEARER_TOKEN AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$AIRFLOW__API__PORT/execution/"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
mkdir -p "$AIRFLOW_HOME"
[[ -f "$AIRFLOW_HOME/passwords.json" ]] \
    || $bin/python -c "import json, secrets; print(json.dumps({'admin': secrets.token_urlsafe(12)}))" \
    > "$AIRFLOW_HOME/passwords.json"

echo "== sample logs and X sandbox ($start to today) on $X_API_BASE_URL"
$bin/engagement sample --out "$ENGAGEMENT_DATA_DIR/sample_logs" --start "$start" --end today > /dev/null
$bin/engagement sandbox --port "$SANDBOX_PORT" --start "$start" --end today \
    > "$ENGAGEMENT_DATA_DIR/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill -INT $sandbox 2> /dev/null || true' EXIT
$bin/airflow db migrate > "$ENGAGEMENT_DATA_DIR/airflow-migrate.log" 2>&1
$bin/airflow pools set duckdb_writer 1 "DuckDB warehouse writers" > /dev/null 2>&1
password=$($bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['admin'])" \
    "$AIRFLOW_HOME/passwords.json")
echo "== Airflow on http://localhost:$AIRFLOW__API__PORT  login: admin / $password"
echo "   the mart: $ENGAGEMENT_DATA_DIR/warehouse/engagement.duckdb; Ctrl-C stops Airflow"
$bin/airflow standalone
