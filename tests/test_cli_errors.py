"""Every user-facing failure of the CLI is one line on stderr naming what to fix (the
option, the setting, the file or the connection), with its exit code and no traceback; a
Ctrl-C is one line and exit 130 with nothing published; a closed pipe is silent. And the
logs an operator reads: a validation's checks and verdicts, a build's models and tests."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.x_sandbox import make_server
from engagement import cli, gate
from engagement.errors import EngagementError, UsageError
from engagement.landing import Interval
from engagement.settings import Settings
from engagement.warehouse import build
from extract import access_log, x
from tests.conftest import (
    REPO,
    TEST_IP_KEY,
    TOKEN,
    SampleRun,
    copy_data_dir,
    engagement,
    interruptible,
)
from tests.test_warehouse import alive, started_dbt

DAY = ["--start", "2026-11-04", "--end", "2026-11-05"]
INTERVAL = Interval.parse("2026-11-04", "2026-11-05")


def one_line(result: subprocess.CompletedProcess, code: int, *named: str) -> str:
    """The single stderr line of a failed command, checked: its exit code, no traceback,
    and each of `named` in it."""
    error = result.stderr
    assert result.returncode == code, error
    assert "Traceback" not in error and error.count("\n") == 1 and error.endswith("\n"), error
    for thing in named:
        assert thing in error, (thing, error)
    return error


def combined(at: str, n: int) -> str:
    """n combined-format lines of 2026-11-04."""
    return "".join(
        f'198.51.100.{i % 250} - - [04/Nov/2026:{at}:{i % 60:02d} +0000] "GET /articles/{i}'
        f' HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"\n'
        for i in range(n)
    )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "access.log"
    path.parent.mkdir()
    path.write_text(combined("10:00", 100))
    return path


# --- the data directory ------------------------------------------------------------------

COMMANDS = [
    ["extract", "x", *DAY],
    ["extract", "support-site", *DAY],
    ["load", "--source", "x", *DAY],
    ["build"],
    ["run", *DAY],
    ["headline"],
    ["report"],
    ["mf", "query", "--metrics", "mentions"],
    ["quarantine", "list"],
    ["quarantine", "show", "20261104T000000Z_20261105T000000Z"],
    ["quarantine", "release", "20261104T000000Z_20261105T000000Z"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_data_directory_that_cannot_be_one_is_named_by_every_command(
    command: list[str], sandbox_env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    (tmp_path / "a_file").write_text("")
    data = tmp_path / "a_file" / "data"
    env = dict(sandbox_env, ENGAGEMENT_DATA_DIR=str(data), SUPPORT_SITE_LOGS=str(logs))
    one_line(
        engagement(*command, env=env, check=False),
        2,
        f"ENGAGEMENT_DATA_DIR={data}",
        f"{tmp_path / 'a_file'} is not a directory",
    )


@pytest.mark.parametrize(
    ("command", "in_the_way"),
    [
        (["load", "--source", "x", *DAY], "warehouse"),
        (["load", "--source", "support_site", *DAY], "validations"),
        (["build"], "dbt"),
        (["report"], "reports"),
        (["mf", "query", "--metrics", "mentions"], "metricflow"),
    ],
)
def test_a_data_directory_a_command_cannot_write_in_is_named_before_any_work(
    command: list[str], in_the_way: str, env: dict[str, str]
) -> None:
    """A file where the command writes a directory stands for any unwritable place (the
    tests may run as root, whom permissions do not stop)."""
    data = Path(env["ENGAGEMENT_DATA_DIR"])
    data.mkdir()
    (data / in_the_way).write_text("")
    one_line(
        engagement(*command, env=env, check=False),
        2,
        f"ENGAGEMENT_DATA_DIR={data}: cannot write {data / in_the_way}",
        f"{data / in_the_way} is not a directory",
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["headline"], "no published mart at"),
        (["report"], "no published mart at"),
        (["mf", "query", "--metrics", "mentions"], "no published mart at"),
        (["build"], "nothing loaded yet"),
        (["load", "--source", "support-site", *DAY], "has been landed under"),
    ],
)
def test_a_missing_data_directory_is_named(
    command: list[str], expected: str, env: dict[str, str]
) -> None:
    data = env["ENGAGEMENT_DATA_DIR"]
    one_line(engagement(*command, env=env, check=False), 2, expected, data, "ENGAGEMENT_DATA_DIR")


def test_an_unwritable_report_path_names_the_option(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "report.html"
    result = engagement("report", "--out", str(out), env=env, check=False)
    one_line(result, 2, f"--out={out}: cannot write", "set --out to a writable place")


# --- options and settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (["load", "--source", "x", "--start", "2026-13-45", "--end", "2026-11-05"], "--start", ""),
        (["extract", "x", "--start", "2026-11-04", "--end", "tomorrow"], "--end", ""),
        (["run", "--start", "2026-11-04T25:00", "--end", "2026-11-05"], "--start", ""),
        (["sample", "--out", "logs", "--start", "2026-02-30"], "--start", "a day"),
    ],
)
def test_a_malformed_date_names_the_option_and_the_expected_format(
    command: list[str], option: str, value: str, env: dict[str, str]
) -> None:
    given = command[command.index(option) + 1]
    expected = value or "not a date or time (expected ISO 8601, e.g. 2026-11-05"
    one_line(
        engagement(*command, env=env, check=False), 2, f"argument {option}", repr(given), expected
    )


def test_an_empty_interval_names_both_options(env: dict[str, str]) -> None:
    result = engagement("load", "--source", "x", "--start", "2026-11-05", "--end", "2026-11-04",
                        env=env, check=False)  # fmt: skip
    one_line(result, 2, "--start 2026-11-05T00:00:00Z is not before --end 2026-11-04T00:00:00Z")


def test_a_bad_log_format_names_the_setting(
    env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    result = engagement(
        "extract", "support-site", *DAY, "--logs", str(logs),
        env=dict(env, SUPPORT_SITE_LOG_FORMAT="jsonl"), check=False,
    )  # fmt: skip
    one_line(result, 2, "SUPPORT_SITE_LOG_FORMAT=jsonl", "must contain $remote_addr")


def test_the_gate_names_the_files_that_did_not_parse(
    env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    """A wrong-format refusal (exit 3: the data was refused) names the file whose lines
    mostly did not parse, not the good one beside it."""
    other = logs.parent / "access.log.json"
    other.write_text(
        "".join(f'{{"ts": "2026-11-04T11:00:{s % 60:02d}Z", "path": "/"}}\n' for s in range(100))
    )
    engagement("extract", "support-site", *DAY, "--logs", f"{logs.parent}/access.log*", env=env)
    result = engagement("load", "--source", "support_site", *DAY, env=env, check=False)
    error = one_line(result, 3, "batch refused", "SUPPORT_SITE_LOG_FORMAT=combined")
    assert f"files mostly unparsed: {other} (100 of 100 lines)" in error
    assert f"{logs} (" not in error


# --- the X API ---------------------------------------------------------------------------


def test_a_refused_token_names_x_bearer_token(sandbox_env: dict[str, str]) -> None:
    """The sandbox answers 401 to an empty bearer token (a blank is still a value)."""
    result = engagement("extract", "x", *DAY, env=dict(sandbox_env, X_BEARER_TOKEN=" "),
                        check=False)  # fmt: skip
    error = one_line(result, 2, "401", "check X_BEARER_TOKEN")
    assert "Airflow" not in error


def test_a_refused_token_of_the_airflow_connection_names_the_connection(
    sandbox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Airflow the token is the connection's password (AIRFLOW_CONN_<ID>: Airflow's
    environment secrets backend, read without a metadata database)."""
    from engagement import orchestration, pipeline

    for variable, value in sandbox_env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("ENGAGEMENT_X_CONN_ID", "x_sandbox")
    monkeypatch.setenv("AIRFLOW_CONN_X_SANDBOX", json.dumps({"conn_type": "http", "password": " "}))
    settings = orchestration.task_settings()
    assert settings.x_bearer_token.get_secret_value() == " "
    with pytest.raises(x.RequestRefused) as refused:
        pipeline.extract_x(settings, INTERVAL)
    message = str(refused.value)
    assert refused.value.exit_code == 2 and "\n" not in message
    assert "check the Airflow connection x_sandbox's password" in message
    assert "X_BEARER_TOKEN" not in message
    monkeypatch.delenv("AIRFLOW_CONN_X_SANDBOX")  # no such connection: the environment's
    assert orchestration.task_settings().x_token_source == "X_BEARER_TOKEN"


def test_an_endpoint_outside_the_plan_names_the_token_s_source(env: dict[str, str]) -> None:
    server = make_server(0, faults=[{"path": r"/mentions$", "kind": "403", "times": 1}])
    try:
        result = engagement(
            "extract", "x", *DAY, check=False,
            env=dict(env, X_API_BASE_URL=server.start(), X_BEARER_TOKEN=TOKEN,
                     X_ACCOUNTS="acmecloud"),
        )  # fmt: skip
    finally:
        server.stop()
    one_line(result, 2, "GET /2/users/:id/mentions: 403", "access level", "X_BEARER_TOKEN")


def test_an_unknown_account_is_said_in_words(sandbox_env: dict[str, str]) -> None:
    result = engagement(
        "extract", "x", *DAY, env=dict(sandbox_env, X_ACCOUNTS="acmecloud,nosuchacct"), check=False
    )
    error = one_line(result, 2, "X_ACCOUNTS", "@nosuchacct", "no account of that username")
    assert "{" not in error  # words, not the API's JSON


# --- quarantine, sources -----------------------------------------------------------------


def test_an_empty_quarantine_says_so(env: dict[str, str]) -> None:
    result = engagement("quarantine", "list", env=env)
    quarantine = Path(env["ENGAGEMENT_DATA_DIR"]) / "quarantine"
    assert result.stdout == f"nothing in quarantine (under {quarantine})\n"
    assert result.stderr == ""


@pytest.mark.parametrize("spelling", ["support-site", "support_site"])
def test_source_names_are_accepted_in_both_spellings(spelling: str, env: dict[str, str]) -> None:
    batch = "20261104T000000Z_20261105T000000Z"
    shown = engagement("quarantine", "show", batch, "--source", spelling, env=env, check=False)
    one_line(shown, 2, f"no quarantined batch {batch} of support_site")
    loaded = engagement("load", "--source", spelling, *DAY, env=env, check=False)
    one_line(loaded, 2, "has been landed under", "support_site")
    unknown = engagement("load", "--source", "facebook", *DAY, env=env, check=False)
    one_line(unknown, 2, "argument --source", "unknown source 'facebook'")


def test_only_the_project_s_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Anything else is a bug and keeps its traceback."""
    from engagement import pipeline

    def bug(_: object) -> dict:
        raise LookupError("a bug")

    def refusal(_: object) -> dict:
        raise UsageError("set SOMETHING")

    monkeypatch.setattr(pipeline, "headline", bug)
    with pytest.raises(LookupError, match="a bug"):
        cli.main(["headline"])
    monkeypatch.setattr(pipeline, "headline", refusal)
    assert cli.main(["headline"]) == 2
    assert capsys.readouterr().err == "engagement: set SOMETHING\n"
    assert issubclass(gate.BatchRejected, EngagementError) and gate.BatchRejected.exit_code == 3
    assert build.BuildFailed.exit_code == 3


# --- on a published mart: a closed pipe, Ctrl-C, the build's log -------------------------


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, sandbox_url: str, sample_day: SampleRun
) -> dict:
    """A day of the sample company run and published."""
    return sample_day.copy(tmp_path_factory.mktemp("published"), sandbox_url)


def closed_pipe(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with its stdout a pipe whose reader has gone (`| head -1` once head is
    done): closed before the command starts writing."""
    command = subprocess.Popen(
        [sys.executable, "-m", "engagement.cli", *args],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    command.stdout.close()
    error = command.stderr.read()
    return command.wait(timeout=600), error


@pytest.mark.e2e
@pytest.mark.parametrize("command", [["headline"], ["build"], ["quarantine", "list"]])
def test_a_closed_pipe_is_silent(published: dict, command: list[str]) -> None:
    """`engagement headline | head -1`, or a JSON summary (build) read by nobody: exit 141
    (128 + SIGPIPE, as a program killed by it), nothing on stderr."""
    assert closed_pipe(*command, env=published) == (cli.BROKEN_PIPE, "")


@pytest.mark.e2e
def test_ctrl_c_during_a_build_is_one_line_and_publishes_nothing(
    published: dict, tmp_path: Path
) -> None:
    """Ctrl-C in a terminal: SIGINT to the build and its dbt (the foreground process group),
    once dbt runs."""
    data = tmp_path / "data"
    copy_data_dir(Path(published["ENGAGEMENT_DATA_DIR"]), data)
    published_db = Settings.from_env({"ENGAGEMENT_DATA_DIR": str(data)}).published_db
    before = published_db.read_bytes()
    command = subprocess.Popen(
        [sys.executable, "-m", "engagement.cli", "build", "--full-refresh"],
        env=dict(published, ENGAGEMENT_DATA_DIR=str(data)), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    dbt = started_dbt(command)
    os.killpg(command.pid, signal.SIGINT)
    output, error = command.communicate(timeout=120)
    assert (command.returncode, output, error) == (130, "", "engagement: interrupted\n")
    deadline = time.monotonic() + 10  # a dbt that got the SIGINT itself may still be ending
    while any(alive(pid) for pid in dbt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in dbt), "dbt outlived the interrupted build"
    assert published_db.read_bytes() == before
    assert not list(published_db.parent.glob(".*publishing"))


@pytest.mark.e2e
def test_a_build_s_log_lists_its_models_and_timings(
    published: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """From the run_results.json of the fixture's build (the one it logged as it ended)."""
    results = Path(published["ENGAGEMENT_DATA_DIR"]) / "dbt" / "target" / "run_results.json"
    nodes = json.loads(results.read_text())["results"]
    caplog.set_level(logging.INFO, logger="engagement.warehouse.build")
    build.log_results(nodes)
    lines = caplog.messages
    models = [n for n in nodes if n["unique_id"].startswith("model.")]
    assert (
        len(models) > 5
        and len(lines) == len(nodes) - sum(n["unique_id"].startswith("test.") for n in nodes) + 1
    )  # a line per model and seed, none per passing test, and the totals
    for model in models:
        name = model["unique_id"].split(".")[-1]
        assert any(line.startswith(f"dbt model {name}: success in ") for line in lines), name
    assert lines[-1].startswith(f"dbt ran {len(nodes)} nodes (")


def test_a_failing_dbt_test_is_logged_with_its_failing_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = {
        "unique_id": "test.engagement.always_fails",
        "status": "fail",
        "failures": 3,
        "execution_time": 0.25,
        "message": "Got 3 results,\n configured to fail if != 0",
    }
    model = {"unique_id": "model.engagement.fct_x_posts", "status": "success",
             "execution_time": 1.5, "failures": None, "message": "OK"}  # fmt: skip
    caplog.set_level(logging.INFO, logger="engagement.warehouse.build")
    build.log_results([model, failing])
    assert caplog.messages[:2] == [
        "dbt model fct_x_posts: success in 1.50 s",
        "dbt test.engagement.always_fails: fail, 3 failing row(s): Got 3 results, configured"
        " to fail if != 0 (0.25 s)",
    ]
    assert "always_fails: fail, 3 failing row(s)" in build._failures([model, failing], "")


# --- the gate's log ----------------------------------------------------------------------


@pytest.mark.parametrize("parses", [True, False], ids=["passes", "refused"])
def test_a_validation_s_log_is_its_checks_and_verdicts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, parses: bool
) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined("10:00", 100) if parses else '{"ts": 1}\n' * 100)
    summary = access_log.extract(str(log), INTERVAL, tmp_path / "raw", key=TEST_IP_KEY)
    caplog.set_level(logging.INFO)
    if parses:
        gate.gate(Path(summary.path), tmp_path / "quarantine")
    else:
        with pytest.raises(gate.BatchRejected):
            gate.gate(Path(summary.path), tmp_path / "quarantine")
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]
    lines = [r.getMessage() for r in caplog.records if r.name == "engagement.gate"]
    others = {r.name for r in caplog.records} - {"engagement.gate", "py.warnings"}
    assert not others  # nothing else (py.warnings: Python's, of GE's deprecated imports)
    batch = f"support_site batch {INTERVAL.batch_id}"
    *checks, total = lines
    assert len(checks) == 14 and all(line.startswith(f"{batch}: expect_") for line in checks)
    parsed = next(line for line in checks if "(parsed_share)" in line)
    if parses:
        assert all(line.endswith(": passed") for line in checks)
        assert total == f"{batch}: 14 of 14 checks passed"
    else:
        assert ": FAILED: 0 of 100 lines parsed" in parsed and str(log) in parsed
        assert total.startswith(f"{batch}: ") and "of 14 checks passed" in total
