#!/usr/bin/env bash
# `make demo`: the whole pipeline on the bundled sandbox, through real Airflow, then the
# headline numbers read from the published mart.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sandbox_env.sh

bin=.venv/bin
echo "== sample support-site logs -> $ENGAGEMENT_DATA_DIR/sample_logs"
$bin/engagement sample --out "$ENGAGEMENT_DATA_DIR/sample_logs" > /dev/null

echo "== X API v2 sandbox on $X_API_BASE_URL"
$bin/engagement sandbox --port "$SANDBOX_PORT" > "$ENGAGEMENT_DATA_DIR/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill -INT $sandbox 2> /dev/null || true' EXIT
$bin/python -c "
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1] + '/health', timeout=1)
    except OSError as exc:
        if getattr(exc, 'code', None):  # any HTTP answer means it is up
            break
        time.sleep(0.1)
    else:
        break
else:
    sys.exit('sandbox did not start')
" "$X_API_BASE_URL"

echo "== @acmesupport authorises user-context access (its DMs): engagement x-login, the"
echo "   sandbox's consent page answered as @acmesupport"
login_log="$ENGAGEMENT_DATA_DIR/x-login.log"
$bin/engagement x-login acmesupport --wait 60 > "$login_log" 2>&1 &
login=$!
$bin/python - "$login_log" <<'PY'
import sys, time, urllib.request
log = sys.argv[1]
for _ in range(600):  # x-login prints the URL, then "Waiting" once it listens for the redirect
    lines = open(log).read().splitlines()
    if any(line.startswith("Waiting") for line in lines):
        url = next(line for line in lines if line.startswith("http"))
        urllib.request.urlopen(url + "&sandbox_user=acmesupport", timeout=30).read()
        break
    time.sleep(0.1)
else:
    sys.exit("x-login did not start: see " + log)
PY
wait $login || { cat "$login_log"; exit 1; }

echo "== Airflow metadata database and the DuckDB writer pool ($AIRFLOW_HOME)"
$bin/airflow db migrate > "$ENGAGEMENT_DATA_DIR/airflow-migrate.log" 2>&1
$bin/airflow pools set duckdb_writer 1 "DuckDB warehouse writers" > /dev/null 2>&1

echo "== Airflow DAG runs, one a day (both sources), then the mart build (Airflow's log:"
echo "   $ENGAGEMENT_DATA_DIR/airflow-runs.log)"
$bin/python scripts/run_dags.py --start "$DEMO_START" --days "$DEMO_DAYS" \
    2> "$ENGAGEMENT_DATA_DIR/airflow-runs.log" \
    || { tail -40 "$ENGAGEMENT_DATA_DIR/airflow-runs.log"; exit 1; }

echo
$bin/engagement headline
echo "== the report the mart DAG wrote: ${ENGAGEMENT_REPORT_PATH:-$ENGAGEMENT_DATA_DIR/reports/engagement.html}"
