"""docker-compose.yml cannot run here (no Docker engine): check that what it describes
exists and agrees with what tests/test_scheduler.py runs natively from it."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
from datetime import date
from pathlib import Path

import pytest

from engagement.cli import parser
from engagement.settings import Settings
from tests.airflow_stack import AIRFLOW_SERVICES, BIN, COMPOSE, NativeStack, dotenv, example_env
from tests.conftest import REPO

ONE_OFF = {"airflow-init", "sample-logs"}  # jobs that run to their end
MACHINE = {"postgres", "redis"}  # what the machine provides natively


@pytest.fixture
def stack(tmp_path: Path) -> NativeStack:
    return NativeStack(tmp_path, example_env(date(2026, 11, 24)))


def test_compose_has_the_official_shape(stack: NativeStack) -> None:
    services = stack.spec["services"]
    assert set(services) == set(AIRFLOW_SERVICES) | ONE_OFF | MACHINE | {"x-sandbox"}
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
    assert {p for s in services.values() for p in s.get("profiles", [])} == {"sandbox"}


def test_the_native_stack_runs_what_compose_describes(stack: NativeStack) -> None:
    """The native test starts every service but the machine's own PostgreSQL and Redis,
    each with its compose command; only addresses differ from the compose settings."""
    common = stack.service("airflow-scheduler").environment
    assert set(stack.addresses()) <= set(common), set(stack.addresses()) - set(common)
    for name in set(stack.spec["services"]) - MACHINE:
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
