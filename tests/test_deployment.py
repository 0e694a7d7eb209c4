"""docker-compose.yml cannot run here (no Docker engine): check that what it describes
exists and agrees with what tests/test_scheduler.py runs natively from it."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
import yaml

from engagement.cli import parser
from engagement.settings import Settings
from tests.airflow_stack import AIRFLOW_SERVICES, BIN, COMPOSE, NativeStack, dotenv, example_env
from tests.conftest import REPO

ONE_OFF = {"airflow-init", "sample-logs", "superset-init"}  # jobs that run to their end
MACHINE = {"postgres", "redis"}  # what the machine provides natively
BI = {"superset-init", "superset"}  # profile bi: another image, not run natively (test_bi.py)
SPARK = {"spark-master", "spark-worker"}  # profile spark: apache/spark, run natively by test_spark
SUPERSET = REPO / "bi" / "superset"


@pytest.fixture
def stack(tmp_path: Path) -> NativeStack:
    return NativeStack(tmp_path, example_env(date(2026, 11, 24)))


def test_compose_has_the_official_shape(stack: NativeStack) -> None:
    services = stack.spec["services"]
    assert set(services) == set(AIRFLOW_SERVICES) | ONE_OFF | MACHINE | BI | SPARK | {"x-sandbox"}
    assert stack.spec["services"]["airflow-worker"]["deploy"]["replicas"] == 2
    for name, spec in services.items():
        if name not in ONE_OFF:
            assert spec.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert spec.get("restart") == "always", f"{name} is not restarted"
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }
        assert "engagement-data:/data" in services[name]["volumes"]
        assert services[name]["environment"]["ENGAGEMENT_DATA_DIR"] == "/data"
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    assert profiles == {"sandbox", "bi", "spark"}


def test_the_native_stack_runs_what_compose_describes(stack: NativeStack) -> None:
    """The native test starts every service but the machine's own PostgreSQL and Redis,
    each with its compose command; only addresses differ from the compose settings."""
    common = stack.service("airflow-scheduler").environment
    assert set(stack.addresses()) <= set(common), set(stack.addresses()) - set(common)
    for name in set(stack.spec["services"]) - MACHINE - BI - SPARK:
        service = stack.service(name)
        command = stack.localise(service.command)
        assert (BIN / command[0]).exists() or command[0] == "bash", command
        if command[0] == "engagement":
            parser().parse_args(command[1:])
        environment = stack.environment(service)
        for key, value in service.environment.items():
            assert environment[key] == stack.addresses().get(key, value)
    init = " ".join(stack.service("airflow-init").command)
    pool = re.search(r"pools set (\S+) 1", init)[1]
    assert f'WRITER_POOL = "{pool}"' in (REPO / "dags" / "engagement_dags.py").read_text()
    assert "airflow db migrate" in init and "users create --role Admin" in init


def test_the_sandbox_profile_points_the_dags_at_the_sandbox(stack: NativeStack) -> None:
    services = stack.spec["services"]
    sandbox = shlex.split(services["x-sandbox"]["command"])
    port = sandbox[sandbox.index("--port") + 1]
    assert stack.variables["X_API_BASE_URL"] == f"http://x-sandbox:{port}"
    assert services["airflow-scheduler"]["environment"]["X_API_BASE_URL"] == (
        f"http://x-sandbox:{port}"
    )
    written = shlex.split(services["sample-logs"]["command"])
    assert "support-site-logs:/logs" in services["sample-logs"]["volumes"]
    assert written[written.index("--out") + 1] == "/logs"
    assert "support-site-logs:/logs:ro" in services["airflow-worker"]["volumes"]
    assert services["airflow-worker"]["environment"]["SUPPORT_SITE_LOGS"] == "/logs/access.log*"
    start = stack.variables["ENGAGEMENT_START_DATE"]
    for command in (sandbox, written):  # the same days as the DAGs land
        assert command[command.index("--start") + 1] == start


def test_the_bi_profile_runs_superset_on_the_published_mart_read_only(stack: NativeStack) -> None:
    services = stack.spec["services"]
    assert {name for name, spec in services.items() if "bi" in spec.get("profiles", [])} == BI
    copied = dockerfile_copies()
    for name in BI:
        spec = services[name]
        assert spec["profiles"] == ["bi"], name
        assert spec["build"] == "bi/superset" and spec["image"].startswith(
            "engagement-mart-superset"
        )
        # the warehouse read-only, Superset's own metadata on a volume of its own
        assert "engagement-data:/data:ro" in spec["volumes"], name
        assert "superset-home:/app/superset_home" in spec["volumes"], name
        assert not [
            v for v in spec["volumes"] if v.startswith("engagement-data:") and v[-3:] != ":ro"
        ]
        assert spec["environment"]["SUPERSET_SECRET_KEY"] == stack.variables["SUPERSET_SECRET_KEY"]
        assert spec["environment"]["SUPERSET_CONFIG_PATH"] == copied["superset_config.py"]
    # secrets from .env only: compose refuses to start without them
    text = COMPOSE.read_text()
    # the Airflow profiles need no Superset secret: profile bi refuses to start without them
    for secret in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD"):
        assert f"${{{secret}:-}}" in text and secret in dotenv(REPO / ".env.example")
    assert 'echo "superset-init: set $$secret in .env" >&2; exit 2' in text
    refused = subprocess.run(
        [sys.executable, str(SUPERSET / "superset_config.py")],
        env={"SUPERSET_SECRET_KEY": ""},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == "superset: set SUPERSET_SECRET_KEY in .env (profile bi)"
    superset = services["superset"]
    assert superset["restart"] == "always" and superset["healthcheck"]["test"]
    assert superset["depends_on"] == {
        "superset-init": {"condition": "service_completed_successfully"}
    }
    assert superset["ports"] == [f"{stack.variables['SUPERSET_PORT']}:8088"]
    init = services["superset-init"]
    assert (
        init["environment"]["SUPERSET_ADMIN_PASSWORD"] == stack.variables["SUPERSET_ADMIN_PASSWORD"]
    )
    script = init["command"][-1]
    steps = [
        "superset db upgrade",
        "superset fab create-admin",
        "superset init",
        "import-dashboards",
    ]
    assert all(step in script for step in steps)
    assert [script.index(step) for step in steps] == sorted(script.index(step) for step in steps)


def dockerfile_copies() -> dict[str, str]:
    """What bi/superset/Dockerfile copies into the image, and where."""
    lines = (SUPERSET / "Dockerfile").read_text().splitlines()
    return dict(line.split()[-2:] for line in lines if line.startswith("COPY "))


def superset_bundle() -> dict[str, dict]:
    """bi/superset/engagement_mart as superset-init imports it: zipped under one root folder
    (Superset drops the first folder of every name), its YAML files parsed."""
    _, root_dir, base_dir = ARCHIVE.search(compose_init()).groups()
    copied = dockerfile_copies()
    assert copied["engagement_mart"] == f"{root_dir}/{base_dir}", (
        "the bundle is not where it is zipped"
    )
    return {
        str(path.relative_to(SUPERSET / "engagement_mart")): yaml.safe_load(path.read_text())
        for path in sorted((SUPERSET / "engagement_mart").rglob("*.yaml"))
    }


ARCHIVE = re.compile(r"make_archive\('([^']+)', 'zip', '([^']+)', '([^']+)'\)")


def compose_init() -> str:
    """superset-init's script."""
    return yaml.safe_load(COMPOSE.read_text())["services"]["superset-init"]["command"][-1]


def test_the_superset_bundle_is_one_import_of_database_datasets_charts_dashboard(
    tmp_path: Path,
) -> None:
    files = superset_bundle()
    assert files.pop("metadata.yaml") == {
        "version": "1.0.0", "type": "Dashboard", "timestamp": "2026-12-01T00:00:00+00:00"
    }  # fmt: skip
    kinds: dict[str, list[dict]] = {}
    for name, content in files.items():
        kinds.setdefault(name.split("/")[0], []).append(content)
        assert content["version"] == "1.0.0", name
    (database,) = kinds["databases"]
    (dashboard,) = kinds["dashboards"]
    assert {d["database_uuid"] for d in kinds["datasets"]} == {database["uuid"]}
    datasets = {d["uuid"] for d in kinds["datasets"]}
    used = {c["dataset_uuid"] for c in kinds["charts"]}
    assert used <= datasets
    # the daily tables stay datasets to explore (counts and statuses per day), though no chart
    # reads them since the charts' figures come from agg_period_figures
    unused = {d["table_name"] for d in kinds["datasets"] if d["uuid"] not in used}
    assert unused == {
        "agg_daily_engagement",
        "agg_daily_account_engagement",
        "agg_daily_account_dm_care",
        "agg_daily_excluded_traffic",
    }
    placed = [e["meta"]["uuid"] for e in dashboard["position"].values()
              if isinstance(e, dict) and e.get("type") == "CHART"]  # fmt: skip
    assert sorted(placed) == sorted(c["uuid"] for c in kinds["charts"])
    uuids = [d["uuid"] for d in (database, dashboard, *kinds["datasets"], *kinds["charts"])]
    assert len(set(uuids)) == len(uuids)
    # the mart compose mounts, opened read-only, nothing writable through Superset
    published = Settings.from_env(dict(os.environ, ENGAGEMENT_DATA_DIR="/data")).published_db
    assert database["sqlalchemy_uri"] == f"duckdb:///{published}"
    assert database["extra"]["engine_params"]["connect_args"]["read_only"] is True
    assert not any(database[key] for key in ("allow_dml", "allow_ctas", "allow_cvas"))
    # zipped as superset-init zips it (the image's /app/engagement_mart is the repo's folder)
    base_name, _, base_dir = ARCHIVE.search(compose_init()).groups()
    archive = shutil.make_archive(str(tmp_path / Path(base_name).name), "zip", SUPERSET, base_dir)
    with zipfile.ZipFile(archive) as bundle:
        names = [n for n in bundle.namelist() if n.endswith(".yaml")]
    assert sorted(names) == sorted(f"{base_dir}/{n}" for n in ["metadata.yaml", *files])


def test_the_superset_image_pins_superset_and_the_locked_duckdb_driver() -> None:
    dockerfile = (SUPERSET / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/superset:\d+\.\d+\.\d+$", dockerfile, re.MULTILINE)
    for package in ("duckdb", "duckdb-engine"):  # the versions uv.lock resolves
        assert f"{package}=={importlib.metadata.version(package)}" in dockerfile, package
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                if not source.startswith("--"):
                    assert (SUPERSET / source).exists(), source


def test_env_example_holds_every_variable_compose_requires() -> None:
    required = set(re.findall(r"\$\{([A-Z_0-9]+):\?", COMPOSE.read_text()))
    example = dotenv(REPO / ".env.example")
    assert required <= set(example), required - set(example)
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (REPO / ignore).read_text().split(), f".env not in {ignore}"


def test_compose_sets_only_known_settings(stack: NativeStack) -> None:
    env = stack.service("airflow-scheduler").environment
    ours = {k for k in env if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    known = {field.alias for field in Settings.model_fields.values()}
    assert ours <= known, ours - known
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/engagement/dags"


def test_dockerfile_copies_what_exists() -> None:
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source


def _sandbox_port(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", "source scripts/sandbox_env.sh && echo $SANDBOX_PORT"],
        env=dict(os.environ, ENGAGEMENT_DATA_DIR=str(data_dir), **env),
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_demo_never_runs_against_whatever_answers_on_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # already taken by someone else: busy all the same
            taken.bind(("127.0.0.1", 8765))
            taken.listen()
        chosen = _sandbox_port(tmp_path)
        assert chosen.returncode == 0, chosen.stderr
        said, port = chosen.stdout.splitlines()
        assert said == f"== port 8765 is busy: the sandbox listens on {port} instead"
        assert int(port) != 8765
        refused = _sandbox_port(tmp_path, SANDBOX_PORT="8765")
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == (
            "engagement: SANDBOX_PORT=8765 is busy: free it or choose another\n"
        )


def test_the_dbt_exposure_of_the_superset_dashboard_is_this_dashboard() -> None:
    """dbt's lineage names the dashboard the bundle provisions, and the marts it reads."""
    exposures = yaml.safe_load(
        (REPO / "dbt_project" / "models" / "marts" / "_marts__exposures.yml").read_text()
    )["exposures"]
    (exposure,) = [e for e in exposures if "/superset/dashboard/" in e.get("url", "")]
    files = superset_bundle()
    (dashboard,) = [v for k, v in files.items() if k.startswith("dashboards/")]
    assert exposure["url"].endswith(f"/superset/dashboard/{dashboard['slug']}/")
    read = set()
    for name, dataset in files.items():
        if name.startswith("datasets/") and dataset["sql"]:  # a dataset of SQL: its tables
            read |= set(re.findall(r"\bmarts\.(\w+)", dataset["sql"]))
        elif name.startswith("datasets/"):
            read.add(dataset["table_name"])
    assert {re.fullmatch(r"ref\('(\w+)'\)", ref)[1] for ref in exposure["depends_on"]} == read
