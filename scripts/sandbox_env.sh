# Settings that point the product at the bundled sandbox (sourced by the demo and tests).
export ENGAGEMENT_DATA_DIR="${ENGAGEMENT_DATA_DIR:-$PWD/data}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
export SANDBOX_PORT="${SANDBOX_PORT:-8765}"
export X_API_BASE_URL="http://127.0.0.1:$SANDBOX_PORT"
export X_BEARER_TOKEN="${X_BEARER_TOKEN:-sandbox-token}"
export X_ACCOUNTS="${X_ACCOUNTS:-acmecloud,acmesupport}"
export SUPPORT_SITE_LOGS="$ENGAGEMENT_DATA_DIR/sample_logs/access.log*"
# DEMO ONLY, not a secret: keys the pseudonyms of the sample log's (made-up) client IPs.
# Real deployments set their own secret ENGAGEMENT_IP_HMAC_KEY; without one, extraction refuses.
export ENGAGEMENT_IP_HMAC_KEY="${ENGAGEMENT_IP_HMAC_KEY:-demo-only-sandbox-ip-key-not-secret}"
export DEMO_START="${DEMO_START:-2026-11-02}"
export DEMO_DAYS="${DEMO_DAYS:-7}"
mkdir -p "$ENGAGEMENT_DATA_DIR"
