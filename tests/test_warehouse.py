"""The incremental warehouse: builds that take in only what changed publish the same marts as a
full refresh, whatever the order of loads; killed and concurrent builds lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest.mock import ANY

import duckdb
import pytest

from engagement import pipeline
from engagement.landing import Interval
from engagement.settings import Settings
from engagement.warehouse.build import BuildSummary, Plan, build_and_publish, plan
from tests.conftest import REPO, copy_data_dir, land, mart_hashes, sample_company_env

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, Airflow or warehouse

DAY = timedelta(days=1)
CHAIN_HOST = "chain.example"  # the referrer of the visitor whose visit lasts over a day
MIDNIGHT_HOST = "midnight.example"  # the referrer of the visitor who stays past midnight
ROBOTS_HOST = "robots.example"  # the referrer of a visitor whose /robots.txt fetch comes late


def line(ip: str, at: datetime, path: str, referrer: str) -> str:
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" 200 512 "{referrer}" '
        '"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"\n'
    )


def chain_lines() -> str:
    """A page view every 20 minutes from 2026-11-04 22:00 to 2026-11-06 01:00 (one visit of
    27 hours), and a visit from 2026-11-05 23:50 to 2026-11-06 00:10 (across midnight)."""
    at, lines = datetime(2026, 11, 4, 22), []
    while at <= datetime(2026, 11, 6, 1):
        lines.append(line("203.0.113.7", at, "/articles/status", f"https://{CHAIN_HOST}/"))
        if at.hour in (0, 22) and at.minute == 0:  # a browser: its style sheet, each day
            lines.append(line("203.0.113.7", at, "/static/site.css", f"https://{CHAIN_HOST}/"))
        at += timedelta(minutes=20)
    for at in (datetime(2026, 11, 5, 23, 50), datetime(2026, 11, 6, 0, 10)):
        lines.append(line("203.0.113.8", at, "/articles/sso", f"https://{MIDNIGHT_HOST}/"))
    at = datetime(2026, 11, 5, 10)
    lines.append(line("203.0.113.10", at, "/articles/sso", f"https://{ROBOTS_HOST}/"))
    return "".join(sorted(lines, key=lambda text: text.split("[")[1]))


def late_lines() -> str:
    """Lines of 2026-11-05 in a log that arrives after that day was loaded: one joins the
    midnight visit (which then starts at 23:30), one is a visitor of its own, one is the
    /robots.txt fetch that makes the visitor from ROBOTS_HOST a bot for that day."""
    return (
        line(
            "203.0.113.8",
            datetime(2026, 11, 5, 23, 30),
            "/articles/sso",
            f"https://{MIDNIGHT_HOST}/",
        )
        + line("203.0.113.9", datetime(2026, 11, 5, 12), "/", "https://www.bing.com/")
        + line("203.0.113.10", datetime(2026, 11, 5, 10, 1), "/robots.txt", "-")
    )


@dataclass
class Warehouse:
    settings: Settings
    logs: Path
    steps: list[BuildSummary] = field(default_factory=list)
    kinds: list[set[str]] = field(default_factory=list)  # of the dbt nodes each build ran

    @property
    def published(self) -> Path:
        return self.settings.published_db

    def load(self, day: date) -> None:
        land(self.settings, Interval.parse(str(day), str(day + DAY)), "x", "support_site")

    def build(self, **kwargs) -> BuildSummary:
        result = build_and_publish(self.settings, **kwargs)
        self.steps.append(result)
        path = self.settings.data_dir / "dbt" / "target" / "run_results.json"
        results = json.loads(path.read_text())["results"] if path.exists() else []
        self.kinds.append({node["unique_id"].split(".")[0] for node in results})
        return result

    def marts(self) -> dict[str, str]:
        return mart_hashes(self.published)

    def sessions_from(self, host: str) -> dict[date, int]:
        with duckdb.connect(str(self.published), read_only=True) as con:
            rows = con.execute(
                "select date_day, sessions from marts.agg_daily_referrals"
                " where referrer_network = ? order by 1",
                [host],
            ).fetchall()
        return dict(rows)

    def session_starts(self, network: str, day: date) -> list[datetime]:
        """When each published session of the day from the referrer network started."""
        with duckdb.connect(str(self.published), read_only=True) as con:
            rows = con.execute(
                "select session_started_at from marts.fct_support_sessions"
                " where referrer_network = ? and session_date = ? order by 1",
                [network, day],
            ).fetchall()
        return [started for (started,) in rows]


def make_warehouse(root: Path, sandbox_url: str) -> Warehouse:
    env = sample_company_env(root, sandbox_url)
    logs = root / "logs"
    (logs / "access.log-chain").write_text(chain_lines())
    return Warehouse(Settings.from_env(env), logs)


@pytest.fixture(scope="module")
def loaded_out_of_order(
    tmp_path_factory: pytest.TempPathFactory, sandbox_url: str
) -> Iterator[tuple[Warehouse, dict]]:
    """Days loaded and built one at a time, out of order, with a rerun and a late log:
    5, 6, 4 (a backfill that joins a visit to the day after), 5 again after a late log;
    then day 4's access-log batch removed; then days 2 (before all others) and 8, far
    apart, in one build."""
    warehouse = make_warehouse(tmp_path_factory.mktemp("warehouse"), sandbox_url)
    seen: dict = {}
    for step, day in enumerate([date(2026, 11, 5), date(2026, 11, 6), date(2026, 11, 4)]):
        warehouse.load(day)
        warehouse.build()
        seen[step] = (warehouse.sessions_from(CHAIN_HOST), warehouse.sessions_from(MIDNIGHT_HOST))
    late = [
        (warehouse.session_starts(n, date(2026, 11, 5)), n)
        for n in ("Bing", MIDNIGHT_HOST, ROBOTS_HOST)
    ]
    (warehouse.logs / "access.log-late").write_text(late_lines())
    warehouse.load(date(2026, 11, 5))
    warehouse.build()
    seen["late"] = [(before, warehouse.session_starts(n, date(2026, 11, 5))) for before, n in late]
    # retention: day 4's access-log batch is dropped from the raw warehouse with its load
    with duckdb.connect(str(warehouse.settings.raw_db)) as raw:
        batch = Interval.parse("2026-11-04", "2026-11-05").batch_id
        raw.execute("delete from support_site.requests where batch_id = ?", [batch])
        raw.execute(
            "delete from main.batches where source = 'support_site' and batch_id = ?", [batch]
        )
    warehouse.build()
    seen["removed"] = warehouse.sessions_from(CHAIN_HOST)
    warehouse.load(date(2026, 11, 2))
    warehouse.load(date(2026, 11, 8))
    seen["windows"] = plan(warehouse.settings).windows
    warehouse.build()
    seen["incremental"] = warehouse.marts()
    yield warehouse, seen


def test_incremental_builds_publish_what_a_full_refresh_does(loaded_out_of_order) -> None:
    """The one check that incremental marts equal a full refresh's, to the hash: after
    out-of-order loads of both sources, a rerun with a late log, a backfill and a removed
    batch."""
    warehouse, seen = loaded_out_of_order
    assert [step.full_refresh for step in warehouse.steps] == [True] + [False] * 5
    assert [step.changed_loads for step in warehouse.steps] == [2] * 4 + [1, 4]
    # days 2 and 8 rebuilt in two dbt runs, a day each side, not days 1 to 9 in one
    nov = [date(2026, 11, day) for day in (1, 4, 7, 10)]
    assert seen["windows"] == ((nov[0], nov[1]), (nov[2], nov[3]))
    # published in place: the days the builds rebuilt replaced in the marts built by day
    by_day = ["agg_daily_excluded_traffic", "agg_daily_referrals", "fct_support_sessions"]
    assert [step.updated_in_place for step in warehouse.steps] == [[]] + [by_day] * 5
    result = warehouse.build(full_refresh=True)
    assert result.full_refresh and result.changed_loads == 9
    assert warehouse.marts() == seen["incremental"]
    # every build ran models and data tests, none the dbt unit tests (CI runs those)
    assert all({"model", "test"} <= kinds for kinds in warehouse.kinds)
    assert not any("unit_test" in kinds for kinds in warehouse.kinds)


def test_a_visit_is_regrouped_when_an_earlier_day_arrives(loaded_out_of_order) -> None:
    _, seen = loaded_out_of_order
    day4, day5 = date(2026, 11, 4), date(2026, 11, 5)
    # day 5 alone: the 27-hour visit starts at its midnight; the midnight visit is one
    assert seen[0] == ({day5: 1}, {day5: 1})
    # day 6 loaded: both visits go on into it, still one session each, started on day 5
    assert seen[1] == ({day5: 1}, {day5: 1})
    # day 4 backfilled: the long visit now started on day 4; day 5 loses its session
    assert seen[2] == ({day4: 1}, {day5: 1})
    # day 4's log removed: the visit starts on day 5 again
    assert seen["removed"] == {day5: 1}


def test_a_late_log_is_taken_in_when_its_day_is_rerun(loaded_out_of_order) -> None:
    _, seen = loaded_out_of_order
    (bing_before, bing_after), (midnight_before, midnight_after), robots = seen["late"]
    # the late visitor from Bing is one more session of the day, started at its one line
    assert len(bing_before) >= 1  # the sample's own Bing visitors (so a count of 1 proves nothing)
    assert sorted(bing_after) == sorted([*bing_before, datetime(2026, 11, 5, 12)])
    # the late line joins the midnight visit: still one session, which now starts earlier
    assert (midnight_before, midnight_after) == (
        [datetime(2026, 11, 5, 23, 50)],
        [datetime(2026, 11, 5, 23, 30)],
    )
    # the late /robots.txt fetch makes its visitor a bot for the day: its session is gone
    assert robots == ([datetime(2026, 11, 5, 10)], [])


def test_a_build_with_nothing_new_runs_no_dbt(loaded_out_of_order) -> None:
    warehouse, _ = loaded_out_of_order
    before = warehouse.published.stat().st_mtime_ns
    results = warehouse.settings.data_dir / "dbt" / "target" / "run_results.json"
    results.unlink(missing_ok=True)
    result = warehouse.build()
    assert (result.full_refresh, result.changed_loads, result.tables) == (False, 0, [])
    assert not results.exists()
    assert warehouse.published.stat().st_mtime_ns == before


def copy_of(warehouse: Warehouse, root: Path) -> Warehouse:
    """The same warehouse in another data directory, its day 6 re-loaded (nothing built)."""
    copy_data_dir(warehouse.settings.data_dir, root / "data")
    copy = Warehouse(
        warehouse.settings.model_copy(update={"data_dir": root / "data"}), warehouse.logs
    )
    interval = Interval.parse("2026-11-06", "2026-11-07")
    for source in ("x", "support_site"):
        pipeline.load_batch(copy.settings, source, interval)
    return copy


def test_changed_vars_or_an_unfinished_full_build_rebuild_everything(
    loaded_out_of_order, tmp_path: Path
) -> None:
    warehouse = copy_of(loaded_out_of_order[0], tmp_path)
    # day 6 re-loaded: dbt rebuilds days 5 to 7 (a day each side, see plan_build)
    day6 = (date(2026, 11, 5), date(2026, 11, 8))
    assert plan(warehouse.settings) == Plan(False, ("support_site", "x"), 2, ANY, (day6,))
    other = warehouse.settings.model_copy(update={"company_site_hosts": ("acme.example",)})
    assert plan(other).full_refresh
    # that full build did not happen: the next build, whatever its vars, is a full one
    # over the days of the data: the access logs of days 2 to 8 (not 4), and a day each side
    every_day = (date(2026, 11, 1), date(2026, 11, 10))
    assert plan(warehouse.settings) == Plan(True, ("support_site", "x"), 9, ANY, (every_day,))


def engagement_build(settings: Settings, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engagement.cli", "build"],
        env=dict(os.environ, ENGAGEMENT_DATA_DIR=str(settings.data_dir), **env),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended after iterdir listed it
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def started_dbt(build: subprocess.Popen) -> list[int]:
    deadline = time.monotonic() + 60
    while not (dbt := children(build.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dbt, "the build started no dbt process"
    return dbt


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def stopped_dbt(build: subprocess.Popen) -> int:
    """The build's dbt once it has stopped itself at its ENGAGEMENT_DBT_STOP_AT event
    (engagement/warehouse/dbt_main.py's test hook)."""
    [dbt] = started_dbt(build)
    deadline = time.monotonic() + 120
    while not proc_status(dbt)["State"].startswith("T"):
        assert build.poll() is None, f"the build ended first: {build.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "dbt did not reach its stop event"
        time.sleep(0.05)
    return dbt


def pending(pid: int, signum: int) -> bool:
    """Whether a signal sent to the (stopped) process waits for it (not, once it has ended)."""
    try:
        return bool(int(proc_status(pid)["ShdPnd"], 16) & 1 << (signum - 1))
    except FileNotFoundError:
        return False


# dbt events: LogModelResult when a model is written to the build file; LogTestResult when
# a data test has run (models written, tests running)
@pytest.mark.parametrize(
    ("killed", "stopped_at"), [("build", "LogModelResult"), ("dbt", "LogTestResult")]
)
def test_a_killed_build_changes_nothing_and_the_next_one_converges(
    loaded_out_of_order, tmp_path: Path, killed: str, stopped_at: str
) -> None:
    """SIGKILL of the build once dbt has written a model, or of dbt once it tests; dbt held
    still at that point (stopped by its test hook), so the kill lands there."""
    original, seen = loaded_out_of_order
    warehouse = copy_of(original, tmp_path)
    published = warehouse.published.read_bytes()
    build = engagement_build(warehouse.settings, ENGAGEMENT_DBT_STOP_AT=stopped_at)
    dbt = stopped_dbt(build)
    if killed == "build":
        build.send_signal(signal.SIGKILL)  # dbt dies with it (PR_SET_PDEATHSIG), stopped or not
    else:
        os.kill(dbt, signal.SIGKILL)
    _, error = build.communicate(timeout=60)
    if killed == "dbt":
        assert build.returncode == 3 and "nothing published" in error
    deadline = time.monotonic() + 10
    while alive(dbt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(dbt), "dbt outlived the killed build"
    assert warehouse.published.read_bytes() == published

    result = warehouse.build()
    assert (result.full_refresh, result.changed_loads) == (False, 2)
    assert warehouse.marts() == seen["incremental"]


# a build in an Airflow task under an execution_timeout: Airflow's own timeout, whose alarm
# (SIGALRM) the test sends once dbt runs rather than guessing when that will be
TIMED_BUILD = """
import logging
from airflow.sdk.execution_time.timeout import timeout
from engagement.settings import Settings
from engagement.warehouse.build import build_and_publish
logging.basicConfig(level=logging.WARNING, force=True)
with timeout(3600):
    build_and_publish(Settings.from_env())
"""


def test_a_build_past_its_execution_timeout_stops_dbt_and_publishes_nothing(
    loaded_out_of_order, tmp_path: Path
) -> None:
    """The execution timeout expires once dbt has written a model: the build stops dbt as
    Ctrl-C does and publishes nothing. The next build, with a second one started while it
    runs (refused), gives the marts of the scenario."""
    original, seen = loaded_out_of_order
    warehouse = copy_of(original, tmp_path)
    published = warehouse.published.read_bytes()
    build = subprocess.Popen(
        [sys.executable, "-c", TIMED_BUILD],
        env=dict(
            os.environ,
            ENGAGEMENT_DATA_DIR=str(warehouse.settings.data_dir),
            ENGAGEMENT_DBT_STOP_AT="LogModelResult",
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dbt = stopped_dbt(build)  # a model written, the rest to do
    build.send_signal(signal.SIGALRM)  # the execution timeout expires
    deadline = time.monotonic() + 60
    while not pending(dbt, signal.SIGINT):  # the build's stop, waiting for dbt to go on
        if build.poll() is not None or not alive(dbt):  # say why (once: dbt ignored SIGINT)
            _, error = build.communicate(timeout=60)
            pytest.fail(f"dbt ended before its SIGINT; build: {build.returncode} {error[-3000:]}")
        assert time.monotonic() < deadline, "dbt was not sent SIGINT"
        time.sleep(0.05)
    os.kill(dbt, signal.SIGCONT)
    _, error = build.communicate(timeout=120)
    assert build.returncode == 1 and "AirflowTaskTimeout" in error, error[-2000:]
    assert f"dbt (pid {dbt}) stopped on SIGINT" in error, error[-2000:]  # not killed
    assert not alive(dbt), "dbt outlived the timed-out build"
    assert warehouse.published.read_bytes() == published

    # the next build finishes the work; a second one started meanwhile fails in one line
    first = engagement_build(warehouse.settings)
    dbt = started_dbt(first)
    os.kill(dbt[0], signal.SIGSTOP)  # the first build is still running however long it takes
    try:
        second = engagement_build(warehouse.settings, ENGAGEMENT_BUILD_LOCK_WAIT="1")
        _, error = second.communicate(timeout=120)
    finally:
        os.kill(dbt[0], signal.SIGCONT)
    assert second.returncode == 3
    assert error.strip() == (
        f"engagement: build failed: a build is already running (pid {first.pid});"
        " run this one when it has finished"
    )
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0
    result = json.loads(output.splitlines()[-1])
    assert (result["full_refresh"], result["changed_loads"]) == (False, 2)
    assert warehouse.marts() == seen["incremental"]
