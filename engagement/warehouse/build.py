"""Write, audit, publish: dbt builds and tests the mart in a persistent build file; only a
fully green build is published, into a new file that atomically replaces the published one
(a copy of it where the rows that changed are replaced, see `publish`).

The build is incremental. The build file keeps, in schema `_engagement`, the raw loads
(`raw.main.batches` rows) that its last green build covered and a fingerprint of the dbt
project and vars that built it. A build compares the raw loads with them: the days of every
batch loaded, re-loaded or removed since are written to `_engagement.changed_days`, and dbt
builds only the models downstream of the changed sources, its incremental models replacing
what those days (for X, the posts those batches name) affect; the X models record the keys
they replace in `_engagement.changed_keys`, emptied once a build is green. A changed
fingerprint (new model code, seed or vars), a missing state or `full_refresh` rebuilds
everything from raw. The state moves on only after a green build, so a failed or killed
build is simply redone by the next one.
"""

from __future__ import annotations

import ctypes
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
from importlib.metadata import version
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict

from engagement.errors import DataRefused, UsageError
from engagement.settings import Settings

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
create table if not exists {STATE}.changed_loads (source varchar, batch_id varchar);
create table if not exists {STATE}.changed_days (source varchar, date_day date);
create table if not exists {STATE}.changed_keys (kind varchar, key varchar);
create table if not exists {STATE}.unpublished_keys (mart varchar, key varchar);
create table if not exists {STATE}.mart_keys (mart varchar primary key, key_column varchar);
create table if not exists {STATE}.build_state (key varchar primary key, value varchar);
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
CHANGED_DAYS_SQL = f"""
delete from {STATE}.changed_loads;
insert into {STATE}.changed_loads select distinct source, batch_id from {{loads}};
delete from {STATE}.changed_days;
insert into {STATE}.changed_days
select distinct
    source,
    cast(unnest(generate_series(
        cast(interval_start as date),
        cast(interval_end - interval 1 microsecond as date),
        interval 1 day
    )) as date)
from {{loads}};
"""


class BuildFailed(DataRefused):
    """The build did not go green (or could not run): nothing was published (exit 3)."""


@dataclass(frozen=True)
class Plan:
    """What a build has to do: which sources changed, whether to rebuild everything, and
    the fingerprint of the code and vars it builds with."""

    full_refresh: bool
    changed_sources: tuple[str, ...]
    changed_loads: int
    fingerprint: str


def fingerprint(settings: Settings) -> str:
    """Identifies the dbt project's code, seeds and vars, and the dbt that runs them."""
    digest = hashlib.sha256()
    digest.update(json.dumps([dbt_vars(settings), version("dbt-core")]).encode())
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
    return plan_build(settings.raw_db, settings.build_db, fingerprint(settings), full_refresh)


def plan_build(raw_db: Path, build_db: Path, current: str, full_refresh: bool = False) -> Plan:
    with _connect(build_db) as con:
        con.execute(STATE_DDL)
        con.execute(f"attach '{raw_db}' as raw (read_only)")
        has_refusals = con.execute(
            "select count(*) from duckdb_tables()"
            " where database_name = 'raw' and schema_name = 'main' and table_name = 'refusals'"
        ).fetchone()[0]
        con.execute(LOADS_SQL.format(refusals=REFUSALS_SQL if has_refusals else ""))
        built = con.execute(
            f"select value from {STATE}.build_state where key = 'fingerprint'"
        ).fetchone()
        full_refresh = full_refresh or built is None or built[0] != current
        loads = f"{STATE}.seen_loads" if full_refresh else "differing_loads"
        con.execute(CHANGED_DAYS_SQL.format(loads=loads))
        sources = con.execute(
            f"select distinct source from {STATE}.changed_loads order by 1"
        ).fetchall()
        changed = con.execute(f"select count(*) from {STATE}.changed_loads").fetchone()[0]
        if full_refresh:  # a full build that dies half-way is redone in full, and published so
            con.execute(f"delete from {STATE}.build_state where key = 'fingerprint'")
            _set_state(con, publish_whole="true")
        con.execute("detach raw")
    return Plan(full_refresh, tuple(s for (s,) in sources), changed, current)


def _die_with_parent() -> None:
    """In the dbt child: the kernel kills it when the build that started it dies."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def dbt_command(settings: Settings, work: Path) -> tuple[list[str], dict[str, str]]:
    """`dbt build` of the project with the pipeline's vars (selection to append), writing
    its target and logs under `work`, and the environment it runs in."""
    project = str(settings.dbt_project_dir)
    env = dict(
        os.environ,
        ENGAGEMENT_BUILD_DB=str(settings.build_db),
        ENGAGEMENT_RAW_DB=str(settings.raw_db),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    command = [
        sys.executable, "-m", "engagement.warehouse.dbt_main", "build",
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(dbt_vars(settings)),
        "--threads", str(settings.dbt_threads),
    ]  # fmt: skip
    return command, env


def dbt_build(settings: Settings, build: Plan, lock_fd: int) -> None:
    """`dbt build` of what the plan selects, in its own process: dbt-duckdb keeps its DuckDB
    handles for the life of a process, and the build file must be free to publish it."""
    work = settings.data_dir / "dbt"
    command, env = dbt_command(settings, work)
    if build.full_refresh:
        command.append("--full-refresh")
    else:  # only what the changed sources feed, and the coverage of every load and refusal
        sources = sorted({*build.changed_sources, COVERAGE_SOURCE})
        command += ["--select", *(f"source:{source}+" for source in sources)]
    # unit tests check the code, not the data: CI runs them (tests/test_dbt_project.py), a
    # pipeline build does not, as dbt's documentation recommends for production
    command += ["--exclude-resource-type", "unit_test"]
    (work / "target" / "run_results.json").unlink(missing_ok=True)
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
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


def _set_state(con: duckdb.DuckDBPyConnection, **values: str) -> None:
    for key, value in values.items():
        con.execute(f"insert or replace into {STATE}.build_state values (?, ?)", [key, value])


def record_built(settings: Settings, build: Plan) -> None:
    """After a green build: the loads it planned from and its fingerprint become the state
    the next build starts from, and the build is marked unpublished, in one transaction."""
    with _connect(settings.build_db) as con:
        con.execute("begin transaction")
        con.execute(f"delete from {STATE}.built_loads")
        con.execute(f"insert into {STATE}.built_loads from {STATE}.seen_loads")
        con.execute(f"delete from {STATE}.changed_keys")  # the X models' keys: all redone
        _set_state(con, fingerprint=build.fingerprint, unpublished="true")
        con.execute("commit")


def _flags(settings: Settings) -> set[str]:
    """The build state's keys set to "true" (unpublished, publish_whole)."""
    with _connect(settings.build_db, read_only=True) as con:
        rows = con.execute(f"select key from {STATE}.build_state where value = 'true'").fetchall()
    return {key for (key,) in rows}


def publish(build_db: Path, published_db: Path, in_place: bool = True) -> tuple[list, list]:
    """Publish the build's marts into a new file renamed over the published file.

    In place (the default, when there is a published file): the new file starts as a copy
    of the published one; the large marts (`_engagement.mart_keys`: keyed on posts, or on
    the sessions' days) have the rows of the keys replaced since the last publish
    (`_engagement.unpublished_keys`) replaced, and the other marts are copied whole.
    Otherwise (a first or full build) every mart is copied. Readers that already opened the
    published file keep reading the old one; new readers get the new one. Nobody waits on
    the writer. Returns the tables published and those of them updated in place.
    """
    staging = published_db.with_name(f".{published_db.name}.publishing")
    staging.unlink(missing_ok=True)
    in_place = in_place and published_db.exists()
    try:
        tables, updated = _stage(build_db, published_db, staging, in_place)
        os.replace(staging, published_db)
    except BaseException:  # a failure or Ctrl-C: the published file is as it was
        staging.unlink(missing_ok=True)
        raise
    return tables, updated


def _stage(build_db: Path, published_db: Path, staging: Path, in_place: bool) -> tuple[list, list]:
    """The new published file, written at `staging`."""
    if in_place:
        shutil.copyfile(published_db, staging)
    with duckdb.connect(str(staging)) as con:
        con.execute(f"attach '{build_db}' as build (read_only)")
        tables = _tables(con, "build")
        if not tables:
            raise BuildFailed(f"build failed: the build has no tables in schema {PUBLISHED_SCHEMA}")
        keyed = dict(con.execute(f"from build.{STATE}.mart_keys").fetchall()) if in_place else {}
        published = _tables(con, con.execute("select current_database()").fetchone()[0])
        con.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
        for gone in published.keys() - tables.keys():
            con.execute(f"drop table {PUBLISHED_SCHEMA}.{gone}")
        updated = []
        for table, columns in tables.items():
            mart, source = f"{PUBLISHED_SCHEMA}.{table}", f"build.{PUBLISHED_SCHEMA}.{table}"
            if table in keyed and published.get(table) == columns:
                key = keyed[table]
                changed = f"(select key from build.{STATE}.unpublished_keys where mart = '{table}')"
                has_key = f"cast({key} as varchar) in {changed}"
                con.execute(f"delete from {mart} where {has_key}")
                con.execute(f"insert into {mart} from {source} where {has_key}")
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
    """After a publish: the keys it replaced are done with, in one transaction."""
    with _connect(settings.build_db) as con:
        con.execute("begin transaction")
        con.execute(f"delete from {STATE}.unpublished_keys")
        _set_state(con, unpublished="false", publish_whole="false")
        con.execute("commit")


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
            record_built(settings, build)
        seconds["build"] = time.perf_counter() - started
        tables, updated = [], []
        flags = _flags(settings)
        if "unpublished" in flags or not settings.published_db.exists():
            in_place = "publish_whole" not in flags
            tables, updated = publish(settings.build_db, settings.published_db, in_place)
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
