from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from engagement.landing import Interval
    from engagement.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
# not a secret: pseudonymises the test logs' client IPs (real runs refuse to start without one)
TEST_IP_KEY = "test-only-ip-hmac-key-not-a-secret"
os.environ.setdefault("ENGAGEMENT_IP_HMAC_KEY", TEST_IP_KEY)
# the xdist workers share the machine's two cores: one dbt thread each
os.environ.setdefault("ENGAGEMENT_DBT_THREADS", "1")
# dbt's debug log file (dbt.log) is ~7% of a build's CPU, and only one test reads it (it asks
# for it): none written
os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")


@contextmanager
def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory of this test run that every xdist worker sees (their base temporary
    directories' parent; the base itself without xdist, as that parent is every run's),
    held under a lock: the first to take it makes there what the others then find."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def copy_data_dir(source: Path, target: Path) -> None:
    """A data directory copied so that it works on its own: the raw batches' links to their
    versions are relative, so they stay links and point into the copy."""
    shutil.copytree(source, target, symlinks=True)


@pytest.fixture(scope="session", autouse=True)
def dbt_partial_parse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One `dbt parse` for the whole run (every xdist worker), which every dbt build then
    starts from (DBT_PARTIAL_PARSE_FILE_PATH): dbt re-parses only the files that differ from
    it, instead of the whole project in each new data directory (~3 CPU-s per build).
    dbt checks it as it checks its own (project files, vars, profile) and parses all again
    when it does not match."""
    from engagement.settings import Settings
    from engagement.warehouse.build import dbt_command

    with once_per_run(tmp_path_factory, "dbt-partial-parse") as root:
        seed = root / "target" / "partial_parse.msgpack"
        if not seed.exists():
            settings = Settings.from_env({"ENGAGEMENT_DATA_DIR": str(root / "data")})
            settings.warehouse_dir.mkdir(parents=True)
            command, env, cwd = dbt_command(settings, root)
            command[command.index("build")] = "parse"
            parse = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
            assert parse.returncode == 0, parse.stdout[-2000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_PARTIAL_PARSE_FILE_PATH", str(seed))
        yield seed


def interruptible() -> None:
    """A child's `preexec_fn`: SIGINT back to its default, so a test's Ctrl-C reaches it
    even when pytest runs as a background job of a script (which starts with SIGINT
    ignored, and children inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def shared_file(relative: str) -> Path:
    """A file of ../shared/data; its absence fails the test clearly instead of skipping it."""
    path = SHARED / relative
    if not path.is_file():
        pytest.fail(f"reference data missing: {path} (CI provides ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def elastic_log() -> Path:
    return shared_file("access_logs/apache_logs_elastic_2015.log")


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    """The X API v2 sandbox serving the generated sample company, over real HTTP."""
    from devtools.x_sandbox import make_server

    server = make_server(0)
    yield server.start()
    server.stop()


TOKEN = "test-secret-token-4f1c"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for running `engagement` with a fresh data directory."""
    return dict(os.environ, ENGAGEMENT_DATA_DIR=str(tmp_path / "data"))


@pytest.fixture
def sandbox_env(env: dict[str, str], sandbox_url: str) -> dict[str, str]:
    """... pointed at the sandbox, as the README says to point it at the real API."""
    return dict(
        env, X_API_BASE_URL=sandbox_url, X_BEARER_TOKEN=TOKEN, X_ACCOUNTS="acmecloud,acmesupport"
    )


def authorise(env: dict[str, str], account: str) -> Any:
    """`account` signs in and authorises the app (user context), in process: the sandbox's
    authorize URL answered as a browser would, the code exchanged, the grant kept where the
    product keeps it. Needs X_CLIENT_ID in `env` (`user_context`)."""
    from engagement.settings import Settings
    from extract import x_auth

    settings = Settings.from_env(env)
    app = x_auth.OAuthApp.from_settings(settings)
    handler = app.handler(x_auth.scopes(settings.x_user_features))
    approved = requests.get(
        app.authorization_url(handler) + f"&sandbox_user={account}",
        allow_redirects=False,
        timeout=10,
    )
    assert approved.status_code == 302, approved.text
    token = app.exchange(handler, approved.headers["location"])
    user_id, _ = x_auth.authorised_username(app, token["access_token"])
    grant = x_auth.Grant.from_token(account, user_id, token, datetime.now(UTC))
    x_auth.TokenStore(settings.tokens_dir).save(grant)
    return grant


def user_context(env: dict[str, str]) -> dict[str, str]:
    """`env` with the X app's OAuth 2.0 client (any id works against the sandbox)."""
    return dict(env, X_CLIENT_ID="test-client-id", X_CLIENT_SECRET="test-client-secret-9d2e")


def company_env(data: Path, logs: Path, sandbox_url: str) -> dict[str, str]:
    """Environment for running the pipeline on the sample company: its logs in `logs`, its
    X accounts served by the sandbox, the data directory `data`."""
    return dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(data),
        X_API_BASE_URL=sandbox_url,
        X_BEARER_TOKEN=TOKEN,
        X_ACCOUNTS="acmecloud,acmesupport",
        SUPPORT_SITE_LOGS=str(logs / "access.log*"),
    )


def sample_company_env(root: Path, sandbox_url: str) -> dict[str, str]:
    """... with the sample's logs written to root/logs and the data directory root/data."""
    from devtools.sample import write_sample

    write_sample(root / "logs")
    return company_env(root / "data", root / "logs", sandbox_url)


FIRST_DAY = ("--start", "2026-11-02", "--end", "2026-11-03")


@dataclass(frozen=True)
class SampleRun:
    """The sample company's first day run by the CLI from nothing: its logs (shared: read,
    never changed), the data directory the run left and what it printed."""

    logs: Path
    data: Path
    stdout: str

    def copy(self, root: Path, sandbox_url: str) -> dict[str, str]:
        """A copy of the run's data directory at root/data, and the environment on it."""
        copy_data_dir(self.data, root / "data")
        return company_env(root / "data", self.logs, sandbox_url)


@pytest.fixture(scope="session")
def sample_day(tmp_path_factory: pytest.TempPathFactory, sandbox_url: str) -> SampleRun:
    """`engagement run` of the sample's first day: run once for the whole test run (both
    xdist workers, under a lock), then copied by each test that starts from there instead
    of run again (~13 CPU-s each)."""
    with once_per_run(tmp_path_factory, "sample-day") as root:
        printed = root / "stdout.txt"
        if not printed.exists():
            env = sample_company_env(root, sandbox_url)
            printed.write_text(engagement("run", *FIRST_DAY, env=env).stdout)  # last: done
    return SampleRun(root / "logs", root / "data", printed.read_text())


def engagement(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a data engineer would."""
    result = subprocess.run(
        [sys.executable, "-m", "engagement.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"engagement {' '.join(args)} failed:\n{result.stderr}")
    return result


def land(settings: Settings, interval: Interval, *sources: str) -> None:
    """Extract, gate and load the interval's batch of each source in this process, through
    the pipeline functions the CLI and the DAG's tasks call."""
    from engagement import pipeline

    for source in sources:
        pipeline.extract(settings, source, interval)
        pipeline.validate(settings, source, interval)
        pipeline.load_batch(settings, source, interval)


# columns that describe a batch's extraction and load, not the data: a re-run of the same
# interval moves them (the coverage's load time, and the files and lines read, fewer when the
# extraction skips files it knows have no line of the interval)
RUN_COLUMNS = {"agg_daily_source_coverage": "loaded_at, files_read, lines_read"}


def mart_hashes(published: Path) -> dict[str, str]:
    """A hash of every published mart table's full content, in a fixed order (without the
    RUN_COLUMNS)."""
    import duckdb

    prints = {}
    with duckdb.connect(str(published), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
        ).fetchall()
        for (table,) in tables:
            exclude = f"exclude ({RUN_COLUMNS[table]})" if table in RUN_COLUMNS else ""
            rows = con.execute(f"select * {exclude} from marts.{table} order by all").fetchall()
            prints[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return prints


# the longest files first, so the xdist workers (one file each at a time) end together
# (pyproject's --no-loadscope-reorder keeps this order; xdist would put the files with the
# most tests first)
LONGEST_FIRST = (
    "test_scheduler.py",  # the deployment: minutes on one worker while the other runs the rest
    "test_warehouse_x.py",
    "test_warehouse.py",
    "test_pipeline.py",
    "test_airflow.py",
    "test_airflow_local.py",  # make airflow booted and stopped: ~1.5 min
    "test_dbt_project.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
