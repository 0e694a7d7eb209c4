"""Every setting of the product, in one place: a pydantic-settings model read from the
environment. Each field's alias is its variable; its description and shown default make
docs/configuration.md (scripts/settings_reference.py renders it; a test keeps the two
equal). Secrets are `SecretStr`: they show
as `**********` in reprs, errors and dumps, and only `get_secret_value()` reveals them."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engagement.errors import UsageError

REAL_X_API = "https://api.twitter.com"
X_PRICING = "https://docs.x.com/x-api/getting-started/pricing"
PRICES_AS_OF = f"as X's pricing page ({X_PRICING}) gave it on 2026-12-07"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Names = Annotated[tuple[str, ...], NoDecode]  # comma-separated in the environment
Networks = Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode]  # likewise, CIDR
USER_FEATURES = ("dm_events", "private_metrics")  # what X_USER_FEATURES may name


class SettingsError(UsageError, ValueError):
    """A setting's value is unusable: one line naming the variable and what it expects."""


def _setting(
    default: Any, variable: str, description: str, shown: str | None = None, **bounds: float | str
) -> Any:
    """A field read from `variable`; `shown` is its default as docs/configuration.md writes
    it; `bounds` are pydantic's (ge=0: not negative, gt=0: positive; pattern: a regex)."""
    shown = shown if shown is not None else f"`{default}`"
    extra = {"shown": shown}
    return Field(
        default, alias=variable, description=description, json_schema_extra=extra, **bounds
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, env_ignore_empty=True, hide_input_in_errors=True, extra="ignore"
    )

    data_dir: Path = _setting(
        Path("data"),
        "ENGAGEMENT_DATA_DIR",
        "root of everything the product writes: `raw/`, `versions/`, `quarantine/`,"
        " `validations/`, `state/`, `warehouse/`, `reports/`, `dbt/` (a relative path is"
        " taken from the working directory)",
        "`./data`",
    )
    report_path: Path | None = _setting(
        None,
        "ENGAGEMENT_REPORT_PATH",
        "the HTML report the mart DAG writes after each publish (`engagement report` writes"
        " it too, or to `--out`)",
        "`<ENGAGEMENT_DATA_DIR>/reports/engagement.html`",
    )
    x_api_base_url: str = _setting(
        REAL_X_API,
        "X_API_BASE_URL",
        "where tweepy's requests go: the real X API, or the sandbox's URL"
        " (`http://127.0.0.1:8765` under `make demo`)",
    )
    x_bearer_token: SecretStr | None = _setting(
        None,
        "X_BEARER_TOKEN",
        "X API v2 app bearer token; any value works on the sandbox. Under Airflow, the"
        " password of the connection `ENGAGEMENT_X_CONN_ID` wins when there is one",
        "none (required for X)",
    )
    x_accounts: Names = _setting(
        (),
        "X_ACCOUNTS",
        "comma-separated usernames of the company's X accounts, without `@`",
        "none (required for X)",
    )
    support_site_logs: str | None = _setting(
        None,
        "SUPPORT_SITE_LOGS",
        "glob of the access-log files (plain or `.gz`), a directory (its files that are not"
        " hidden), or several `site=glob` entries separated by commas (`--logs` overrides);"
        " a glob without `site=` belongs to the first `SUPPORT_SITE_HOSTS`",
        "none",
    )
    support_site_log_format: str = _setting(
        "combined",
        "SUPPORT_SITE_LOG_FORMAT",
        "`combined` (Apache/nginx combined or common), `vhost_combined` (`host:port` first;"
        " the host becomes the row's site), or an nginx `log_format` string such as"
        """ `'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent"""
        """ "$http_referer" "$http_user_agent" $request_time'` (variables: see"""
        " `extract/log_format.py`)",
    )
    ip_hmac_key: SecretStr | None = _setting(
        None,
        "ENGAGEMENT_IP_HMAC_KEY",
        "secret key of the HMAC-SHA256 pseudonyms that replace client IPs (16+ bytes)."
        " Without it support-site extraction refuses to run; the demo sets a labelled"
        " demo-only key in `scripts/sandbox_env.sh`. Changing it changes every visitor id",
        "none (required for access logs)",
    )
    support_site_block_mb: int = _setting(
        16,
        "SUPPORT_SITE_BLOCK_MB",
        "size of the block of log text parsed at a time: the extraction's memory is bounded"
        " by a few blocks, not by the file",
        gt=0,
    )
    support_site_part_mb: float = _setting(
        512,
        "SUPPORT_SITE_PART_MB",
        "log content (uncompressed) per part of an interval's extraction: the ingest DAG"
        " parses each part of a site's files in a task of its own (`support_site.extract_part`,"
        " on any Celery worker) and combines the parts into one batch; a larger file is a"
        " part of its own",
        gt=0,
    )
    support_site_hosts: Names = _setting(
        ("support.acme.example",),
        "SUPPORT_SITE_HOSTS",
        "hosts of the support site: referrals from them are internal navigation",
        "`support.acme.example`",
    )
    support_site_internal_networks: Networks = _setting(
        (),
        "SUPPORT_SITE_INTERNAL_NETWORKS",
        "comma-separated IPv4 and IPv6 networks of the company (offices, VPN), e.g."
        " `10.0.0.0/8,192.168.0.0/16,2001:db8:1::/48`; a bare address is a `/32` or `/128`."
        " Their requests land with `internal_kind` = `internal_network`, decided at extraction"
        " (the IP is not kept): a change applies to the intervals extracted from then on",
        "none",
    )
    company_site_hosts: Names = _setting(
        ("www.acme.example", "acme.example"),
        "COMPANY_SITE_HOSTS",
        "hosts of the company's own website (channel `own_site`)",
        "`www.acme.example,acme.example`",
    )
    support_site_answer_paths: Names = _setting(
        ("/articles/*",),
        "SUPPORT_SITE_ANSWER_PATHS",
        "comma-separated path patterns of the support site's answer pages (articles, knowledge"
        " base), e.g. `/kb/*,/articles/*`: `*` stands for any characters (`/` included), `?`"
        " for one; a pattern matches the whole path, compared without query string, fragment"
        " or trailing slash. The reply funnel counts the visits from a reply's link that reach"
        " one (`marts.fct_x_reply_funnel`)",
        "`/articles/*`",
    )
    dbt_project_dir: Path = _setting(
        PROJECT_ROOT / "dbt_project",
        "ENGAGEMENT_DBT_PROJECT_DIR",
        "the dbt project `engagement build` runs",
        "`dbt_project/` of the repository",
    )
    warehouse_engine: Literal["duckdb", "spark"] = _setting(
        "duckdb",
        "ENGAGEMENT_WAREHOUSE_ENGINE",
        "what builds the mart: `duckdb` (one process, the build file) or `spark` (dbt's"
        " `spark` target, for data beyond one machine: `make setup-spark`, docs/spark.md); the"
        " published mart is the same DuckDB file either way",
        "`duckdb`",
    )
    spark_thrift: str | None = _setting(
        None,
        "ENGAGEMENT_SPARK_THRIFT",
        "`host:port` of a Spark Thrift Server the `spark` engine's dbt sends its SQL to"
        " instead of driving ENGAGEMENT_SPARK_MASTER itself (EMR's, Dataproc's, a standalone"
        " cluster's); its `spark.sql.warehouse.dir` must be this data directory's"
        " `warehouse/spark/warehouse`, on storage both see at the same path",
        "none",
        pattern=r"^[^\s:]+:\d+$",
    )
    spark_master: str = _setting(
        "local[*]",
        "ENGAGEMENT_SPARK_MASTER",
        "the Spark master the `spark` engine's build drives: `local[*]` (this machine's"
        " cores) or a cluster's URL, e.g. `spark://spark-master:7077`; the cluster's workers"
        " must see the data directory at the same path (shared storage)",
        "`local[*]`",
    )
    build_lock_wait: float = _setting(
        10.0,
        "ENGAGEMENT_BUILD_LOCK_WAIT",
        "seconds a build waits for a running build to finish before it fails saying which"
        " process holds the warehouse",
        "`10`",
        ge=0,
    )
    dbt_threads: int = _setting(
        2,
        "ENGAGEMENT_DBT_THREADS",
        "dbt threads of a build (models and tests run side by side); one per core the build"
        " may use",
        "`2`",
        ge=1,
    )
    min_volume_share: float = _setting(
        0.1,
        "ENGAGEMENT_MIN_VOLUME_SHARE",
        "a batch with fewer records than this share of the median of the source's last 7"
        " batches is refused as an outage (0: no volume check; `load --allow-empty` for one"
        " batch)",
        "`0.1`",
        ge=0,
        le=1,
    )
    raw_retention_days: int = _setting(
        30,
        "ENGAGEMENT_RAW_RETENTION_DAYS",
        "days a superseded version of a raw batch is kept (from when a newer version"
        " replaced it) for `engagement raw restore`; older ones are removed when a version is"
        " promoted",
        ge=0,
    )
    x_rate_limit_max_wait: float = _setting(
        900.0,
        "X_RATE_LIMIT_MAX_WAIT",
        "longest wait, in seconds, for a rate-limit window to reset (after a 429, or when"
        " `x-rate-limit-remaining` reaches 0); beyond it the run fails and can simply be"
        " re-run",
        "`900`",
        ge=0,
    )
    x_max_retries: int = _setting(
        5,
        "X_MAX_RETRIES",
        "retries of a request after a 5xx, a connection error or a malformed page",
        ge=0,
    )
    x_retry_backoff: float = _setting(
        2.0,
        "X_RETRY_BACKOFF",
        "first retry delay in seconds, doubled at each further retry",
        "`2`",
        ge=0,
    )
    x_metrics_refresh_days: int = _setting(
        7,
        "X_METRICS_REFRESH_DAYS",
        "own posts of the last N days get their metrics re-read on every run",
        ge=0,
    )
    x_timeline_cap: int = _setting(
        3200,
        "X_TIMELINE_CAP",
        "how many most recent posts of a user the API serves (its documented reach): an"
        " interval reaching past them is a warning and a gap recorded in the batch",
        ge=0,
    )
    x_mentions_cap: int = _setting(
        800,
        "X_MENTIONS_CAP",
        "how many most recent mentions of a user the API serves: an interval reaching past"
        " them is a warning and a gap recorded in the batch",
        ge=0,
    )
    x_price_post_read: float = _setting(
        0.005,
        "X_PRICE_POST_READ",
        f"USD X bills per post read (a post served, once per UTC day), {PRICES_AS_OF}",
        ge=0,
    )
    x_price_user_read: float = _setting(
        0.010,
        "X_PRICE_USER_READ",
        f"USD X bills per user read (a user served, once per UTC day), {PRICES_AS_OF}",
        ge=0,
    )
    x_price_dm_event_read: float = _setting(
        0.010,
        "X_PRICE_DM_EVENT_READ",
        f"USD X bills per DM event read (once per UTC day), {PRICES_AS_OF}",
        ge=0,
    )
    x_price_owned_read: float = _setting(
        0.001,
        "X_PRICE_OWNED_READ",
        "USD X bills per owned read: what an account's own timeline or mentions serve when"
        f" read with that account's user-context token (once per UTC day), {PRICES_AS_OF}",
        ge=0,
    )
    x_monthly_budget: float | None = _setting(
        None,
        "ENGAGEMENT_X_MONTHLY_BUDGET",
        "USD the X extraction may spend in a calendar month (UTC): a run whose estimated cost"
        " would take the month's spend (state/x_bill/) past it is refused before any request"
        " (exit 2); `engagement x-usage` shows the spend",
        "none: no limit",
        ge=0,
    )
    x_refresh_skip_same_day: bool = _setting(
        False,
        "X_REFRESH_SKIP_SAME_DAY",
        "the metrics refresh does not read again the posts a batch landed the same UTC day"
        " looked up: their lookup pages are carried into the new batch as received (marked"
        " `reused_from`), so the mart is what a re-read of unchanged posts would make it. Off"
        " by default: X bills a post once per UTC day anyway (this saves requests, not money),"
        " and a post deleted or re-metered since that read is seen only by the next day's run",
        "`false`",
    )
    x_answer_window_days: int = _setting(
        7,
        "X_ANSWER_WINDOW_DAYS",
        "a mention not answered within this many days is unanswered (quintly's 7 days); a"
        " company reply after it is late and no answer, and a mention whose window is still"
        " open at the end of the X data is waiting",
        gt=0,
    )
    x_company_usernames: Names = _setting(
        (),
        "X_COMPANY_USERNAMES",
        "comma-separated usernames of the company's other accounts (jobs, status, staff),"
        " not measured: their mentions need no answer",
        "none",
    )
    x_bot_usernames: Names = _setting(
        (),
        "X_BOT_USERNAMES",
        "comma-separated usernames of automated accounts (alerts, feeds, deal bots): their"
        " mentions need no answer",
        "none",
    )
    x_needs_answer_questions_only: bool = _setting(
        False,
        "X_NEEDS_ANSWER_QUESTIONS_ONLY",
        "only mentions with a question mark need an answer (quintly's rule); by default a"
        " complaint or request without one needs an answer too, and thanks or praise with no"
        " sign of a problem does not (`dbt_project/macros/needs_answer.sql`)",
        "`false`",
    )
    x_client_id: str | None = _setting(
        None,
        "X_CLIENT_ID",
        'the OAuth 2.0 client id of your X developer app (its "Keys and tokens" page):'
        " `engagement x-login` needs it, and so does refreshing the tokens; in Airflow, the"
        " login of the `ENGAGEMENT_X_OAUTH_CONN_ID` connection instead",
        "none: no user-context access (DMs, private metrics)",
    )
    x_client_secret: SecretStr | None = _setting(
        None,
        "X_CLIENT_SECRET",
        "the OAuth 2.0 client secret of a confidential X app (none for a public one); in"
        " Airflow, the password of the `ENGAGEMENT_X_OAUTH_CONN_ID` connection instead",
        "none",
    )
    x_redirect_uri: str = _setting(
        "http://127.0.0.1:8976/callback",
        "X_REDIRECT_URI",
        "the callback URL registered in the X app's user authentication settings;"
        " `engagement x-login` catches the redirect itself when it is a loopback address"
        " (`127.0.0.1` or `localhost` with a port), otherwise asks you to paste it",
    )
    x_user_features: Names = _setting(
        ("dm_events", "private_metrics"),
        "X_USER_FEATURES",
        "what user-context access is used for, comma-separated: `dm_events` (scope"
        " `dm.read`) and `private_metrics` (each run snapshots the account's own posts of X's"
        " last 30 days with their private metrics); `engagement x-login` asks for these scopes",
        "`dm_events,private_metrics`",
    )
    x_tokens_dir: Path | None = _setting(
        None,
        "ENGAGEMENT_X_TOKENS_DIR",
        "where each authorised account's OAuth 2.0 tokens are kept, a file per account"
        " readable only by its owner (rotated on refresh under a lock: every worker must see"
        " the same directory)",
        "`<ENGAGEMENT_DATA_DIR>/state/x_tokens`",
    )
    accounts_file: Path | None = _setting(
        None,
        "ENGAGEMENT_ACCOUNTS_FILE",
        "YAML file of each X account's time zone, weekly opening hours, holidays (country and"
        " subdivision of the `holidays` package) and first-response target (minutes, calendar"
        " or business): the format is in docs/care.md",
        "none: every account open 24/7 in UTC, a 60-minute calendar target",
    )
    start_date: date = _setting(
        date(2026, 11, 2),
        "ENGAGEMENT_START_DATE",
        "Airflow: the first day the DAGs land; the scheduler catches up every day from it"
        " (X serves only the latest 800 mentions and 3,200 posts of an account, and logs"
        " rotate away: do not reach further back than they do)",
        "`2026-11-02`",
    )
    landing_delay_minutes: int = _setting(
        30,
        "ENGAGEMENT_LANDING_DELAY_MINUTES",
        "Airflow: minutes an interval's extraction waits after the interval ends, for late"
        " log lines and posts (a deferred wait: it holds no worker slot)",
        ge=0,
    )
    x_conn_id: str = _setting(
        "x_api",
        "ENGAGEMENT_X_CONN_ID",
        "Airflow: the connection whose password is the X bearer token; without such a"
        " connection, `X_BEARER_TOKEN`",
    )
    x_oauth_conn_id: str = _setting(
        "x_oauth",
        "ENGAGEMENT_X_OAUTH_CONN_ID",
        "Airflow: the connection whose login and password are the X app's OAuth 2.0 client id"
        " and secret; without such a connection, `X_CLIENT_ID` and `X_CLIENT_SECRET`",
    )
    alert_conn_id: str | None = _setting(
        None,
        "ENGAGEMENT_ALERT_CONN_ID",
        "Airflow: a connection a failed task is also reported to (every failure is logged):"
        " type `http`, a webhook sent a JSON POST, or `smtp`, mail to its extra's `to`",
        "none",
    )

    # where x_bearer_token came from, as an error message names it ("check ..."): not a
    # setting of its own, so not read from the environment nor shown in docs/configuration.md
    _x_token_source: str = PrivateAttr("X_BEARER_TOKEN")

    @field_validator(
        "x_accounts",
        "x_company_usernames",
        "x_bot_usernames",
        "support_site_hosts",
        "company_site_hosts",
        "support_site_answer_paths",
        "x_user_features",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("support_site_internal_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for entry in (item.strip() for item in value.split(",")):
            if not entry:
                continue
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                example = "such as 10.0.0.0/8 or 2001:db8::/32"
                raise ValueError(f"{entry!r} is not an IP network {example}") from None
            if network.network_address != ipaddress.ip_address(entry.partition("/")[0]):
                raise ValueError(f"{entry!r} has host bits set: the network is {network}")
            networks.append(network)
        return tuple(networks)

    @field_validator("support_site_answer_paths")
    @classmethod
    def _path_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not pattern.startswith(("/", "*")):
                raise ValueError(f"each path pattern starts with / or * ({pattern!r} does not)")
        return value

    @field_validator("x_user_features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(USER_FEATURES))
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}: expected {', '.join(USER_FEATURES)}")
        return value

    @field_validator("data_dir", "dbt_project_dir", "report_path", "accounts_file", "x_tokens_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.resolve()

    @field_validator("x_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of the process environment, `env` overriding it. A bad value raises
        SettingsError naming the variable."""
        variables = {field.alias for field in cls.model_fields.values()}
        overrides = {k: v for k, v in (env or {}).items() if k in variables and v != ""}
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SettingsError(_one_line(cls, exc)) from None

    @property
    def x_token_source(self) -> str:
        """What to check when the X API refuses the token: `X_BEARER_TOKEN`, or the
        Airflow connection whose password it is (`with_x_token`)."""
        return self._x_token_source

    def with_x_token(self, token: str, source: str) -> Settings:
        """These settings with the X bearer token `token`, taken from `source` (the words
        an error names it with, e.g. "the Airflow connection x_api's password")."""
        copy = self.model_copy(update={"x_bearer_token": SecretStr(token)})
        copy.__pydantic_private__["_x_token_source"] = source
        return copy

    def check_writable(
        self, *paths: Path, files: tuple[Path, ...] = (), setting: str | None = None
    ) -> None:
        """Refuse, in one line naming the setting (`NAME=value`, by default
        ENGAGEMENT_DATA_DIR's) what a command cannot write: each of the directories `paths`
        (default: the data directory) and `files` must be writable, or not exist yet under a
        writable directory (nothing is created here)."""
        shown = setting or f"ENGAGEMENT_DATA_DIR={self.data_dir}"
        wanted = [(path, False) for path in paths or (() if files else (self.data_dir,))]
        for path, is_file in wanted + [(file, True) for file in files]:
            why = _unwritable(path, is_file)
            if why:
                raise UsageError(
                    f"{shown}: cannot write {path} ({why}): set {shown.partition('=')[0]}"
                    " to a writable place or fix its permissions"
                )

    def check_data_dir(self) -> None:
        """Refuse a data directory that is not one (a file, or under a file), naming
        ENGAGEMENT_DATA_DIR: what reading commands need (a missing one is empty)."""
        existing = self.data_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(
                f"ENGAGEMENT_DATA_DIR={self.data_dir}: {existing} is not a directory: set"
                " ENGAGEMENT_DATA_DIR to the data directory"
            )

    @property
    def x_policy(self) -> Policy:
        return Policy(
            max_wait=self.x_rate_limit_max_wait,
            max_retries=self.x_max_retries,
            backoff=self.x_retry_backoff,
            refresh_days=self.x_metrics_refresh_days,
            timeline_cap=self.x_timeline_cap,
            mentions_cap=self.x_mentions_cap,
            token_source=self.x_token_source,
            refresh_skip_same_day=self.x_refresh_skip_same_day,
        )

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def versions_dir(self) -> Path:
        """Every landed version of the raw batches (raw/ links to those in force)."""
        return self.data_dir / "versions"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def tokens_dir(self) -> Path:
        return self.x_tokens_dir or self.state_dir / "x_tokens"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def validations_dir(self) -> Path:
        return self.data_dir / "validations"

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

    @property
    def spark_dir(self) -> Path:
        """The `spark` engine's files: the raw export, its warehouse and metastore."""
        return self.warehouse_dir / "spark"

    @property
    def report_file(self) -> Path:
        return self.report_path or self.data_dir / "reports" / "engagement.html"


def _unwritable(path: Path, is_file: bool = False) -> str | None:
    """Why the directory (or file) `path` cannot be written (None when it can): it, or its
    nearest existing ancestor, is not a directory (is a file) or is not writable."""
    if is_file:
        if path.is_dir():
            return f"{path} is a directory"
        if path.exists() and not os.access(path, os.W_OK):
            return f"{path} is read-only"
        path = path.parent  # a database also writes a journal beside its file
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class Policy:
    """How the X extractor treats the API's limits and faults (settings X_*, same defaults)."""

    max_wait: float = _default("x_rate_limit_max_wait")
    max_retries: int = _default("x_max_retries")
    backoff: float = _default("x_retry_backoff")
    timeout: float = 30.0  # per request, seconds
    refresh_days: int = _default("x_metrics_refresh_days")
    timeline_cap: int = _default("x_timeline_cap")
    mentions_cap: int = _default("x_mentions_cap")
    token_source: str = "X_BEARER_TOKEN"  # what to check when the API refuses the token
    refresh_skip_same_day: bool = _default("x_refresh_skip_same_day")


def _one_line(model: type[Settings], exc: ValidationError) -> str:
    """`VARIABLE: what is wrong (got 'value')`, the value left out for secrets."""
    error = exc.errors()[0]
    variable = str(error["loc"][0]) if error["loc"] else "settings"
    field = next((f for f in model.model_fields.values() if f.alias == variable), None)
    message = f"invalid setting {variable}: {error['msg']}"
    if field is not None and field.annotation not in (SecretStr, SecretStr | None):
        message += f" (got {error['input']!r})" if "input" in error else ""
    return message
