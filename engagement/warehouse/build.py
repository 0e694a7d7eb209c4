"""Write, audit, publish: dbt builds and tests the mart in a persistent build file; only a
fully green build is published, into a new file that atomically replaces the published one
(a copy of it where the days rebuilt are replaced, see `publish`).

The build is incremental, with dbt's own strategies (dbt_project/macros/incremental.sql).
The build file keeps, in schema `_engagement`, the raw loads (`raw.main.batches` rows) that
its last green build covered and a fingerprint of the dbt project and vars that built it. A
build compares the raw loads with them and runs dbt on the models downstream of the sources
whose loads changed (loaded, re-loaded or removed), passing the days of the changed
support-site loads, widened by a day each side, as dbt's event-time window: the microbatch
models rebuild those days; the X models are tables rebuilt whole. A changed fingerprint
(new model code, seed or vars), a missing state or `full_refresh` rebuilds everything from
raw, over the days of the data. The state moves on only after a green build, so a failed or
killed build is simply redone by the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict

from engagement import accounts
from engagement.errors import DataRefused, UsageError
from engagement.settings import Settings
from engagement.warehouse import spark

log = logging.getLogger(__name__)

PUBLISHED_SCHEMA = "marts"
DBT_STOP_GRACE = 30.0  # seconds dbt gets to stop after SIGINT (it ends its running model)
STATE = "_engagement"
FAILED = ("error", "fail", "runtime error")
PROJECT_FILES = (".sql", ".yml", ".yaml", ".csv")

STATE_DDL = f"""
create schema if not exists {STATE};
create table if not exists {STATE}.built_loads (
    source varchar, batch_id varchar, interval_start timestamp, interval_end timestamp,
    loaded_at timestamp
);
create table if not exists {STATE}.seen_loads as from {STATE}.built_loads limit 0;
create table if not exists {STATE}.status (
    fingerprint varchar,  -- of the last green build; null: the next build is a full one
    unpublished boolean not null,  -- a green build is not published yet
    publish_whole boolean not null,  -- a full build since the last publish: copy every mart
    publish_start date,  -- the days the builds since the last publish rebuilt
    publish_end date  -- (exclusive)
);
insert into {STATE}.status select null, false, false, null, null
where not exists (from {STATE}.status);
"""
# the raw loads as the build sees them, and those that differ from the last green build's;
# the gate's refusals (raw.main.refusals, when the raw warehouse has it) are loads of source
# `pipeline` (batch `<source>/<batch>`): a refusal made or lifted changes the coverage
COVERAGE_SOURCE = "pipeline"
REFUSALS_SQL = f"""
union all
select '{COVERAGE_SOURCE}', source || '/' || batch_id, interval_start, interval_end, refused_at
from raw.main.refusals
"""
LOADS_SQL = f"""
delete from {STATE}.seen_loads;
insert into {STATE}.seen_loads
select source, batch_id, interval_start, interval_end, _loaded_at from raw.main.batches
{{refusals}};
create or replace temp table differing_loads as
(from {STATE}.seen_loads except from {STATE}.built_loads)
union
(from {STATE}.built_loads except from {STATE}.seen_loads);
"""
# the days the loads cover, per source
DAYS_SQL = """
select distinct source, cast(unnest(generate_series(
    cast(interval_start as date),
    cast(interval_end - interval 1 microsecond as date),
    interval 1 day
)) as date) as day
from {loads}
order by 2
"""
# a changed day changes the sessions of the day before (visits across midnight) and of the
# day after (whether its first page views continue a visit): int_support_site__sessions
WINDOW_MARGIN = timedelta(days=1)
# windows closer than this are rebuilt as one: a dbt run of its own costs about as much as
# a few more days in one (measured, see windows())
MERGE_GAP = timedelta(days=3)


class BuildFailed(DataRefused):
    """The build did not go green (or could not run): nothing was published (exit 3)."""


@dataclass(frozen=True)
class Plan:
    """What a build has to do: which sources changed, whether to rebuild everything, the
    fingerprint of the code and vars it builds with, and the windows of days the microbatch
    models rebuild, each [start, end) (none when no support-site load changed)."""

    full_refresh: bool
    changed_sources: tuple[str, ...]
    changed_loads: int
    fingerprint: str
    windows: tuple[tuple[date, date], ...] = ()

    def event_time_args(self, window: tuple[date, date] | None = None) -> list[str]:
        """dbt's event-time window (the plan's last by default; none without)."""
        if window is None and not self.windows:
            return []
        start, end = window or self.windows[-1]
        return ["--event-time-start", str(start), "--event-time-end", str(end)]

    @property
    def span(self) -> tuple[date, date] | None:
        """From the first window's start to the last one's end."""
        return (self.windows[0][0], self.windows[-1][1]) if self.windows else None


def around(first: date, last: date) -> tuple[date, date]:
    """The window [start, end) that rebuilds the days `first` to `last`: a day more each side."""
    return first - WINDOW_MARGIN, last + timedelta(days=1) + WINDOW_MARGIN


def windows(days: list[date]) -> tuple[tuple[date, date], ...]:
    """The windows of days to rebuild for the changed `days` (sorted): each with a day each
    side, those less than MERGE_GAP apart merged (a backfill of day 3 and a load of day 30
    are two windows: one from day 2 to 31 cost 34.9 s against 9.7 + 10.2 s for two builds,
    30 days of 200,000 lines)."""
    merged: list[tuple[date, date]] = []
    for day in days:
        start, end = around(day, day)
        if merged and start - merged[-1][1] < MERGE_GAP:
            start = merged.pop()[0]
        merged.append((start, end))
    return tuple(merged)


def fingerprint(settings: Settings) -> str:
    """Identifies the dbt project's code, seeds and vars, and the dbt and engine that run
    them (a build on another engine starts from nothing: a full one)."""
    digest = hashlib.sha256()
    engine = [] if settings.warehouse_engine == "duckdb" else [settings.warehouse_engine]
    digest.update(json.dumps([dbt_vars(settings), version("dbt-core"), *engine]).encode())
    project = settings.dbt_project_dir
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] in ("target", "logs") or path.suffix not in PROJECT_FILES:
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def dbt_vars(settings: Settings) -> dict:
    return {
        "support_site_hosts": list(settings.support_site_hosts),
        "company_site_hosts": list(settings.company_site_hosts),
        "support_site_answer_paths": list(settings.support_site_answer_paths),
        "x_answer_window_days": settings.x_answer_window_days,
        "x_company_usernames": list(settings.x_company_usernames),
        "x_bot_usernames": list(settings.x_bot_usernames),
        "x_needs_answer_questions_only": settings.x_needs_answer_questions_only,
        "x_account_care": accounts.dbt_var(accounts.load(settings.accounts_file)),
    }


@contextmanager
def build_lock(settings: Settings) -> Iterator[int]:
    """One build at a time. The lock is held through an open file that the dbt child
    inherits, so it is free only once the build and its dbt are both gone (a killed build's
    dbt takes a moment to die). A second build waits `build_lock_wait` seconds for it, then
    fails saying which process holds it. Yields the lock's file descriptor."""
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    path = settings.warehouse_dir / ".build.lock"
    deadline = time.monotonic() + settings.build_lock_wait
    with open(path, "a+") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "unknown"
                    raise BuildFailed(
                        f"build failed: a build is already running (pid {holder});"
                        " run this one when it has finished"
                    ) from None
                time.sleep(0.1)
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield lock.fileno()
        finally:
            lock.truncate(0)


def _connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Opens a DuckDB file, waiting a little while a process that just died lets go of it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def plan(settings: Settings, full_refresh: bool = False) -> Plan:
    """Compare the raw loads with the last green build's and write the changed days."""
    if not settings.raw_db.exists():
        raise UsageError(
            f"nothing loaded yet: {settings.raw_db} does not exist (engagement load first;"
            " or ENGAGEMENT_DATA_DIR is not the data directory you loaded)"
        )
    # Spark's tables are not in the build file: without its warehouse, build it all again
    spark_gone = settings.warehouse_engine == "spark" and not spark.built(settings)
    return plan_build(
        settings.raw_db, settings.build_db, fingerprint(settings), full_refresh or spark_gone
    )


def plan_build(raw_db: Path, build_db: Path, current: str, full_refresh: bool = False) -> Plan:
    """Compare the raw loads with the last green build's: what to rebuild, and the days."""
    with _connect(build_db) as con:
        con.execute(STATE_DDL)
        con.execute(f"attach '{raw_db}' as raw (read_only)")
        has_refusals = con.execute(
            "select count(*) from duckdb_tables()"
            " where database_name = 'raw' and schema_name = 'main' and table_name = 'refusals'"
        ).fetchone()[0]
        con.execute(LOADS_SQL.format(refusals=REFUSALS_SQL if has_refusals else ""))
        (built,) = con.execute(f"select fingerprint from {STATE}.status").fetchone()
        full_refresh = full_refresh or built != current
        loads = f"{STATE}.seen_loads" if full_refresh else "differing_loads"
        sources = con.execute(f"select distinct source from {loads} order by 1").fetchall()
        (changed,) = con.execute(
            f"select count(*) from (select distinct source, batch_id from {loads})"
        ).fetchone()
        days = con.execute(DAYS_SQL.format(loads=loads)).fetchall()
        if full_refresh:  # a full build that dies half-way is redone in full, and published so
            con.execute(f"update {STATE}.status set fingerprint = null, publish_whole = true")
        con.execute("detach raw")
    changed_sources = tuple(source for (source,) in sources)
    changed_days = sorted({day for source, day in days if source == "support_site"})
    if full_refresh:  # one window over the data (of any load without support-site data)
        every = changed_days or sorted(day for _, day in days) or [date.today()]
        plan_windows = (around(every[0], every[-1]),)
    else:
        plan_windows = windows(changed_days)
    return Plan(full_refresh, changed_sources, changed, current, plan_windows)


def dbt_command(settings: Settings, work: Path) -> tuple[list[str], dict[str, str], Path]:
    """`dbt build` of the project with the pipeline's vars (selection to append), writing
    its target and logs under `work`, the environment it runs in and its directory.

    It runs in the warehouse directory with profiles.yml's relative defaults (build.duckdb,
    raw.duckdb) rather than absolute paths in ENGAGEMENT_BUILD_DB/ENGAGEMENT_RAW_DB: dbt
    hashes the profile's connection into its partial-parse state, so the same profile in
    every data directory lets a parse saved in one be reused in another."""
    project = str(settings.dbt_project_dir)
    # dbt dies with the build that started it (engagement/warehouse/dbt_main.py)
    env = dict(
        os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", ENGAGEMENT_DBT_PARENT=str(os.getpid())
    )
    env.pop("ENGAGEMENT_BUILD_DB", None)
    env.pop("ENGAGEMENT_RAW_DB", None)
    cwd = settings.warehouse_dir
    target = []
    if settings.warehouse_engine == "spark":  # Spark's metastore is made in its directory
        name, spark_env = spark.dbt_target(settings)
        env |= spark_env
        cwd, target = settings.spark_dir, ["--target", name]
        cwd.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "engagement.warehouse.dbt_main", "build",
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(dbt_vars(settings)),
        "--threads", str(settings.dbt_threads),
        *target,
    ]  # fmt: skip
    return command, env, cwd


def dbt_build(settings: Settings, build: Plan, lock_fd: int) -> None:
    """`dbt build` of what the plan selects, in its own process (a run per window of days,
    the models by day alone but in the last): dbt-duckdb keeps its DuckDB handles for the
    life of a process, and the build file must be free to publish it."""
    work = settings.data_dir / "dbt"
    command, env, cwd = dbt_command(settings, work)
    if settings.warehouse_engine == "spark":
        spark.export_raw(settings.raw_db, settings.spark_dir / "raw")
    # unit tests check the code, not the data: CI runs them (tests/test_dbt_project.py), a
    # pipeline build does not, as dbt's documentation recommends for production
    command += ["--exclude-resource-type", "unit_test"]
    # the windows but the last: the microbatch models alone, with the tests of nothing else
    # (those that compare them with the tables after them run with the last window)
    microbatch = ["--select", "source:support_site+,config.incremental_strategy:microbatch"]
    for window in build.windows[:-1]:
        alone = [*microbatch, "--indirect-selection", "cautious", *build.event_time_args(window)]
        _run_dbt([*command, *alone], env, cwd, lock_fd, work)
    if build.full_refresh:
        command.append("--full-refresh")
    else:  # only what the changed sources feed, and the coverage of every load and refusal
        sources = sorted({*build.changed_sources, COVERAGE_SOURCE})
        command += ["--select", *(f"source:{source}+" for source in sources)]
    _run_dbt([*command, *build.event_time_args()], env, cwd, lock_fd, work)


def _run_dbt(command: list[str], env: dict[str, str], cwd: Path, lock_fd: int, work: Path) -> None:
    """Runs a dbt command (writing under `work`) in its own process; raises BuildFailed
    unless it went green."""
    (work / "target" / "run_results.json").unlink(missing_ok=True)
    with subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=(lock_fd,),  # the build lock is held until dbt is gone too
    ) as dbt:
        try:
            output, _ = dbt.communicate()
        except KeyboardInterrupt:  # Ctrl-C: the user stopped it, no need to warn about it
            _stop(dbt, logging.INFO)
            raise
        except BaseException:  # Airflow's execution_timeout (AirflowTaskTimeout)
            _stop(dbt)
            raise
    nodes = _results(work)
    log_results(nodes)
    if dbt.returncode < 0:
        raise BuildFailed(
            f"build failed: dbt was killed (signal {-dbt.returncode}), nothing published"
        )
    if dbt.returncode != 0:
        raise BuildFailed(f"build failed, nothing published: {_failures(nodes, output)}")


def _stop(dbt: subprocess.Popen, level: int = logging.WARNING) -> None:
    """Stop dbt as Ctrl-C does (it cancels its queries and exits), then kill it if it has
    not within DBT_STOP_GRACE seconds. Nothing is published either way, and the next build
    finishes the work (the state moves on only after a green build)."""
    dbt.send_signal(signal.SIGINT)
    try:
        dbt.communicate(timeout=DBT_STOP_GRACE)
        log.log(level, "dbt (pid %d) stopped on SIGINT, exit status %d", dbt.pid, dbt.returncode)
    except subprocess.TimeoutExpired:
        dbt.kill()
        dbt.communicate()
        log.warning("dbt (pid %d) killed: not stopped %g s after SIGINT", dbt.pid, DBT_STOP_GRACE)


def _results(work: Path) -> list[dict]:
    """The nodes of dbt's run_results.json (none when dbt wrote none: killed, or failed
    before running any)."""
    results = work / "target" / "run_results.json"
    try:
        return json.loads(results.read_text())["results"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


def _node(result: dict) -> str:
    """`model.engagement.fct_x_posts` -> `model fct_x_posts`."""
    kind, *_, name = result["unique_id"].split(".")
    return f"{kind} {name}"


def _failing(result: dict) -> str:
    failures = result.get("failures")
    rows = f", {failures} failing row(s)" if failures else ""
    return f"{result['unique_id']}: {result['status']}{rows}"


def log_results(nodes: list[dict]) -> None:
    """The build's log: a line per model, seed or snapshot dbt ran (status and seconds), a
    line per failing test with its failing rows' count, then the totals."""
    if not nodes:
        log.info("dbt ran no node (no run_results.json)")
        return
    counts: dict[str, int] = {}
    for result in nodes:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
        seconds = result.get("execution_time") or 0.0
        if not result["unique_id"].startswith("test."):
            log.info("dbt %s: %s in %.2f s", _node(result), result["status"], seconds)
        elif result["status"] in FAILED or result["status"] == "warn":
            message = " ".join(str(result.get("message") or "").split())
            log.info("dbt %s: %s (%s)", _failing(result), message, f"{seconds:.2f} s")
    tests = sum(result["unique_id"].startswith("test.") for result in nodes)
    total = sum(result.get("execution_time") or 0.0 for result in nodes)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    log.info("dbt ran %d nodes (%d tests): %s; %.1f s in all", len(nodes), tests, summary, total)


def _failures(nodes: list[dict], output: str) -> str:
    failed = [_failing(n) for n in nodes if n["status"] in FAILED]
    skipped = sum(n["status"] == "skipped" for n in nodes)
    if failed:
        return "; ".join(failed) + (f" ({skipped} nodes skipped after them)" if skipped else "")
    lines = [line for line in output.splitlines() if line.strip()]
    return " | ".join(" ".join(line.split()) for line in lines[-5:])[-2000:]


def record_built(settings: Settings, build: Plan) -> None:
    """After a green build: the loads it planned from and its fingerprint become the state
    the next build starts from, and its days join those to publish, in one transaction."""
    start, end = build.span or (None, None)
    with _connect(settings.build_db) as con:
        con.execute("begin transaction")
        con.execute(f"delete from {STATE}.built_loads")
        con.execute(f"insert into {STATE}.built_loads from {STATE}.seen_loads")
        con.execute(
            f"""
            update {STATE}.status set
                fingerprint = $fingerprint,
                unpublished = true,
                publish_start = least(publish_start, $start),
                publish_end = greatest(publish_end, $end)
            """,
            {"fingerprint": build.fingerprint, "start": start, "end": end},
        )
        con.execute("commit")


@dataclass(frozen=True)
class Status:
    """What the build file says is left to publish."""

    unpublished: bool
    publish_whole: bool
    window: tuple[date, date] | None  # the days rebuilt since the last publish


def status(settings: Settings) -> Status:
    with _connect(settings.build_db, read_only=True) as con:
        unpublished, whole, start, end = con.execute(
            f"select unpublished, publish_whole, publish_start, publish_end from {STATE}.status"
        ).fetchone()
    return Status(unpublished, whole, (start, end) if start is not None else None)


def microbatch_marts(work: Path) -> dict[str, str]:
    """The published tables that dbt builds day by day (microbatch), with their event-time
    column, from the manifest of dbt's last run in `work` (none without one)."""
    try:
        nodes = json.loads((work / "target" / "manifest.json").read_text())["nodes"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}
    return {
        node["alias"]: node["config"]["event_time"]
        for node in nodes.values()
        if node["resource_type"] == "model"
        and node["schema"] == PUBLISHED_SCHEMA
        and node["config"].get("incremental_strategy") == "microbatch"
    }


def publish(
    build_db: Path,
    published_db: Path,
    in_place: bool = True,
    window: tuple[date, date] | None = None,
    by_day: dict[str, str] | None = None,
) -> tuple[list, list]:
    """Publish the build's marts into a new file renamed over the published file.

    In place (the default, when there is a published file): the new file starts as a copy
    of the published one; the marts of `by_day` (table: event-time column, the microbatch
    marts) have the rows of the `window`'s days (those rebuilt since the last publish; none
    without) replaced, and the other marts are copied whole. Otherwise (a first or full
    build) every mart is copied. Readers that already opened the published file keep
    reading the old one; new readers get the new one. Nobody waits on the writer. Returns
    the tables published and those of them updated in place.
    """
    staging = published_db.with_name(f".{published_db.name}.publishing")
    staging.unlink(missing_ok=True)
    by_day = by_day if in_place and published_db.exists() else None
    try:
        tables, updated = _stage(build_db, published_db, staging, window, by_day)
        os.replace(staging, published_db)
    except BaseException:  # a failure or Ctrl-C: the published file is as it was
        staging.unlink(missing_ok=True)
        raise
    return tables, updated


def _stage(
    build_db: Path,
    published_db: Path,
    staging: Path,
    window: tuple[date, date] | None,
    by_day: dict[str, str] | None,
) -> tuple[list, list]:
    """The new published file, written at `staging` (in place when `by_day` is given)."""
    if by_day is not None:
        shutil.copyfile(published_db, staging)
    by_day = by_day or {}
    with duckdb.connect(str(staging)) as con:
        con.execute(f"attach '{build_db}' as build (read_only)")
        tables = _tables(con, "build")
        if not tables:
            raise BuildFailed(f"build failed: the build has no tables in schema {PUBLISHED_SCHEMA}")
        published = _tables(con, con.execute("select current_database()").fetchone()[0])
        con.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
        for gone in published.keys() - tables.keys():
            con.execute(f"drop table {PUBLISHED_SCHEMA}.{gone}")
        updated = []
        for table, columns in tables.items():
            mart, source = f"{PUBLISHED_SCHEMA}.{table}", f"build.{PUBLISHED_SCHEMA}.{table}"
            if table in by_day and published.get(table) == columns:
                if window is not None:
                    in_window = f"{by_day[table]} >= $start and {by_day[table]} < $end"
                    days = {"start": window[0], "end": window[1]}
                    con.execute(f"delete from {mart} where {in_window}", days)
                    con.execute(f"insert into {mart} from {source} where {in_window}", days)
                updated.append(table)
            else:
                con.execute(f"create or replace table {mart} as from {source}")
        con.execute("detach build")
        con.execute("checkpoint")
    return list(tables), updated


def published_file(published_db: Path) -> Path:
    """The published mart's file; a documented error when nothing was published yet."""
    if not published_db.is_file():
        raise UsageError(
            f"no published mart at {published_db} yet: load a batch, then engagement build"
            " (or set ENGAGEMENT_DATA_DIR to the data directory that has one)"
        )
    return published_db


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, list]:
    """The published schema's tables in `database`, with their columns and types in order."""
    rows = con.execute(
        """
        select table_name, list((column_name, data_type) order by column_index)
        from duckdb_columns() where database_name = ? and schema_name = ?
        group by table_name order by table_name
        """,
        [database, PUBLISHED_SCHEMA],
    ).fetchall()
    return dict(rows)


def mark_published(settings: Settings) -> None:
    """After a publish: nothing is left to publish."""
    with _connect(settings.build_db) as con:
        con.execute(
            f"update {STATE}.status set unpublished = false, publish_whole = false,"
            " publish_start = null, publish_end = null"
        )


class BuildSummary(BaseModel):
    """What a build returns and `engagement build` prints: the published file, the tables
    published (and of those, updated in place), what the build took in, and its seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    published: Path
    tables: list[str]
    updated_in_place: list[str]
    full_refresh: bool
    changed_loads: int
    changed_sources: list[str]
    seconds: dict[str, float]


def build_and_publish(settings: Settings, full_refresh: bool = False) -> BuildSummary:
    seconds: dict[str, float] = {}
    with build_lock(settings) as lock_fd:
        started = time.perf_counter()
        build = plan(settings, full_refresh)
        if build.full_refresh or build.changed_loads:
            dbt_build(settings, build, lock_fd)
            if settings.warehouse_engine == "spark":  # published from the build file, as ever
                manifest = settings.data_dir / "dbt" / "target" / "manifest.json"
                spark.import_marts(
                    manifest, settings.spark_dir / "warehouse", settings.build_db, PUBLISHED_SCHEMA
                )
            record_built(settings, build)
        seconds["build"] = time.perf_counter() - started
        tables, updated = [], []
        left = status(settings)
        if left.unpublished or not settings.published_db.exists():
            by_day = microbatch_marts(settings.data_dir / "dbt")
            tables, updated = publish(
                settings.build_db,
                settings.published_db,
                not left.publish_whole,
                left.window,
                by_day,
            )
            mark_published(settings)
        seconds["publish"] = time.perf_counter() - started - seconds["build"]
    return BuildSummary(
        published=settings.published_db,
        tables=tables,
        updated_in_place=updated,
        full_refresh=build.full_refresh,
        changed_loads=build.changed_loads,
        changed_sources=list(build.changed_sources),
        seconds={step: round(value, 2) for step, value in seconds.items()},
    )
