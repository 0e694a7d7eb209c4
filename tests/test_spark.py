"""The `spark` engine (issue 23): the same dbt project built by Apache Spark gives the same
published mart as DuckDB's, on a first build and on an incremental day after it, locally and
on a standalone cluster on loopback (a master and two workers from pyspark's own scripts).

`make test-spark` runs these (marker `spark`; `make setup-spark` installs Java and pyspark);
`make test` leaves them out. Floating-point figures are equal when rounded to 9 decimal
places (Spark and DuckDB add in different orders); everything else is equal exactly."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from engagement.warehouse.spark import published_differences
from tests.conftest import RUN_COLUMNS, SampleRun, copy_data_dir, engagement, free_port

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

ELASTIC_HOSTS = "semicomplete.com,www.semicomplete.com"
ELASTIC_FIRST = ["--start", "2015-05-17", "--end", "2015-05-20"]
ELASTIC_NEXT = ["--start", "2015-05-20", "--end", "2015-05-21"]
SECOND_DAY = ["--start", "2026-11-03", "--end", "2026-11-04"]


@pytest.fixture(scope="module", autouse=True)
def spark_installed() -> None:
    """A clear failure, not a skip, when the engine is missing."""
    if shutil.which("java") is None:
        pytest.fail("no java on PATH: run `make setup-spark`")
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"{exc.name} is not installed: run `make setup-spark`")


def spark_env(env: dict[str, str], **settings: str) -> dict[str, str]:
    return dict(env, ENGAGEMENT_WAREHOUSE_ENGINE="spark", **settings)


def assert_same_marts(duck: Path, spark: Path) -> None:
    found = published_differences(
        duck / "engagement.duckdb", spark / "engagement.duckdb", RUN_COLUMNS
    )
    different = {t: d for t, d in found.items() if d[0] or d[1]}
    assert not different, f"marts that differ (only DuckDB, only Spark, rows): {different}"
    # not an empty comparison: the marts have rows
    assert sum(rows for *_, rows in found.values()) > 100, found


@pytest.fixture(scope="module")
def elastic(tmp_path_factory: pytest.TempPathFactory, elastic_log: Path) -> dict[str, str]:
    """The shared elastic log's first days extracted and loaded (not built)."""
    data = tmp_path_factory.mktemp("spark-elastic") / "data"
    env = dict(os.environ, ENGAGEMENT_DATA_DIR=str(data), SUPPORT_SITE_HOSTS=ELASTIC_HOSTS)
    for days in (ELASTIC_FIRST, ELASTIC_NEXT):
        engagement("extract", "support-site", "--logs", str(elastic_log), *days, env=env)
    engagement("load", "--source", "support-site", *ELASTIC_FIRST, env=env)
    return env


def share_raw(loaded: dict[str, str], other: dict[str, str]) -> None:
    """`other`'s raw warehouse replaced by `loaded`'s: both engines build the same loads."""
    raw = Path("warehouse") / "raw.duckdb"
    shutil.copyfile(
        Path(loaded["ENGAGEMENT_DATA_DIR"]) / raw, Path(other["ENGAGEMENT_DATA_DIR"]) / raw
    )


def copy_env(env: dict[str, str], root: Path) -> dict[str, str]:
    copy_data_dir(Path(env["ENGAGEMENT_DATA_DIR"]), root)
    return dict(env, ENGAGEMENT_DATA_DIR=str(root))


def test_spark_builds_the_elastic_log_as_duckdb_does_and_publishes_only_green(
    elastic: dict[str, str], tmp_path: Path
) -> None:
    duck = copy_env(elastic, tmp_path / "duck")
    spark = spark_env(copy_env(elastic, tmp_path / "spark"))
    for env in (duck, spark):
        engagement("build", env=env)
    warehouses = [Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" for env in (duck, spark)]
    assert_same_marts(*warehouses)

    engagement("load", "--source", "support-site", *ELASTIC_NEXT, env=duck)
    # write, audit, publish on Spark: a load whose data fails a dbt test (lines without a
    # visitor) publishes nothing and moves no state
    published = (warehouses[1] / "engagement.duckdb").read_bytes()
    share_raw(duck, spark)
    with duckdb.connect(str(warehouses[1] / "raw.duckdb")) as con:
        con.execute(
            "update support_site.requests set visitor_id = null,"
            " _loaded_at = _loaded_at + interval 1 second where interval_start = ?",
            [ELASTIC_NEXT[1]],
        )
    failed = engagement("build", env=spark, check=False)
    assert failed.returncode == 3 and "nothing published" in failed.stderr, failed.stderr
    assert "not_null_columns_stg_support_site__requests" in failed.stderr
    assert (warehouses[1] / "engagement.duckdb").read_bytes() == published

    share_raw(duck, spark)  # the load as it should be
    for env in (duck, spark):  # the next day: an incremental build on each engine
        built = json.loads(engagement("build", env=env).stdout)
        assert not built["full_refresh"] and built["changed_loads"] == 1
    assert_same_marts(*warehouses)


def test_the_sample_company_builds_the_same_marts_on_spark_read_as_ever(
    sample_day: SampleRun, tmp_path: Path, sandbox_url: str
) -> None:
    duck = sample_day.copy(tmp_path / "duck", sandbox_url)
    spark = spark_env(sample_day.copy(tmp_path / "spark", sandbox_url))
    spark_warehouse = Path(spark["ENGAGEMENT_DATA_DIR"]) / "warehouse"
    for built in ("build.duckdb", "engagement.duckdb"):  # Spark builds it all from raw
        (spark_warehouse / built).unlink()
    engagement("build", env=spark)
    duck_warehouse = Path(duck["ENGAGEMENT_DATA_DIR"]) / "warehouse"
    assert_same_marts(duck_warehouse, spark_warehouse)

    engagement("run", *SECOND_DAY, env=duck)  # the second day, and its build on each
    share_raw(duck, spark)
    assert not json.loads(engagement("build", env=spark).stdout)["full_refresh"]
    assert_same_marts(duck_warehouse, spark_warehouse)
    headlines = [engagement("headline", env=env).stdout for env in (duck, spark)]
    assert headlines[0] == headlines[1] and "Support-site sessions" in headlines[0]
    metrics = []  # MetricFlow reads the published file as it does after a DuckDB build
    for engine, env in (("duck", duck), ("spark", spark)):
        out = tmp_path / f"{engine}.csv"
        engagement(
            "mf", "query", "--metrics", "support_sessions,response_rate",
            "--group-by", "metric_time__day", "--order", "metric_time__day",
            "--csv", str(out), env=env,
        )  # fmt: skip
        metrics.append(out.read_text())
    assert metrics[0] == metrics[1] and len(metrics[0].splitlines()) == 3  # a header, 2 days


@pytest.fixture
def spark_cluster(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """docker-compose.yml's profile spark run natively: its spark-master and its two
    spark-worker replicas (one core each), their commands run by pyspark's own
    `spark-class` on loopback ports; yields the master's URL and its JSON status page's
    once both workers have registered there."""
    import pyspark

    from tests.airflow_stack import compose, example_env

    variables = example_env(date(2026, 11, 24)) | {
        "SPARK_WORKERS": "2", "SPARK_WORKER_CORES": "1", "SPARK_WORKER_MEMORY": "1g"
    }  # fmt: skip
    services = compose(variables)["services"]
    port, ui = free_port(), free_port()
    native = {
        "/opt/spark/bin/spark-class": str(Path(pyspark.__file__).parent / "bin" / "spark-class"),
        "spark-master": "127.0.0.1",
        "spark://spark-master:7077": f"spark://127.0.0.1:{port}",
        "7077": str(port),
        "8080": str(ui),
    }

    def command(service: str) -> list[str]:
        argv = [native.get(arg, arg) for arg in shlex.split(services[service]["command"])]
        return [str(free_port()) if arg == "8081" else arg for arg in argv]

    replicas = int(services["spark-worker"]["deploy"]["replicas"])
    env = dict(os.environ, SPARK_WORKER_DIR=str(tmp_path / "work"))
    with open(tmp_path / "spark.log", "w") as log:  # the daemons' logs, for a failure
        daemons = [
            subprocess.Popen(command(service), env=env, stdout=log, stderr=log)
            for service in ["spark-master"] + ["spark-worker"] * replicas
        ]
        try:
            status = f"http://127.0.0.1:{ui}/json/"
            wait_for_workers(status, replicas, daemons)
            yield native["spark://spark-master:7077"], status
        finally:
            for daemon in daemons:
                daemon.terminate()
            for daemon in daemons:
                daemon.wait(timeout=60)


def wait_for_workers(status_url: str, workers: int, daemons: list[subprocess.Popen]) -> None:
    """Until the master's status page counts `workers` alive (each poll waits on the HTTP
    request; a daemon that exits ends the wait with its failure)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for daemon in daemons:
            assert daemon.poll() is None, f"a Spark daemon exited ({daemon.args[1]})"
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:
                if json.load(response).get("aliveworkers", 0) >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the Spark master did not see {workers} workers within 180 s")


def test_a_standalone_cluster_builds_the_same_marts(
    elastic: dict[str, str], tmp_path: Path, spark_cluster: tuple[str, str]
) -> None:
    master, status = spark_cluster
    duck = copy_env(elastic, tmp_path / "duck")
    spark = spark_env(copy_env(elastic, tmp_path / "spark"), ENGAGEMENT_SPARK_MASTER=master)
    for env in (duck, spark):
        engagement("build", env=env)
    assert_same_marts(*(Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" for env in (duck, spark)))
    with urllib.request.urlopen(status, timeout=10) as response:
        apps = json.load(response)["completedapps"]
    # the build was an application of the cluster, its work done by the workers' executors
    assert [app["name"] for app in apps] and all(app["cores"] >= 2 for app in apps), apps


@pytest.fixture
def thrift_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Spark Thrift Server on loopback (pyspark's own jars, local mode), its warehouse a
    data directory's Spark warehouse: yields `host:port` and that data directory, once the
    server answers a query."""
    import pyspark
    from pyhive import hive

    data = tmp_path / "data"
    warehouse = data / "warehouse" / "spark" / "warehouse"
    warehouse.mkdir(parents=True)
    port = free_port()
    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with open(tmp_path / "thrift.log", "w") as log:
        server = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.SparkSubmit",
             "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
             "--master", "local[2]", "--conf", f"spark.sql.warehouse.dir={warehouse}",
             "--conf", "spark.ui.enabled=false",
             "--hiveconf", f"hive.server2.thrift.port={port}",
             "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1", "spark-internal"],
            cwd=tmp_path, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while True:
                assert server.poll() is None, "the Thrift server exited: see thrift.log"
                try:
                    hive.connect(host="127.0.0.1", port=port, username="test").close()
                    break
                except Exception:  # thrift's TTransportException: not listening yet
                    assert time.monotonic() < deadline, "the Thrift server did not answer"
                    time.sleep(0.2)
            yield f"127.0.0.1:{port}", data
        finally:
            server.terminate()
            server.wait(timeout=60)


def test_a_thrift_server_builds_the_same_marts(
    elastic: dict[str, str], tmp_path: Path, thrift_server: tuple[str, Path]
) -> None:
    address, data = thrift_server
    shutil.rmtree(data)  # what the server made at its start, made again by the build
    spark = spark_env(copy_env(elastic, data), ENGAGEMENT_SPARK_THRIFT=address)
    (data / "warehouse" / "spark" / "warehouse").mkdir(parents=True, exist_ok=True)
    duck = copy_env(elastic, tmp_path / "duck")
    for env in (duck, spark):
        engagement("build", env=env)
    assert_same_marts(*(Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" for env in (duck, spark)))
