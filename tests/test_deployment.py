"""docker-compose.yml cannot run here (no Docker engine): check that what it describes exists."""

from __future__ import annotations

import re
import shlex

import yaml

from engagement.cli import parser
from engagement.settings import Settings
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def product_settings() -> set[str]:
    """Every environment variable the package reads: the settings model's (the package reads
    the environment nowhere else; test_settings checks the README's table against it)."""
    source = "\n".join(p.read_text() for p in (REPO / "extract").glob("*.py"))
    assert not re.search(r"environ\.get|environ\[|getenv", source)
    return {field.alias for field in Settings.model_fields.values()}


def test_compose_services_run_our_commands() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "airflow-init", "airflow-scheduler", "airflow-dag-processor"} <= set(
        services
    )
    sandbox = shlex.split(services["x-sandbox"]["command"])
    assert sandbox[0] == "engagement"
    parser().parse_args(sandbox[1:])
    init = services["airflow-init"]["command"]
    assert "airflow db migrate" in init
    pool = re.search(r"pools set (\S+) 1", init)[1]
    assert f'WRITER_POOL = "{pool}"' in (REPO / "dags" / "engagement_dags.py").read_text()


def test_compose_sets_only_known_settings() -> None:
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    ours = {k for k in env if not k.startswith("AIRFLOW__")}
    assert ours <= product_settings(), ours - product_settings()
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/engagement/dags"


def test_dockerfile_copies_what_exists() -> None:
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
