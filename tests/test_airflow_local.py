"""`make airflow` (scripts/airflow_local.sh: Airflow standalone on the sandbox) started as a
user does, in a terminal's process group of its own, and stopped as Ctrl-C does: SIGINT to
that group. It must be gone within 10 s with every process it started, and its
LocalExecutor must fork the workers the machine's parallelism allows, not Airflow's 32."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.airflow_stack import REPO, free_port
from tests.conftest import interruptible

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]

BOOT = 180  # seconds Airflow standalone may take to answer on a busy 2-core machine
STOP = 10  # seconds Ctrl-C may take


def tree(root: psutil.Process) -> list[psutil.Process]:
    """The process and all its descendants still running (a zombie has ended)."""
    found = [root, *root.children(recursive=True)]
    return [p for p in found if _pgid(p) is not None]


def executor_workers(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The LocalExecutor's forked workers (titled `airflow worker -- LocalExecutor: ...`), not
    the task processes they fork (which inherit the title)."""

    def titled(process: psutil.Process) -> bool:
        return "LocalExecutor" in " ".join(process.cmdline())

    return [p for p in processes if titled(p) and not titled(p.parent())]


def test_ctrl_c_stops_make_airflow_within_10_s_and_leaves_no_process(tmp_path: Path) -> None:
    api_port = free_port()
    env = dict(
        {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ENGAGEMENT_"))},
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        ENGAGEMENT_DATA_DIR=str(tmp_path / "data"),
        AIRFLOW_PORT=str(api_port),
        SANDBOX_PORT=str(free_port()),
    )
    output = (tmp_path / "make-airflow.log").open("w")
    script = subprocess.Popen(
        [str(REPO / "scripts" / "airflow_local.sh")], env=env, cwd=REPO, stdout=output,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + BOOT
        while True:
            assert script.poll() is None, (tmp_path / "make-airflow.log").read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{api_port}/api/v2/version", timeout=5).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up, or still starting
                pass
            assert time.monotonic() < deadline, f"no api-server on {api_port} after {BOOT} s"
            time.sleep(1)
        started = tree(psutil.Process(script.pid))
        pss = sum(p.memory_full_info().pss for p in started if p.is_running())  # shared: split
        workers = executor_workers(started)
        print(f"make airflow: {len(started)} processes, {pss / 2**20:.0f} MiB (PSS),"
              f" {len(workers)} executor workers")  # fmt: skip
        # the machine's parallelism (2 per core), not Airflow's default 32
        assert len(workers) == 2 * os.cpu_count()

        sent = time.monotonic()
        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        code = script.wait(timeout=STOP + 5)
        took = time.monotonic() - sent
        left = [p for p in started if _pgid(p) is not None]
        print(f"stopped in {took:.1f} s, exit {code}, {len(left)} processes left")
        assert code == 130 and took < STOP
        assert not left, [(p.pid, p.cmdline()) for p in left]
        group = [p.pid for p in psutil.process_iter() if _pgid(p) == script.pid]
        assert not group, f"processes left in the script's group: {group}"
    finally:
        for process in started:  # whatever a failure left behind
            if process.is_running():
                process.kill()
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
        output.close()


def _pgid(process: psutil.Process) -> int | None:
    """The process group of a running process (None for one that has ended)."""
    try:
        return None if process.status() == psutil.STATUS_ZOMBIE else os.getpgid(process.pid)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return None
