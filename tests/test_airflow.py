"""The DAGs, imported and run by real Airflow (in subprocesses with their own AIRFLOW_HOME)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from devtools.sample import write_sample
from tests.conftest import REPO, TOKEN

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, Airflow or warehouse

INSPECT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.mappedoperator import MappedOperator
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    condition = getattr(dag.timetable, "asset_condition", None)
    dags[dag_id] = {
        "timetable": type(dag.timetable).__name__,
        "tasks": {t.task_id: {"pool": t.pool, "outlets": [a.name for a in t.outlets],
                              "priority": t.priority_weight}
                  for t in dag.tasks},
        "mapped": sorted(t.task_id for t in dag.tasks if isinstance(t, MappedOperator)),
        "schedule": type(condition).__name__,
        "assets": sorted(a.name for a in getattr(condition, "objects", [])),
    }
light = ("engagement", "engagement.settings", "engagement.orchestration", "engagement.errors")
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("extract", "engagement", "devtools", "dbt",
                                      "great_expectations", "duckdb", "tweepy", "pandas",
                                      "pyarrow")
               and m not in light)
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": dags, "heavy": heavy}))
"""


def airflow_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        **extra,
    )


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def test_dagbag_imports_thin_dags(tmp_path: Path) -> None:
    result = run([sys.executable, "-c", INSPECT, str(REPO / "dags")], airflow_env(tmp_path))
    bag = json.loads(result.stdout.splitlines()[-1])
    assert bag["errors"] == {}
    assert set(bag["dags"]) == {"engagement_ingest", "engagement_mart"}
    assert bag["heavy"] == [], "DAG files must not import heavy modules at top level"
    # Airflow puts dags/ on sys.path: a DAG file named like a package would shadow it
    packages = {"extract", "engagement", "devtools"}
    assert not {path.stem for path in (REPO / "dags").glob("*.py")} & packages
    ingest = bag["dags"]["engagement_ingest"]
    assert ingest["timetable"] == "CronDataIntervalTimetable"
    # the support site's extraction fanned out: planned, its parts mapped, combined
    extracting = {"x": ["extract"], "support_site": ["plan_parts", "extract_part", "combine"]}
    assert {t for t in ingest["tasks"] if ".extract" in t or ".plan" in t or ".comb" in t} == {
        f"{source}.{task}" for source, tasks in extracting.items() for task in tasks
    }
    assert ingest["mapped"] == ["support_site.extract_part"]
    for source in ("x", "support_site"):
        load = ingest["tasks"][f"{source}.load"]
        assert (load["pool"], load["outlets"]) == ("duckdb_writer", [f"engagement_raw_{source}"])
        for task in extracting[source]:  # they write no warehouse: any worker, in parallel
            assert ingest["tasks"][f"{source}.{task}"]["pool"] == "default_pool"
        # the gate's refusals are recorded in the raw warehouse: validation writes it too
        assert ingest["tasks"][f"{source}.validate"]["pool"] == "duckdb_writer"
    mart = bag["dags"]["engagement_mart"]
    assert mart["schedule"] == "AssetAny"
    assert mart["assets"] == ["engagement_raw_support_site", "engagement_raw_x"]
    assert mart["tasks"]["build_and_publish"]["pool"] == "duckdb_writer"
    assert mart["tasks"]["write_report"]["pool"] == "default_pool"  # reads the mart only
    # a landing writer waiting for the writer slot goes before a build (whose weight is its
    # own and its downstream's): that build then takes in both sources' loads
    build = sum(task["priority"] for task in mart["tasks"].values())
    writers = [t for t in ingest["tasks"].values() if t["pool"] == "duckdb_writer"]
    assert len(writers) == 4 and all(t["priority"] > build for t in writers)


# the scheduler's own evaluation of the mart's schedule, on the serialized DAG
TRIGGERS = """
import json, sys
from airflow.assets.evaluation import AssetEvaluator
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.definitions.assets import SerializedAssetUniqueKey as Key
from airflow.serialization.serialized_objects import DagSerialization
dag = DagBag(dag_folder=sys.argv[1]).dags["engagement_mart"]
condition = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable.asset_condition
updated = {"none": [], "x": ["engagement_raw_x"], "support_site": ["engagement_raw_support_site"],
           "both": ["engagement_raw_x", "engagement_raw_support_site"]}
names = ["engagement_raw_x", "engagement_raw_support_site"]
print(json.dumps({
    case: AssetEvaluator(None).run(condition, {Key(name=n, uri=n): n in loaded for n in names})
    for case, loaded in updated.items()
}))
"""


def test_a_load_of_either_source_builds_the_mart(tmp_path: Path) -> None:
    """A reload of one source (a cleared task, a backfill) is built without waiting for the
    other source's next load; the coverage mart marks a source still pending as missing."""
    result = run([sys.executable, "-c", TRIGGERS, str(REPO / "dags")], airflow_env(tmp_path))
    triggers = json.loads(result.stdout.splitlines()[-1])
    assert triggers == {"none": False, "x": True, "support_site": True, "both": True}


def test_airflow_runs_the_pipeline_for_a_day(tmp_path: Path, sandbox_url: str) -> None:
    write_sample(tmp_path / "logs")
    env = airflow_env(
        tmp_path,
        ENGAGEMENT_DATA_DIR=str(tmp_path / "data"),
        X_API_BASE_URL=sandbox_url,
        X_BEARER_TOKEN=TOKEN,
        X_ACCOUNTS="acmecloud,acmesupport",
        SUPPORT_SITE_LOGS=str(tmp_path / "logs" / "access.log*"),
        SUPPORT_SITE_PART_MB="0.5",  # a part per file of the sample (~0.55 MB each)
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    run([airflow, "db", "migrate"], env)
    run([airflow, "pools", "set", "duckdb_writer", "1", "DuckDB writers"], env)
    result = run(
        [sys.executable, "scripts/run_dags.py", "--start", "2026-11-05", "--days", "1"], env
    )
    assert "run engagement_mart: success" in result.stdout

    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as meta:
        runs = meta.execute(
            "select dag_id, data_interval_start, data_interval_end, state from dag_run "
            "where dag_id != 'engagement_mart' order by dag_id"
        ).fetchall()
        events = meta.execute(
            "select a.name from asset_event e join asset a on a.id = e.asset_id order by 1"
        ).fetchall()
        parts = meta.execute(
            "select map_index, state from task_instance"
            " where task_id = 'support_site.extract_part' order by map_index"
        ).fetchall()
    assert [(r[0], r[1][:10], r[2][:10], r[3]) for r in runs] == [
        ("engagement_ingest", "2026-11-05", "2026-11-06", "success"),
    ]
    assert {e[0] for e in events} >= {"engagement_raw_x", "engagement_raw_support_site"}
    # the sample's seven files, none known yet: seven parts, each a mapped task instance
    assert parts == [(index, "success") for index in range(7)]
    manifest = json.loads(next((tmp_path / "data" / "raw" / "support_site").glob(
        "*/manifest.json")).read_text())  # fmt: skip
    assert len(manifest["files"]) == 7 and manifest["records"] > 0
    assert not (tmp_path / "data" / "versions" / ".parts").exists()  # staging removed
    mart = tmp_path / "data" / "warehouse" / "engagement.duckdb"
    with duckdb.connect(str(mart), read_only=True) as con:
        days = con.execute("select date_day::varchar, x_posts from marts.agg_daily_engagement")
        rows = days.fetchall()
    assert [r[0] for r in rows] == ["2026-11-05"] and rows[0][1] > 0
    # after the publish, the mart DAG wrote the report (ENGAGEMENT_REPORT_PATH's default)
    report = (tmp_path / "data" / "reports" / "engagement.html").read_text()
    assert '<span data-field="first_day">2026-11-05</span>' in report
