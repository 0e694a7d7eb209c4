"""The `spark` dbt target's raw tables: the raw warehouse's tables as Parquet that Spark
reads (dbt_project/macros/spark_raw.sql makes them Spark tables at the start of every run).

The raw DuckDB file stays the one place a batch is loaded into, in a transaction. The export
runs in the build (under its lock, before dbt): it writes again only the batches loaded since
the last export, each into a new directory renamed into place, and keeps what it wrote in
`exported.json`, written after the files, so an export that dies is finished by the next.
Parquet keeps DuckDB's types (JSON as text, timestamps without a zone)."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import duckdb

from engagement.settings import Settings

RAW_SCHEMAS = ("main", "x", "support_site")
EXPORTED = "exported.json"  # per source table: batch_id -> load time of the files written


def dbt_target(settings: Settings) -> tuple[str, dict[str, str]]:
    """profiles.yml's target for the settings (`spark`, or `spark_thrift` with a Thrift
    server), and the variables it reads: absolute paths, the same on every executor."""
    env = {
        "ENGAGEMENT_SPARK_RAW": str(settings.spark_dir.absolute() / "raw"),
        "ENGAGEMENT_SPARK_WAREHOUSE": str(settings.spark_dir.absolute() / "warehouse"),
        "ENGAGEMENT_SPARK_MASTER": settings.spark_master,
    }
    if settings.spark_thrift is None:
        return "spark", env
    host, port = settings.spark_thrift.rsplit(":", 1)
    return "spark_thrift", env | {
        "ENGAGEMENT_SPARK_THRIFT_HOST": host,
        "ENGAGEMENT_SPARK_THRIFT_PORT": port,
    }


def built(settings: Settings) -> bool:
    """Whether the `spark` engine's warehouse holds a build (its marts' directory)."""
    return (settings.spark_dir / "warehouse" / "marts.db").is_dir()


def export_raw(raw_db: Path, dest: Path) -> dict[str, int]:
    """The raw warehouse's tables as Parquet under `dest/<schema>/<table>/`, written again
    only where they changed: the source tables per batch (`<batch_id>/`, rewritten when its
    load time changed, removed when the batch is gone), the small bookkeeping tables of
    `main` whole. Each table also has `schema.parquet`, no rows and its current columns, so
    Spark knows them when no batch has rows (and merges them with older batches' files).
    Returns the rows written per `schema.table`."""
    dest.mkdir(parents=True, exist_ok=True)
    exported_file = dest / EXPORTED
    exported = json.loads(exported_file.read_text()) if exported_file.exists() else {}
    written: dict[str, int] = {}
    with duckdb.connect(str(raw_db), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables()"
            f" where schema_name in {RAW_SCHEMAS!r} order by all"
        ).fetchall()
        for schema, table in tables:
            name, directory = f"{schema}.{table}", dest / schema / table
            directory.mkdir(parents=True, exist_ok=True)
            _parquet(con, f"select * from {name} limit 0", directory / "schema.parquet")
            if schema == "main":
                _batch(con, f"select * from {name}", directory / "all")
                (written[name],) = con.execute(f"select count(*) from {name}").fetchone()
                continue
            loads = dict(
                con.execute(
                    f"select batch_id, cast(max(_loaded_at) as varchar) from {name} group by 1"
                ).fetchall()
            )
            before = exported.get(name, {})
            for gone in before.keys() - loads.keys():
                shutil.rmtree(directory / gone, ignore_errors=True)
            changed = sorted(batch for batch, at in loads.items() if before.get(batch) != at)
            written[name] = 0
            for batch in changed:
                rows = f"select * from {name} where batch_id = '{batch}'"
                _batch(con, rows, directory / batch)
                (count,) = con.execute(f"select count(*) from ({rows})").fetchone()
                written[name] += count
            exported[name] = loads
            _write_atomically(exported_file, json.dumps(exported, indent=1, sort_keys=True))
    return written


def _parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """The query's rows as the Parquet file `path`, written beside it, then renamed over it."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    con.execute(f"copy ({query}) to '{temporary}' (format parquet)")
    temporary.replace(path)


def _batch(con: duckdb.DuckDBPyConnection, query: str, directory: Path) -> None:
    """The query's rows as `directory/data.parquet`, the directory replaced whole by renames
    (Spark reads every file under a table's directory: no half-written one is left there)."""
    staging = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}")
    staging.mkdir()
    _parquet(con, query, staging / "data.parquet")
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old.{uuid.uuid4().hex}")
        directory.rename(old)
        shutil.rmtree(old)
    staging.rename(directory)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(text)
    temporary.replace(path)


def table_path(warehouse: Path, schema: str, table: str) -> Path:
    """Where the spark target keeps a table it built (a managed table of its warehouse)."""
    return warehouse / f"{schema}.db" / table


def table_files(warehouse: Path, schema: str, table: str) -> list[str]:
    """The Parquet files of a table Spark built: its data, as Spark reads it (not the files
    under a hidden or `_` directory, such as a failed job's `_temporary/`)."""
    path = table_path(warehouse, schema, table)
    return sorted(
        str(file)
        for file in path.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in file.relative_to(path).parts)
    )


def _rounded(relation: str, columns: list[tuple[str, str]], decimals: int) -> str:
    """`relation`'s columns cast to their DuckDB types, floating point rounded."""
    values = []
    for column, data_type in columns:
        value = f'cast("{column}" as {data_type})'
        if data_type in ("DOUBLE", "FLOAT") or data_type.startswith("DECIMAL"):
            value = f'round(cast("{column}" as double), {decimals})'
        values.append(f'{value} as "{column}"')
    return f"select {', '.join(values)} from {relation}"


def _only_in_each(con: duckdb.DuckDBPyConnection, one: str, other: str) -> tuple[int, int]:
    """The rows only query `one` gives and those only `other` gives (as multisets)."""
    (only_one,) = con.execute(f"select count(*) from ({one} except all {other})").fetchone()
    (only_other,) = con.execute(f"select count(*) from ({other} except all {one})").fetchone()
    return only_one, only_other


def differences(
    build_db: Path, warehouse: Path, tables: list[str], decimals: int = 9
) -> dict[str, tuple[int, int]]:
    """Per `schema.table`, the rows only DuckDB's build has and the rows only Spark's has
    (as multisets; doubles compared rounded to `decimals` places). A table Spark did not
    build counts as empty."""
    found: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(build_db), read_only=True) as con:
        for name in tables:
            schema, table = name.split(".")
            columns = con.execute(
                "select column_name, data_type from duckdb_columns()"
                " where schema_name = ? and table_name = ? order by column_index",
                [schema, table],
            ).fetchall()
            files = table_files(warehouse, schema, table)
            if not files:
                (rows,) = con.execute(f"select count(*) from {schema}.{table}").fetchone()
                found[name] = (rows, 0)
                continue
            spark = f"read_parquet({files!r}, hive_partitioning = true, union_by_name = true)"

            duck = _rounded(f"{schema}.{table}", columns, decimals)
            theirs = _rounded(spark, columns, decimals)
            found[name] = _only_in_each(con, duck, theirs)
    return found


def marts(manifest: Path, schema: str) -> dict[str, list[tuple[str, str]]]:
    """The tables dbt builds in `schema`, each with its contracted columns (name, DuckDB
    type) in order, from a dbt manifest."""
    nodes = json.loads(manifest.read_text())["nodes"]
    return {
        node["alias"]: [(c["name"], c["data_type"]) for c in node["columns"].values()]
        for node in nodes.values()
        if node["resource_type"] == "model"
        and node["schema"] == schema
        and node["config"]["materialized"] in ("table", "incremental")
    }


def import_marts(manifest: Path, warehouse: Path, build_db: Path, schema: str) -> list[str]:
    """Spark's marts into `build_db`'s `schema`, with their contracts' DuckDB types (what
    publishing copies from there, as after a DuckDB build). In one transaction: a failure
    leaves the tables as they were. Returns the tables imported."""
    tables = marts(manifest, schema)
    with duckdb.connect(str(build_db)) as con:
        con.execute("begin transaction")
        con.execute(f"create schema if not exists {schema}")
        for table, columns in tables.items():
            ddl = ", ".join(f'"{name}" {data_type}' for name, data_type in columns)
            con.execute(f"create or replace table {schema}.{table} ({ddl})")
            files = table_files(warehouse, schema, table)
            if files:  # none: an empty table (or one partitioned with no partition yet)
                values = ", ".join(f'cast("{name}" as {type_})' for name, type_ in columns)
                con.execute(
                    f"insert into {schema}.{table} select {values}"
                    f" from read_parquet({files!r}, hive_partitioning = true,"
                    " union_by_name = true)"
                )
        con.execute("commit")
    return list(tables)


def published_differences(
    one: Path, other: Path, ignore: Mapping[str, str] | None = None, decimals: int = 9
) -> dict[str, tuple[int, int, int]]:
    """Per published mart of two DuckDB files: the rows only `one` has, the rows only
    `other` has (as multisets; doubles rounded to `decimals` places; without the columns
    `ignore` names per table, comma-separated) and `one`'s rows. Marts with other columns
    (names, types, order) are an error."""
    ignore = ignore or {}
    found = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{one}' as one (read_only)")
        con.execute(f"attach '{other}' as other (read_only)")
        columns = [
            dict(
                con.execute(
                    "select table_name, list((column_name, data_type) order by column_index)"
                    " from duckdb_columns() where database_name = ? and schema_name = 'marts'"
                    " group by table_name",
                    [database],
                ).fetchall()
            )
            for database in ("one", "other")
        ]
        if columns[0] != columns[1]:
            raise ValueError(f"the marts of {one} and {other} have different columns")
        for table, table_columns in sorted(columns[0].items()):
            skipped = {name.strip() for name in ignore.get(table, "").split(",")}
            compared = [column for column in table_columns if column[0] not in skipped]
            rows = [
                _rounded(f"{database}.marts.{table}", compared, decimals)
                for database in ("one", "other")
            ]
            (count,) = con.execute(f"select count(*) from one.marts.{table}").fetchone()
            found[table] = (*_only_in_each(con, *rows), count)
    return found
