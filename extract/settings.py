"""Every setting of the product, read from the environment (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REAL_X_API = "https://api.twitter.com"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Policy:
    """How the X extractor treats the API's limits and faults (settings X_*)."""

    max_wait: float = 900.0  # longest wait for a rate-limit window to reset, seconds
    max_retries: int = 5  # attempts after the first, for 5xx, connection errors, bad pages
    backoff: float = 2.0  # first retry delay, doubled on each further attempt, seconds
    timeout: float = 30.0  # per request, seconds
    refresh_days: int = 7  # posts of the last N days get their metrics re-read
    timeline_cap: int = 3200  # the API serves only this many most recent posts ...
    mentions_cap: int = 800  # ... and mentions of a user


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    x_api_base_url: str
    x_bearer_token: str | None
    x_accounts: tuple[str, ...]
    support_site_logs: str | None
    support_site_hosts: tuple[str, ...]
    company_site_hosts: tuple[str, ...]
    dbt_project_dir: Path
    x_policy: Policy = Policy()
    ip_hmac_key: str | None = field(default=None, repr=False)  # secret: never shown
    support_site_log_format: str = "combined"
    support_site_block_mb: int = 16

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            data_dir=Path(env.get("ENGAGEMENT_DATA_DIR", "data")).resolve(),
            x_api_base_url=env.get("X_API_BASE_URL", REAL_X_API).rstrip("/"),
            x_bearer_token=env.get("X_BEARER_TOKEN") or None,
            x_accounts=_list(env.get("X_ACCOUNTS", "")),
            support_site_logs=env.get("SUPPORT_SITE_LOGS") or None,
            support_site_hosts=_list(env.get("SUPPORT_SITE_HOSTS", "support.acme.example")),
            company_site_hosts=_list(
                env.get("COMPANY_SITE_HOSTS", "www.acme.example,acme.example")
            ),
            dbt_project_dir=Path(
                env.get("ENGAGEMENT_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project")
            ).resolve(),
            ip_hmac_key=env.get("ENGAGEMENT_IP_HMAC_KEY") or None,
            support_site_log_format=env.get("SUPPORT_SITE_LOG_FORMAT") or "combined",
            support_site_block_mb=int(env.get("SUPPORT_SITE_BLOCK_MB", "16")),
            x_policy=Policy(
                max_wait=float(env.get("X_RATE_LIMIT_MAX_WAIT", "900")),
                max_retries=int(env.get("X_MAX_RETRIES", "5")),
                backoff=float(env.get("X_RETRY_BACKOFF", "2")),
                refresh_days=int(env.get("X_METRICS_REFRESH_DAYS", "7")),
                timeline_cap=int(env.get("X_TIMELINE_CAP", "3200")),
                mentions_cap=int(env.get("X_MENTIONS_CAP", "800")),
            ),
        )

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def raw_db(self) -> Path:
        return self.warehouse_dir / "raw.duckdb"

    @property
    def build_db(self) -> Path:
        return self.warehouse_dir / "build.duckdb"

    @property
    def published_db(self) -> Path:
        return self.warehouse_dir / "engagement.duckdb"
