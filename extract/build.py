"""Write, audit, publish: dbt builds and tests the mart in a build file; only a fully green
build is copied into a new file that atomically replaces the published one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from extract.settings import Settings

PUBLISHED_SCHEMA = "marts"
FAILED = ("error", "fail", "runtime error")


class BuildFailed(Exception):
    pass


def dbt_build(settings: Settings) -> None:
    """`dbt build` in its own process: dbt-duckdb keeps its DuckDB handles for the life of
    a process, and the build file must be free again before it is published."""
    if not settings.raw_db.exists():
        raise BuildFailed(f"nothing loaded yet: {settings.raw_db} does not exist")
    settings.build_db.unlink(missing_ok=True)
    settings.build_db.with_suffix(".duckdb.wal").unlink(missing_ok=True)
    project = str(settings.dbt_project_dir)
    work = settings.data_dir / "dbt"
    dbt_vars = {
        "support_site_hosts": list(settings.support_site_hosts),
        "company_site_hosts": list(settings.company_site_hosts),
    }
    env = dict(
        os.environ,
        ENGAGEMENT_BUILD_DB=str(settings.build_db),
        ENGAGEMENT_RAW_DB=str(settings.raw_db),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    command = [
        str(Path(sys.executable).with_name("dbt")), "build",
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(dbt_vars),
    ]  # fmt: skip
    (work / "target" / "run_results.json").unlink(missing_ok=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildFailed(f"dbt build failed, nothing published: {_failures(work, done.stdout)}")


def _failures(work: Path, output: str) -> str:
    results = work / "target" / "run_results.json"
    if results.is_file():
        nodes = json.loads(results.read_text())["results"]
        failed = [f"{n['unique_id']}: {n['status']}" for n in nodes if n["status"] in FAILED]
        skipped = sum(n["status"] == "skipped" for n in nodes)
        if failed:
            return "; ".join(failed) + (f" ({skipped} nodes skipped after them)" if skipped else "")
    return output[-2000:]


def publish(build_db: Path, published_db: Path) -> list[str]:
    """Copy the build's marts into a fresh file and rename it over the published file.

    Readers that already opened the published file keep reading the old one; new readers
    get the new one. Nobody waits on the writer.
    """
    staging = published_db.with_name(f".{published_db.name}.publishing")
    staging.unlink(missing_ok=True)
    with duckdb.connect(str(staging)) as con:
        con.execute(f"attach '{build_db}' as build (read_only)")
        tables = [
            row[0]
            for row in con.execute(
                """
                select table_name from duckdb_tables()
                where database_name = 'build' and schema_name = ?
                order by table_name
                """,
                [PUBLISHED_SCHEMA],
            ).fetchall()
        ]
        if not tables:
            raise BuildFailed(f"the build has no tables in schema {PUBLISHED_SCHEMA}")
        con.execute(f"create schema {PUBLISHED_SCHEMA}")
        for table in tables:
            con.execute(
                f"create table {PUBLISHED_SCHEMA}.{table} as "
                f"select * from build.{PUBLISHED_SCHEMA}.{table}"
            )
        con.execute("detach build")
        con.execute("checkpoint")
    os.replace(staging, published_db)
    return tables


def build_and_publish(settings: Settings) -> dict:
    dbt_build(settings)
    tables = publish(settings.build_db, settings.published_db)
    return {"published": str(settings.published_db), "tables": tables}
