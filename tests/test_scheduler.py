"""The deployment under Airflow's real scheduler: docker-compose.yml's services started
natively (tests/airflow_stack.py) on PostgreSQL (a fresh database) and Redis, with the
CeleryExecutor's two workers, the api-server, dag-processor and triggerer, on the X sandbox
and the sample logs of the last two days. The scheduler catches those days up by itself;
the published mart must equal what the CLI builds from the same data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import requests

from engagement.landing import Interval, read_manifest
from tests.airflow_stack import (
    AIRFLOW_SERVICES,
    PG,
    REDIS,
    REPO,
    NativeStack,
    example_env,
    reachable,
)
from tests.conftest import authorise, mart_hashes, user_context

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]

# days to catch up: intervals one after another, on both workers; the backfill runs them all
# at once. Each day more costs ~45 s of CPU (its tasks, a build, the CLI's run beside them,
# its backfill run)
DAYS = 2
WAIT = 900  # seconds the catch-up may take
DM_ACCOUNT = "acmesupport"  # authorised by user context; acmecloud reads with the app's token


class Api:
    """Airflow's REST API, logged in as the admin the init job created."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        answer = requests.post(
            f"{base}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def get(self, path: str, **params: object) -> dict:
        answer = requests.get(f"{self.base}{path}", headers=self.headers, params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict) -> dict:
        answer = requests.post(f"{self.base}{path}", headers=self.headers, json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str) -> list[dict]:
        found = self.get(f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", limit=500)
        return found["task_instances"]


class Webhook(ThreadingHTTPServer):
    """Where failures are reported (an `http` connection): keeps every JSON body POSTed."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@dataclass
class Deployment:
    stack: NativeStack
    api: Api
    webhook: Webhook


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not (reachable(PG) and reachable(REDIS)):
        pytest.skip(
            f"PostgreSQL ({PG[0]}:{PG[1]}) or Redis ({REDIS[0]}:{REDIS[1]}) is not reachable:"
            " the deployment test needs both (CI has them)"
        )
    today = datetime.now(UTC).date()
    webhook = Webhook()
    alerts = {"conn_type": "http", "schema": "http", "host": "127.0.0.1"}
    oauth = {"conn_type": "generic", "login": "sandbox-client", "password": "sandbox-secret"}
    variables = example_env(today - timedelta(DAYS)) | {
        "ENGAGEMENT_ALERT_CONN_ID": "engagement_alerts",
        "AIRFLOW_CONN_ENGAGEMENT_ALERTS": json.dumps(alerts | {"port": webhook.server_port}),
        "AIRFLOW_CONN_X_OAUTH": json.dumps(oauth),
        "SUPPORT_SITE_PART_MB": "0.5",  # a part per file of the sample (~0.6 MB a day)
    }
    stack = NativeStack(tmp_path_factory.mktemp("deployment"), variables)
    stack.create_database()
    try:
        stack.run("sample-logs")
        stack.start("x-sandbox")
        stack.healthy("x-sandbox")
        # @acmesupport authorises user context (its DMs) before the first run; @acmecloud not
        authorise(user_context(stack.environment(stack.service("airflow-scheduler"))), DM_ACCOUNT)
        for name in AIRFLOW_SERVICES:  # in compose's order: the workers after the api-server
            stack.up(name)
        for name in AIRFLOW_SERVICES:
            stack.healthy(name)
        admin = stack.variables["AIRFLOW_ADMIN_USER"], stack.variables["AIRFLOW_ADMIN_PASSWORD"]
        yield Deployment(stack, Api(stack.api, *admin), webhook)
    finally:
        stack.stop()
        stack.drop_database()
        webhook.shutdown()
    assert not stack.alive(), "a process of the deployment outlived its stop"


def caught_up(api: Api, start: date) -> list[dict]:
    """Wait until the scheduler has run the days' ingest and then the mart; fail at the
    first failed run, with its failed tasks."""
    expected = [(start + timedelta(d)).isoformat() for d in range(DAYS)]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ingest, mart = api.runs("engagement_ingest"), api.runs("engagement_mart")
        failed = [r for r in ingest + mart if r["state"] == "failed"]
        if failed:
            tasks = [
                f"{t['dag_id']}.{t['task_id']} {t['dag_run_id']}: {t['state']}"
                for dag in ("engagement_ingest", "engagement_mart")
                for t in api.task_instances(dag)
                if t["state"] not in ("success", "skipped")
            ]
            pytest.fail(f"runs failed: {failed}\n" + "\n".join(tasks))
        landed = sorted(r["data_interval_start"][:10] for r in ingest if r["state"] == "success")
        if landed == expected and all(r["state"] == "success" for r in mart):
            loads = [t for t in api.task_instances("engagement_ingest") if ".load" in t["task_id"]]
            last_load = max(t["end_date"] for t in loads)
            if any(r["start_date"] > last_load for r in mart):  # a build after the last load
                return ingest + mart
        time.sleep(3)
    pytest.fail(f"the scheduler did not catch up {DAYS} days in {WAIT} s")


def cli_runs(env: dict[str, str], start: date) -> None:
    """`engagement run` of each day, in order."""
    for day in range(DAYS):
        first = start + timedelta(day)
        done = subprocess.run(
            [sys.executable, "-m", "engagement.cli", "run", "--start", str(first),
             "--end", str(first + timedelta(1))],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]


def test_the_scheduler_catches_up_the_days_and_publishes_what_the_cli_does(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack, api = deployment.stack, deployment.api
    start = date.fromisoformat(stack.variables["ENGAGEMENT_START_DATE"])
    dags = {d["dag_id"]: d for d in api.get("/api/v2/dags")["dags"]}
    assert {k: d["is_paused"] for k, d in dags.items()} == {
        "engagement_ingest": False,
        "engagement_mart": False,
    }
    # the CLI path, from the same sandbox and logs, into another data directory, meanwhile
    cli = stack.environment(stack.service("airflow-scheduler"))
    cli["ENGAGEMENT_DATA_DIR"] = str(tmp_path / "cli")
    cli["X_BEARER_TOKEN"] = "sandbox-token"  # the CLI reads no Airflow connection
    # ... nor the OAuth client's; it shares the deployment's tokens, as a third worker would
    cli = user_context(cli)
    cli["ENGAGEMENT_X_TOKENS_DIR"] = str(stack.data / "state" / "x_tokens")
    with ThreadPoolExecutor(1) as background:
        by_cli = background.submit(cli_runs, cli, start)
        runs = caught_up(api, start)
        by_cli.result()
    assert {r["state"] for r in runs} == {"success"}
    ingest = [r for r in runs if r["dag_id"] == "engagement_ingest"]
    assert len(ingest) == DAYS and {r["run_type"] for r in ingest} == {"scheduled"}
    tasks = api.task_instances("engagement_ingest")
    parts = [t for t in tasks if t["task_id"] == "support_site.extract_part"]
    assert len(tasks) - len(parts) == DAYS * 8 and {t["state"] for t in tasks} == {"success"}
    # each at its first try: none lost starting (as when a worker's first task outwaited a
    # cold api-server, see its healthcheck) and saved only by a retry
    assert {t["try_number"] for t in tasks} == {1}, [t for t in tasks if t["try_number"] != 1]
    workers = {w: stack.tail(w, 10**6) for w in ("airflow-worker-1", "airflow-worker-2")}
    for log in workers.values():  # both took tasks
        assert re.search(r"Task execute_workload\[.*\] succeeded", log)
    # the support site's extraction fanned out: a mapped task instance per part (per file
    # here: the first day reads both sample files, the second only its own, the other known)
    mapped = {run["dag_run_id"]: [] for run in ingest}
    for part in parts:
        mapped[part["dag_run_id"]].append(part["map_index"])
    first = min(ingest, key=lambda r: r["data_interval_start"])["dag_run_id"]
    assert {run: sorted(indexes) for run, indexes in mapped.items()} == {
        run: [0, 1] if run == first else [0] for run in mapped
    }
    # ... each part run once, by one of the workers: a worker logs each task instance it
    # runs, by its id (which worker takes which part is Celery's choice: both, most often)
    ran_on = {p["id"]: [w for w, log in workers.items() if p["id"] in log] for p in parts}
    assert all(len(on) == 1 for on in ran_on.values()), ran_on
    mart = Path("warehouse") / "engagement.duckdb"
    assert mart_hashes(stack.data / mart) == mart_hashes(tmp_path / "cli" / mart)
    # DM care for the authorised account every day; "not authorised" (null), never 0, for
    # the other
    with duckdb.connect(str(stack.data / mart), read_only=True) as con:
        dm_days = con.execute(
            """
            select account_username, is_dm_authorised, dm_requests is not null
            from marts.agg_daily_account_dm_care
            """
        ).fetchall()
        requests_read = con.execute("select count(*) from marts.fct_x_dm_requests").fetchone()
    assert sorted(set(dm_days)) == [("acmecloud", False, False), (DM_ACCOUNT, True, True)]
    assert len(dm_days) == 2 * DAYS and requests_read[0] > 0
    headline = subprocess.run(
        [sys.executable, "-m", "engagement.cli", "headline"],
        env=stack.environment(stack.service("airflow-scheduler")),
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert f"DMs (@{DM_ACCOUNT}):" in headline and "not authorised: @acmecloud" in headline
    # after each publish, the mentions past their target and still unanswered went to the
    # webhook, each once, oldest first; all those the published mart has now were sent
    sent = [m for m in deployment.webhook.received if m.get("event") == "unanswered"]
    assert sent, "no unanswered mention was notified"
    notified: list[str] = []
    for notification in sent:
        count = int(re.match(r"engagement: (\d+) mentions? needing", notification["text"])[1])
        items = re.findall(
            r"^- (\S+ \S+) UTC, .* ago, .*: https://x\.com/[\w/]+/status/(\d+)$",
            notification["text"],
            re.MULTILINE,
        )
        assert len(items) == count and [at for at, _ in items] == sorted(at for at, _ in items)
        notified += [mention for _, mention in items]
    assert len(notified) == len(set(notified)), "a mention was notified twice"
    listed = subprocess.run(
        [sys.executable, "-m", "engagement.cli", "unanswered"],
        env=stack.environment(stack.service("airflow-scheduler")),
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    now_overdue = re.findall(r"https://x\.com/[\w/]+/status/(\d+)", listed)
    assert now_overdue and set(now_overdue) <= set(notified)


def clear(api: Api, run_id: str, task_id: str) -> None:
    """Clear a task and its downstream, as the UI's "Clear" does. A clear that lands while
    the scheduler is finishing the run can be overwritten by it (the run failed again, the
    task not taken): cleared again then. It holds once the scheduler starts a new try."""
    run_path = f"/api/v2/dags/engagement_ingest/dagRuns/{run_id}"
    tries = api.task("engagement_ingest", run_id, task_id)["try_number"]
    for _ in range(5):
        api.post(
            "/api/v2/dags/engagement_ingest/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id],
             "include_downstream": True, "only_failed": False, "reset_dag_runs": True},
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while api.task("engagement_ingest", run_id, task_id)["try_number"] == tries:
            if api.get(run_path)["state"] not in ("queued", "running"):
                break  # overwritten
            assert time.monotonic() < deadline, f"the scheduler did not take {task_id} again"
            time.sleep(0.5)
        else:
            return
    pytest.fail(f"clearing {task_id} did not restart {run_id}")


def idle(api: Api) -> None:
    """Wait until the days' runs have all ended, whatever their outcome, and the mart has no
    run to come: where each test after the catch-up starts, even if the catch-up failed."""
    deadline = time.monotonic() + WAIT
    while True:
        ingest, mart = api.runs("engagement_ingest"), api.runs("engagement_mart")
        waiting = api.get("/api/v2/dags/engagement_mart/assets/queuedEvents")["total_entries"]
        ended = all(r["state"] in ("success", "failed") for r in ingest + mart)
        if len(ingest) >= DAYS and ended and not waiting:
            return
        assert time.monotonic() < deadline, f"the deployment did not settle: {ingest + mart}"
        time.sleep(2)


def run_fails(api: Api, run_id: str) -> None:
    """Wait until the scheduler has settled a failed run (its downstream tasks marked
    upstream_failed): clearing before that races with it."""
    deadline = time.monotonic() + 300
    while api.get(f"/api/v2/dags/engagement_ingest/dagRuns/{run_id}")["state"] != "failed":
        assert time.monotonic() < deadline, f"{run_id} did not fail"
        time.sleep(2)


def task_ends(api: Api, run_id: str, task_id: str, states: set[str]) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        task = api.task("engagement_ingest", run_id, task_id)
        if task["state"] in states:
            return task
        time.sleep(2)
    pytest.fail(f"{task_id} of {run_id} did not end in {states}: {task['state']}")


def mart_settled(api: Api, since: set[str]) -> list[dict]:
    """Wait until the mart has no run queued or running and no asset event waiting for one
    (a load during a build is taken by one more build after it); its runs not in `since`
    (the earlier ones), all succeeded."""
    deadline = time.monotonic() + 600
    while True:
        runs = [r for r in api.runs("engagement_mart") if r["dag_run_id"] not in since]
        waiting = api.get("/api/v2/dags/engagement_mart/assets/queuedEvents")["total_entries"]
        if not waiting and all(r["state"] in ("success", "failed") for r in runs):
            assert {r["state"] for r in runs} <= {"success"}, runs
            return runs
        assert time.monotonic() < deadline, f"the mart did not settle: {runs}"
        time.sleep(2)


def mart_runs(api: Api) -> set[str]:
    return {r["dag_run_id"] for r in api.runs("engagement_mart")}


def asset_events(api: Api, name: str) -> list[dict]:
    events = api.get("/api/v2/assets/events", limit=1000)["asset_events"]
    return [e for e in events if e["name"] == name]


def day_sessions(published: Path, day: str) -> int | None:
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        found = con.execute(
            "select support_sessions from marts.agg_daily_engagement where date_day = ?", [day]
        ).fetchone()
    return found and found[0]


def late_lines(log: str, count: int) -> str:
    """Requests of the log's day from visitors it has not seen (other client addresses):
    what a log shipped late adds to the day."""
    lines = log.splitlines(keepends=True)[:count]
    return "".join(f"100.64.{n // 250}.{n % 250 + 1} {line.split(' ', 1)[1]}"
                   for n, line in enumerate(lines))  # fmt: skip


def test_a_refused_token_fails_at_once_is_reported_and_clearing_recovers(
    deployment: Deployment,
) -> None:
    """The X API answers 403 to a rerun of the last interval: the extraction fails at its
    first try (the DAG's 2 retries cannot mend a refusal), the failure reaches the webhook
    connection, and once the API is fixed, clearing the failed task lands the interval."""
    stack, api = deployment.stack, deployment.api
    idle(api)

    def failures() -> list[dict]:  # not the unanswered mentions' notifications
        return [m for m in deployment.webhook.received if "event" not in m]

    alerts = len(failures())  # an earlier test's failures are not this one's
    run = max(api.runs("engagement_ingest"), key=lambda r: r["data_interval_start"])["dag_run_id"]
    sandbox = f"http://127.0.0.1:{stack.ports['sandbox']}/_sandbox/faults"
    requests.post(sandbox, json={"kind": "403", "times": 1000, "path": "/2/"}, timeout=10)

    tries = api.task("engagement_ingest", run, "x.extract")["try_number"]
    clear(api, run, "x.extract")
    failed = task_ends(api, run, "x.extract", {"failed", "success", "up_for_retry"})
    assert (failed["state"], failed["try_number"]) == ("failed", tries + 1)  # no retry
    run_fails(api, run)
    deadline = time.monotonic() + 60
    while len(failures()) == alerts and time.monotonic() < deadline:
        time.sleep(1)
    [alert] = failures()[alerts:]
    assert alert["text"].startswith("engagement: engagement_ingest.x.extract failed for")
    assert "403" in alert["text"] and f"run {run}" in alert["text"]

    requests.delete(sandbox, timeout=10)
    clear(api, run, "x.extract")
    for task in ("x.extract", "x.validate", "x.load"):
        assert task_ends(api, run, task, {"failed", "success"})["state"] == "success"


def test_clearing_a_refused_validation_lands_the_interval_again_and_publishes_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The last day's log has not arrived (an outage of the log shipping): the gate refuses
    the near-empty batch and quarantines it, and the validation fails at once; the published
    mart is untouched. Once the log is there (with late requests the first load of the day
    never saw), clearing only the failed `validate` task lands the interval again from the
    source, passes and loads it, and that load alone, with no new X event, builds and
    publishes the mart: the day's sessions now count the late requests, as a full build of
    the same loads by the CLI does."""
    stack, api = deployment.stack, deployment.api
    idle(api)
    published = stack.data / "warehouse" / "engagement.duckdb"
    run = max(api.runs("engagement_ingest"), key=lambda r: r["data_interval_start"])
    run_id, day, batch = (
        run["dag_run_id"],
        run["data_interval_start"][:10],
        Interval(
            datetime.fromisoformat(run["data_interval_start"]),
            datetime.fromisoformat(run["data_interval_end"]),
        ).batch_id,
    )
    builds = mart_runs(api)
    before, sessions = mart_hashes(published), day_sessions(published, day)
    x_events = len(asset_events(api, "engagement_raw_x"))
    log = stack.logs / "access.log"  # the newest file holds the last day
    held = log.rename(stack.logs.parent / "held-back.log")

    log.write_text("")
    clear(api, run_id, "support_site.plan_parts")
    refused = task_ends(api, run_id, "support_site.validate", {"failed", "success"})
    assert refused["state"] == "failed"
    run_fails(api, run_id)
    assert (stack.data / "quarantine" / "support_site" / batch / "validation.json").is_file()
    assert not mart_settled(api, builds)  # nothing loaded: no build
    assert mart_hashes(published) == before

    held.write_text(held.read_text() + late_lines(held.read_text(), 300))
    held.rename(log)
    clear(api, run_id, "support_site.validate")
    for task in ("support_site.validate", "support_site.load"):
        assert task_ends(api, run_id, task, {"failed", "success"})["state"] == "success"
    assert not (stack.data / "quarantine" / "support_site" / batch).exists()
    assert read_manifest(stack.data / "raw" / "support_site" / batch).records > 1000

    # the reload alone built and published the mart: a run triggered by that load's event
    deadline = time.monotonic() + 300
    while mart_runs(api) == builds:
        assert time.monotonic() < deadline, "the reload of the support site built nothing"
        time.sleep(2)
    new = mart_settled(api, builds)
    assert new and {r["run_type"] for r in new} == {"asset_triggered"}
    triggers = [
        (e["name"], e["source_run_id"], e["source_task_id"])
        for r in new
        for e in api.get(f"/api/v2/dags/engagement_mart/dagRuns/{r['dag_run_id']}"
                         "/upstreamAssetEvents")["asset_events"]
    ]  # fmt: skip
    assert triggers == [("engagement_raw_support_site", run_id, "support_site.load")]
    assert len(asset_events(api, "engagement_raw_x")) == x_events
    after = mart_hashes(published)
    assert after != before and day_sessions(published, day) > sessions
    # what the CLI builds from scratch from the same loads
    cli = tmp_path / "cli"
    shutil.copytree(stack.data, cli, ignore=shutil.ignore_patterns("*.lock"))
    env = stack.environment(stack.service("airflow-scheduler")) | {"ENGAGEMENT_DATA_DIR": str(cli)}
    done = subprocess.run(
        [sys.executable, "-m", "engagement.cli", "build", "--full-refresh"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert mart_hashes(cli / "warehouse" / "engagement.duckdb") == after


def test_a_backfill_of_parallel_runs_writes_one_at_a_time_and_changes_nothing(
    deployment: Deployment,
) -> None:
    """The days' intervals backfilled at once (`max_active_runs` DAYS): the loads and builds,
    the warehouse's writers, never overlap (the one-slot pool), and the mart is unchanged."""
    stack, api = deployment.stack, deployment.api
    idle(api)
    mart = stack.data / "warehouse" / "engagement.duckdb"
    before = mart_hashes(mart)
    start = date.fromisoformat(stack.variables["ENGAGEMENT_START_DATE"])
    builds = mart_runs(api)
    backfill = api.post(
        "/api/v2/backfills",
        {"dag_id": "engagement_ingest", "from_date": f"{start}T00:00:00Z",
         "to_date": f"{start + timedelta(DAYS - 1)}T00:00:00Z", "max_active_runs": DAYS,
         "reprocess_behavior": "completed", "dag_run_conf": {}},
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not api.get(f"/api/v2/backfills/{backfill['id']}")["completed_at"]:
        assert time.monotonic() < deadline, "the backfill did not complete"
        time.sleep(3)
    runs = [r for r in api.runs("engagement_ingest") if r["run_type"] == "backfill"]
    assert len(runs) == DAYS and {r["state"] for r in runs} == {"success"}
    while mart_runs(api) == builds:  # each load builds: at least one
        assert time.monotonic() < deadline, "no build after the backfill"
        time.sleep(3)
    mart_settled(api, builds)
    writers = sorted(
        (t["start_date"], t["end_date"])
        for dag in ("engagement_ingest", "engagement_mart")
        for t in api.task_instances(dag)
        if t["pool"] == "duckdb_writer" and t["start_date"]
    )
    overlaps = [(a, b) for a, b in zip(writers, writers[1:], strict=False) if b[0] < a[1]]
    assert not overlaps, f"writers overlapped: {overlaps}"
    assert mart_hashes(mart) == before
