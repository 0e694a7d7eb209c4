"""The `spark` dbt target's raw tables: the raw warehouse's tables as Parquet that Spark
reads (dbt_project/macros/spark_raw.sql makes them Spark tables at the start of every run).

The raw DuckDB file stays the one place a batch is loaded into, in a transaction. The export
writes every raw table into a new directory beside the last one and swaps it in by renames,
so a Spark build never reads a half-written table; a table's Parquet keeps DuckDB's types
(JSON as text, timestamps without a zone, read by Spark in UTC)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb

RAW_SCHEMAS = ("main", "x", "support_site")


def export_raw(raw_db: Path, dest: Path) -> dict[str, int]:
    """Every table of `raw_db`'s raw schemas as `dest/<schema>/<table>/data.parquet`;
    returns the rows written per `schema.table`."""
    staging = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
    counts: dict[str, int] = {}
    with duckdb.connect(str(raw_db), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables()"
            f" where schema_name in {RAW_SCHEMAS!r} order by all"
        ).fetchall()
        for schema, table in tables:
            (staging / schema / table).mkdir(parents=True)
            target = staging / schema / table / "data.parquet"
            con.execute(f"copy {schema}.{table} to '{target}' (format parquet)")
            (counts[f"{schema}.{table}"],) = con.execute(
                f"select count(*) from {schema}.{table}"
            ).fetchone()
    old = dest.with_name(f".{dest.name}.old.{uuid.uuid4().hex}")
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return counts


def table_path(warehouse: Path, schema: str, table: str) -> Path:
    """Where the spark target keeps a table it built (a managed table of its warehouse)."""
    return warehouse / f"{schema}.db" / table


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
            path = table_path(warehouse, schema, table)
            files = sorted(path.rglob("*.parquet"))
            if not files:
                (rows,) = con.execute(f"select count(*) from {schema}.{table}").fetchone()
                found[name] = (rows, 0)
                continue
            spark = (
                f"read_parquet({[str(f) for f in files]!r}, hive_partitioning = true,"
                " union_by_name = true)"
            )

            def select(relation: str) -> str:
                out = []
                for column, data_type in columns:
                    value = f'cast("{column}" as {data_type})'
                    if data_type in ("DOUBLE", "FLOAT") or data_type.startswith("DECIMAL"):
                        value = f"round(cast(\"{column}\" as double), {decimals})"
                    out.append(f'{value} as "{column}"')
                return f"select {', '.join(out)} from {relation}"

            duck = select(f"{schema}.{table}")
            theirs = select(spark)
            (only_duck,) = con.execute(
                f"select count(*) from ({duck} except all {theirs})"
            ).fetchone()
            (only_spark,) = con.execute(
                f"select count(*) from ({theirs} except all {duck})"
            ).fetchone()
            found[name] = (only_duck, only_spark)
    return found
