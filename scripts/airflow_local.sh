#!/usr/bin/env bash
# `make airflow`: Airflow (standalone: scheduler, dag-processor, triggerer, api-server) on
# the sandbox and sample logs of the last 7 days, DAGs unpaused: the scheduler catches the
# week up by itself. Production: docker-compose.yml.
# Ctrl-C (or SIGTERM) stops it all within seconds, leaving no process: Airflow and the
# sandbox run in sessions of their own (a task process even in a group of its own), so the
# script stops each whole tree itself: SIGTERM, then SIGKILL for what is left after
# STOP_GRACE_SECONDS (5).
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
# the LocalExecutor forks `parallelism` workers at start (Airflow's default 32, ~60 MiB
# each): as many task slots as the machine can run, 2 per core
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$((2 * $(nproc)))}"
mkdir -p "$AIRFLOW_HOME"
[[ -f "$AIRFLOW_HOME/passwords.json" ]] \
    || $bin/python -c "import json, secrets; print(json.dumps({'admin': secrets.token_urlsafe(12)}))" \
    > "$AIRFLOW_HOME/passwords.json"

echo "== sample logs and X sandbox ($start to today) on $X_API_BASE_URL"
$bin/engagement sample --out "$ENGAGEMENT_DATA_DIR/sample_logs" --start "$start" --end today > /dev/null

children=()  # the leaders of the sessions started: the sandbox, Airflow
tree() {     # the pids of the processes started and of all their descendants
    ps -e -o pid= -o ppid= | awk -v roots="${children[*]}" '
        { parent[$1] = $2 }
        END {
            n = split(roots, queue, " "); for (i = 1; i <= n; i++) found[queue[i]] = 1
            do { more = 0
                for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; more = 1 }
            } while (more)
            for (p in found) if (p in parent) print p
        }'
}
living() { # those of the pids given that still run (zombies have ended)
    [[ -n ${1//[[:space:]]/} ]] || return 0
    ps -o pid= -o stat= -p "$(echo $1)" | awk '$2 !~ /^Z/ { print $1 }'
}
stop() {
    trap - INT TERM EXIT
    ((${#children[@]})) || return 0
    echo "== stopping Airflow and the sandbox"
    local pids deadline=$((SECONDS + ${STOP_GRACE_SECONDS:-5}))
    pids=$(tree)
    for pid in "${children[@]}"; do kill -TERM -- "-$pid" 2> /dev/null || true; done
    # shellcheck disable=SC2086  # lists of pids
    kill -TERM $pids 2> /dev/null || true
    while ((SECONDS < deadline)); do
        pids=$(printf '%s\n' $pids $(tree) | sort -u)
        [[ -n $(living "$pids") ]] || break
        sleep 0.2
    done
    deadline=$((SECONDS + 2))  # SIGKILL what is left (and what forked meanwhile), until gone
    while pids=$(printf '%s\n' $pids $(tree) | sort -u) && [[ -n $(living "$pids") ]] \
        && ((SECONDS < deadline)); do
        for pid in "${children[@]}"; do kill -KILL -- "-$pid" 2> /dev/null || true; done
        # shellcheck disable=SC2046
        kill -KILL $(living "$pids") 2> /dev/null || true
        sleep 0.1
    done
    wait 2> /dev/null || true
    children=()
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

setsid $bin/engagement sandbox --port "$SANDBOX_PORT" --start "$start" --end today \
    > "$ENGAGEMENT_DATA_DIR/sandbox.log" 2>&1 < /dev/null &
children+=($!)
$bin/airflow db migrate > "$ENGAGEMENT_DATA_DIR/airflow-migrate.log" 2>&1
$bin/airflow pools set duckdb_writer 1 "DuckDB warehouse writers" > /dev/null 2>&1
password=$($bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['admin'])" \
    "$AIRFLOW_HOME/passwords.json")
echo "== Airflow on http://localhost:$AIRFLOW__API__PORT  login: admin / $password"
echo "   the mart: $ENGAGEMENT_DATA_DIR/warehouse/engagement.duckdb; Ctrl-C stops Airflow"
setsid $bin/airflow standalone < /dev/null &
children+=($!)
status=0
wait "${children[-1]}" || status=$?  # a signal interrupts the wait: its trap stops it all
stop
exit "$status"
