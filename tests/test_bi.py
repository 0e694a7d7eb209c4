"""A BI tool reads the mart: Superset's bundle (bi/superset/engagement_mart) names only what a
real published mart has, and a reader through SQLAlchemy and duckdb-engine, opened read-only as
the bundle opens it and with Superset's NullPool, never sees an error or a half-published mart
while it is republished."""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy
import yaml
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from engagement.warehouse.build import publish
from tests.conftest import REPO, copy_data_dir
from tests.test_warehouse import Warehouse, make_warehouse

pytestmark = pytest.mark.e2e  # builds and publishes real marts

BUNDLE = REPO / "bi" / "superset" / "engagement_mart"
FIRST, SECOND = date(2026, 11, 5), date(2026, 11, 6)
# Superset's DuckDB time grains (superset/db_engine_specs/duckdb.py)
GRAINS = {"P1D": "day", "P1W": "week", "P1M": "month", "P0.25Y": "quarter", "P1Y": "year"}
# one statement, so one snapshot: three marts whose totals must agree, and what a publish moves
SNAPSHOT = """
select
    (select sum(sessions) from marts.agg_daily_referrals) as referred_sessions,
    (select sum(support_sessions) from marts.agg_daily_engagement) as support_sessions,
    (select count(*) from marts.fct_support_sessions) as sessions,
    (select count(*) from marts.agg_daily_engagement) as days,
    (select max(date_day) from marts.agg_daily_engagement) as last_day
"""


def bundle(kind: str) -> list[dict]:
    return [yaml.safe_load(path.read_text()) for path in sorted((BUNDLE / kind).rglob("*.yaml"))]


DATASETS = {d["uuid"]: d for d in bundle("datasets")}
# the period figures (dbt model agg_period_figures), defined once: the dashboard takes them
FIGURES_TABLE = "agg_period_figures"


def engine(published: Path) -> Engine:
    """The bundle's database entry pointed at `published`: its driver, its connect_args
    (read-only) and the pool Superset gives analytics databases (NullPool: a connection per
    query, so each query opens the file as it is then)."""
    (database,) = bundle("databases")
    url = make_url(database["sqlalchemy_uri"]).set(database=str(published))
    connect_args = database["extra"]["engine_params"]["connect_args"]
    return sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory, sandbox_url: str) -> Iterator[Warehouse]:
    """A warehouse with one day built and published, as test_warehouse.py builds them."""
    warehouse = make_warehouse(tmp_path_factory.mktemp("bi"), sandbox_url)
    warehouse.load(FIRST)
    warehouse.build()
    yield warehouse


def source(dataset: dict) -> str:
    """What a dataset reads: its table, or its SQL (a virtual dataset)."""
    if dataset["sql"]:
        return f"({dataset['sql']}) as {dataset['table_name']}"
    return f"{dataset['schema']}.{dataset['table_name']}"


def columns_of(con: duckdb.DuckDBPyConnection, dataset: dict) -> dict[str, str]:
    rows = con.execute(f"describe select * from {source(dataset)}").fetchall()
    return {name: kind for name, kind, *_ in rows}


def test_every_dataset_and_column_of_the_dashboard_is_in_the_published_mart(
    mart: Warehouse,
) -> None:
    with duckdb.connect(str(mart.published), read_only=True) as con:
        published = {t for (t,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts'"
        ).fetchall()}  # fmt: skip
        for dataset in bundle("datasets"):
            assert dataset["schema"] == "marts"
            if not dataset["sql"]:
                assert dataset["table_name"] in published, dataset["table_name"]
            declared = {c["column_name"]: c["type"] for c in dataset["columns"]}
            assert declared == columns_of(con, dataset), dataset["table_name"]  # all, as typed
            assert [c["column_name"] for c in dataset["columns"] if c["is_dttm"]] == [
                dataset["main_dttm_col"]
            ]


def chart_query(chart: dict, rows_per_point: bool = False) -> str:
    """A chart's query as Superset builds it for DuckDB: its x axis (truncated to its time
    grain), its series or groups, its saved metrics' SQL and its filters, grouped. With
    `rows_per_point`, how many rows of the dataset each point of the chart aggregates."""
    dataset, params = DATASETS[chart["dataset_uuid"]], chart["params"]
    columns = {c["column_name"] for c in dataset["columns"]}
    metrics = {m["metric_name"]: m["expression"] for m in dataset["metrics"]}
    assert chart["viz_type"] == params["viz_type"]
    x, groups = params.get("x_axis"), params["groupby"]
    filters = [f for f in params["adhoc_filters"] if f["operator"] != "TEMPORAL_RANGE"]
    assert {*groups, *(f["subject"] for f in params["adhoc_filters"])} <= columns
    assert x is None or x in columns
    assert set(params["metrics"]) <= set(metrics), chart["slice_name"]
    grain = params.get("time_grain_sqla")
    axis = [f"date_trunc('{GRAINS[grain]}', {x}) as {x}" if grain else x] if x else []
    where = " and ".join(
        f"{f['subject']} in ({', '.join(repr(v) for v in f['comparator'])})" for f in filters
    )
    values = ["count(*) as rows"] if rows_per_point else [metrics[m] for m in params["metrics"]]
    return (
        f"select {', '.join([*axis, *groups, *values])} from {source(dataset)}"
        f"{' where ' + where if where else ''} group by all order by all"
    )


def chart_queries() -> Iterator[tuple[str, str]]:
    for chart in bundle("charts"):
        yield chart["slice_name"], chart_query(chart)


def chart_rows(con: duckdb.DuckDBPyConnection, slice_name: str) -> list[dict]:
    """A chart's data, as Superset's query returns it, by metric name."""
    (chart,) = [c for c in bundle("charts") if c["slice_name"] == slice_name]
    cursor = con.execute(chart_query(chart))
    names = [d[0] for d in cursor.description]
    metrics = chart["params"]["metrics"]
    names[len(names) - len(metrics) :] = metrics
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_every_chart_runs_on_the_published_mart_through_duckdb_engine(mart: Warehouse) -> None:
    reader = engine(mart.published)
    with reader.connect() as con:
        for name, sql in chart_queries():
            rows = con.execute(sqlalchemy.text(sql)).fetchall()
            assert rows, f"{name}: no rows from {sql}"
        # rates are ratios of sums, never averages of daily rates
        for dataset in bundle("datasets"):
            for metric in dataset["metrics"]:
                assert "avg(" not in metric["expression"].lower(), metric["metric_name"]
        # and the connection is read-only
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            con.execute(sqlalchemy.text("create table marts.scratch (x int)"))
    assert isinstance(reader.pool, NullPool)


def test_the_dashboard_takes_the_period_figures_and_computes_none(mart: Warehouse) -> None:
    """Every figure agg_period_figures defines is a metric of its dataset only, taken as the
    one value of its row (MAX of one row per point: each chart filters the grain and scope
    that give one), and the charts of the figures read that dataset."""
    (figures,) = [d for d in bundle("datasets") if d["table_name"] == FIGURES_TABLE]
    for metric in figures["metrics"]:
        assert metric["expression"] == f"MAX({metric['metric_name']})", metric
    names = {m["metric_name"] for m in figures["metrics"]}
    rates = {"conversation_share", "response_rate", "median_first_response_minutes"}
    rates |= {"social_share", "own_site_share"}
    assert rates | {"x_referred_sessions", "own_site_sessions"} <= names
    for dataset in bundle("datasets"):  # no second definition of a rate elsewhere
        if dataset["uuid"] != figures["uuid"]:
            assert not rates & {m["metric_name"] for m in dataset["metrics"]}, dataset["table_name"]
    on_figures = [c for c in bundle("charts") if c["dataset_uuid"] == figures["uuid"]]
    assert len(on_figures) >= 4
    with duckdb.connect(str(mart.published), read_only=True) as con:
        for chart in on_figures:
            counts = con.execute(chart_query(chart, rows_per_point=True)).fetchall()
            assert counts and {row[-1] for row in counts} == {1}, chart["slice_name"]


def snapshot_of(path: Path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(SNAPSHOT).fetchone()


def test_a_reader_in_a_loop_sees_no_error_and_no_half_published_mart(
    mart: Warehouse, tmp_path: Path
) -> None:
    """A reader queries the mart through SQLAlchemy and duckdb-engine, read-only, a new
    connection each time, while the main thread builds and publishes the next day and then
    publishes the old and the new build alternately: every read is the mart before or the mart
    after, whole, and the reads after a publish see it."""
    copy_data_dir(mart.settings.data_dir, tmp_path / "data")
    warehouse = Warehouse(
        mart.settings.model_copy(update={"data_dir": tmp_path / "data"}), mart.logs
    )
    before_build = shutil.copyfile(warehouse.settings.build_db, tmp_path / "before.duckdb")
    before = snapshot_of(before_build)
    assert snapshot_of(warehouse.published) == before
    warehouse.load(SECOND)  # into the raw warehouse: the published mart is unchanged

    reader = engine(warehouse.published)
    reads: list[tuple[float, tuple]] = []  # (when the read started, what it saw)
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with reader.connect() as con:
                    row = tuple(con.execute(sqlalchemy.text(SNAPSHOT)).one())
            except Exception:  # noqa: BLE001 - every error is a failure, reported whole
                errors.append(traceback.format_exc())
            else:
                reads.append((started, row))
            time.sleep(0.005)

    def a_read_after(published: float) -> None:
        """Wait until a read that started after `published` has ended."""
        deadline = published + 60
        while not any(t > published for t, _ in reads) and time.monotonic() < deadline:
            time.sleep(0.005)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        result = warehouse.build()  # dbt, then the publish (os.replace) while the reader reads
        assert result.changed_loads == 2 and not result.full_refresh
        a_read_after(time.monotonic())
        after = snapshot_of(warehouse.settings.build_db)
        for _ in range(3):  # more swaps under the reader: the old mart, the new one, ...
            for build in (before_build, warehouse.settings.build_db):
                publish(build, warehouse.published, in_place=False)
                a_read_after(time.monotonic())
    finally:
        stop.set()
        thread.join(timeout=60)

    assert not errors, errors[0]
    assert before != after and after[3] == before[3] + 1  # one more day published
    seen = [row for _, row in reads]
    assert all(row[0] == row[1] == row[2] for row in seen), "totals disagree within one read"
    assert set(seen) <= {before, after}, set(seen) - {before, after}
    # a new connection sees each publish: before, after, then 3 times before and after again
    changes = [row for i, row in enumerate(seen) if i == 0 or row != seen[i - 1]]
    assert changes == [before, after] * 4, changes
