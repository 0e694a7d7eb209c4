# Settings that point the product at the bundled sandbox (sourced by the demo and tests).
export ENGAGEMENT_DATA_DIR="${ENGAGEMENT_DATA_DIR:-$PWD/data}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
# the sandbox's port: SANDBOX_PORT when set (it must be free), else 8765, or a free port when
# 8765 is taken (never whatever already answers there)
_port_free() {
    python3 -c "import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2> /dev/null
}
if [[ -n "${SANDBOX_PORT:-}" ]]; then
    _port_free "$SANDBOX_PORT" \
        || { echo "engagement: SANDBOX_PORT=$SANDBOX_PORT is busy: free it or choose another" >&2; exit 2; }
elif _port_free 8765; then
    SANDBOX_PORT=8765
else
    SANDBOX_PORT=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    echo "== port 8765 is busy: the sandbox listens on $SANDBOX_PORT instead"
fi
export SANDBOX_PORT
export X_API_BASE_URL="http://127.0.0.1:$SANDBOX_PORT"
export X_BEARER_TOKEN="${X_BEARER_TOKEN:-sandbox-token}"
export X_ACCOUNTS="${X_ACCOUNTS:-acmecloud,acmesupport}"
export SUPPORT_SITE_LOGS="$ENGAGEMENT_DATA_DIR/sample_logs/access.log*"
export SUPPORT_SITE_INTERNAL_NETWORKS="${SUPPORT_SITE_INTERNAL_NETWORKS:-10.20.0.0/16}"  # the sample company's offices
export ENGAGEMENT_ACCOUNTS_FILE="${ENGAGEMENT_ACCOUNTS_FILE:-$PWD/scripts/demo_accounts.yml}"
# DEMO ONLY, not a secret: keys the pseudonyms of the sample log's (made-up) client IPs.
# Real deployments set their own secret ENGAGEMENT_IP_HMAC_KEY; without one, extraction refuses.
export ENGAGEMENT_IP_HMAC_KEY="${ENGAGEMENT_IP_HMAC_KEY:-demo-only-sandbox-ip-key-not-secret}"
# DEMO ONLY, not a secret: the sandbox's OAuth 2.0 client (any id works there) and a free
# loopback port x-login catches the sandbox's redirect on
export X_CLIENT_ID="${X_CLIENT_ID:-sandbox-client}"
export X_REDIRECT_URI="${X_REDIRECT_URI:-http://127.0.0.1:$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")/callback}"
export DEMO_START="${DEMO_START:-2026-11-02}"
export DEMO_DAYS="${DEMO_DAYS:-7}"
mkdir -p "$ENGAGEMENT_DATA_DIR"
