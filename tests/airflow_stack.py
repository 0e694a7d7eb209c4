"""docker-compose.yml's services, run natively: each service's own command, environment and
healthcheck from the compose file, with what only a container has (host names, volumes,
ports) mapped to this machine's (`NativeStack.addresses`). No Docker engine runs where the
tests run: this is how they boot the deployment, so the compose file is what is tested."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
BIN = Path(sys.executable).parent
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
PG, REDIS = ("127.0.0.1", 5432), ("127.0.0.1", 6379)
PR_SET_PDEATHSIG = 1  # prctl(2)
MACHINE_SERVICES = ("postgres", "redis")  # this machine's own (PG, REDIS), not started here
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` and `$$`."""

    def value(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        found = variables.get(name)
        if operator in (":?", "?") and not found:
            raise ValueError(f"docker-compose.yml needs {name}: {argument}")
        if operator == ":-" and not found or operator == "-" and found is None:
            return argument
        return found or ""

    return _VARIABLE.sub(value, text)


def compose(variables: Mapping[str, str]) -> dict:
    """docker-compose.yml with `variables` (what .env holds) interpolated as compose does:
    in the values of the parsed file (a JSON value stays one string)."""

    def walk(node: object) -> object:
        if isinstance(node, str):
            return interpolate(node, variables)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    return walk(yaml.safe_load(COMPOSE.read_text()))


def dotenv(path: Path) -> dict[str, str]:
    """The assignments of a .env file (compose's syntax, without quoting rules we don't use)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def example_env(start: date) -> dict[str, str]:
    """.env.example with its secrets filled in, as a user does, and the week to land."""
    variables = dotenv(REPO / ".env.example")
    fill = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "ENGAGEMENT_IP_HMAC_KEY": secrets.token_urlsafe(24),
        "SUPERSET_SECRET_KEY": secrets.token_urlsafe(42),
        "SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "ENGAGEMENT_START_DATE": start.isoformat(),
        "ENGAGEMENT_LANDING_DELAY_MINUTES": "0",
    }
    assert {k for k, v in variables.items() if not v} >= set(fill) - {
        "ENGAGEMENT_START_DATE",
        "ENGAGEMENT_LANDING_DELAY_MINUTES",
    }, "the secrets .env.example leaves to fill in"
    return variables | fill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return False
    return True


def _stop_with_tests() -> None:
    """A service's `preexec_fn`: SIGTERM (its warm shutdown) when the pytest worker that
    started it dies without its teardown (killed, or a terminal closed), rather than an
    orphaned deployment polling on the machine."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


@dataclass
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]
    healthcheck: list[str] | None  # argv, or ["sh", "-c", text] for CMD-SHELL
    replicas: int = 1

    @classmethod
    def of(cls, name: str, spec: dict) -> Service:
        command = spec["command"]
        command = shlex.split(command) if isinstance(command, str) else list(command)
        test = (spec.get("healthcheck") or {}).get("test")
        if test and test[0] == "CMD-SHELL":
            test = ["sh", "-c", test[1]]
        elif test:
            test = list(test[1:])
        environment = {k: "" if v is None else str(v) for k, v in spec["environment"].items()}
        replicas = (spec.get("deploy") or {}).get("replicas", 1)
        return cls(name, command, environment, test, replicas)


@dataclass
class NativeStack:
    """The compose deployment on this machine: its PostgreSQL (a fresh database), its Redis
    (a queue of its own), free ports, and directories under `root`."""

    root: Path
    variables: dict[str, str]  # the .env
    database: str = field(default_factory=lambda: f"engagement_{uuid.uuid4().hex[:12]}")
    queue: str = field(default_factory=lambda: f"engagement-{uuid.uuid4().hex[:12]}")
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    outputs: list = field(default_factory=list)  # the processes' log files, closed by stop
    completed: set[str] = field(default_factory=set)  # the one-off services run to their end

    def __post_init__(self) -> None:
        self.spec = compose(self.variables)
        for name in ("api", "scheduler_health", "sandbox", "triggerer_logs"):
            self.ports[name] = free_port()
        self.data, self.logs = self.root / "data", self.root / "logs"
        self.home, self.output = self.root / "airflow", self.root / "output"
        for directory in (self.data, self.logs, self.home, self.output):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def addresses(self) -> dict[str, str]:
        """What a container reaches by name or mount, as this machine reaches it: the only
        settings that differ from the compose file's."""
        database = f"postgres@{PG[0]}:{PG[1]}/{self.database}"
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__API__PORT": str(self.ports["api"]),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
                self.ports["scheduler_health"]
            ),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.root / "airflow-logs"),
            "ENGAGEMENT_DATA_DIR": str(self.data),
            "SUPPORT_SITE_LOGS": str(self.logs / "access.log*"),
            "X_API_BASE_URL": f"http://127.0.0.1:{self.ports['sandbox']}",
        }

    def native(self) -> dict[str, str]:
        """Settings a container has from its image or that Docker gives each container (its
        home, its own queue on the shared Redis, the log servers' ports)."""
        return {
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["triggerer_logs"]),
            "HOSTNAME": socket.gethostname(),
        }

    def service(self, name: str) -> Service:
        return Service.of(name, self.spec["services"][name])

    def environment(self, service: Service) -> dict[str, str]:
        ours = ("AIRFLOW", "X_", "ENGAGEMENT_", "SUPPORT_")  # only the compose file's settings
        keep = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        addresses = {k: v for k, v in self.addresses().items() if k in service.environment}
        return keep | service.environment | addresses | self.native()

    def localise(self, argv: list[str]) -> list[str]:
        """Container ports, binds and mounts in a command line, as this machine has them."""
        text = shlex.join(argv)
        for port, name in ((8080, "api"), (8974, "scheduler_health"), (8765, "sandbox")):
            text = text.replace(f"localhost:{port}", f"127.0.0.1:{self.ports[name]}")
            text = text.replace(f"--port {port}", f"--port {self.ports[name]}")
        text = text.replace("--host 0.0.0.0", "--host 127.0.0.1")
        text = text.replace("--out /logs", f"--out {shlex.quote(str(self.logs))}")
        return shlex.split(text)

    # --- running ----------------------------------------------------------------------------

    def create_database(self) -> None:
        self._psql(f'create database "{self.database}"')

    def drop_database(self) -> None:
        self._psql(f'drop database if exists "{self.database}" with (force)')

    def _psql(self, sql: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host=PG[0], port=PG[1], user="postgres", dbname="postgres")
        connection.autocommit = True  # (create and drop database refuse a transaction)
        try:
            connection.cursor().execute(sql)
        finally:
            connection.close()

    def run(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A one-off service (the init job, the sample logs), to its end."""
        service = self.service(name)
        done = subprocess.run(
            self.localise(service.command),
            env=self.environment(service),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (self.output / f"{name}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        self.completed.add(name)
        return done

    def up(self, name: str) -> None:
        """Start a service as `docker compose up` does: each of its `depends_on` first, to its
        condition (started, healthy, or run to its end), then the service itself. The
        workers wait for a healthy api-server: a worker that takes a task before the
        api-server can answer it may lose the task (see the api-server's healthcheck)."""
        if any(key == name or key.startswith(f"{name}-") for key in self.processes):
            return
        for dependency, spec in (self.spec["services"][name].get("depends_on") or {}).items():
            condition = spec.get("condition", "service_started")
            if dependency in MACHINE_SERVICES:
                continue
            if condition == "service_completed_successfully":
                if dependency not in self.completed:
                    self.run(dependency)
            else:
                self.up(dependency)
                if condition == "service_healthy":
                    self.healthy(dependency)
        self.start(name)

    def start(self, name: str) -> None:
        service = self.service(name)
        for replica in range(1, service.replicas + 1):
            env = self.environment(service)
            command = self.localise(service.command)
            key = name if service.replicas == 1 else f"{name}-{replica}"
            if service.replicas > 1:  # each container has a host name and ports of its own
                env["HOSTNAME"] = self._hostname(key, service)
                env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
                command += ["--celery-hostname", f"celery@{env['HOSTNAME']}"]
            log = open(self.output / f"{key}.log", "w")  # noqa: SIM115 (closed by stop)
            self.outputs.append(log)
            self.processes[key] = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_stop_with_tests,
            )  # fmt: skip

    def healthy(self, name: str, timeout: float = 120) -> None:
        """Wait until the service's own healthcheck passes (in every replica)."""
        service = self.service(name)
        keys = [k for k in self.processes if k == name or k.startswith(f"{name}-")]
        for key in keys:
            env = self.environment(service) | {"HOSTNAME": self._hostname(key, service)}
            deadline = time.monotonic() + timeout
            while True:
                if self.processes[key].poll() is not None:
                    raise RuntimeError(f"{key} exited:\n{self.tail(key)}")
                check = subprocess.run(
                    self.localise(service.healthcheck), env=env, cwd=REPO,
                    capture_output=True, timeout=60,
                )  # fmt: skip
                if check.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{key} not healthy after {timeout} s:\n{self.tail(key)}")
                time.sleep(1)

    def _hostname(self, key: str, service: Service) -> str:
        return f"{key}.{socket.gethostname()}" if service.replicas > 1 else socket.gethostname()

    def tail(self, key: str, lines: int = 40) -> str:
        path = self.output / f"{key}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def alive(self) -> list[int]:
        """Processes still in the groups of the processes started."""
        groups = {process.pid for process in self.processes.values()}
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) in groups and fields[0] != "Z":  # pgrp; not a zombie
                        found.append(int(proc.name))
        return found

    def stop(self) -> None:
        """Stop every process started, with its whole process group: SIGTERM (Celery's warm
        shutdown), then SIGKILL for what is left after 30 s."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # its children too (task processes)
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for output in self.outputs:
            output.close()
