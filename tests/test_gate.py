"""The quality gate: good batches pass, bad ones are refused and quarantined whole."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engagement import gate, pipeline, quarantine
from engagement.errors import UsageError
from engagement.landing import Interval, Source, promote, read_manifest
from engagement.settings import Settings
from engagement.warehouse import load
from extract import access_log
from tests.conftest import TEST_IP_KEY, engagement

DAY = Interval.parse("2015-05-18", "2015-05-19")


@pytest.fixture
def batch(tmp_path: Path, elastic_log: Path) -> Path:
    raw = tmp_path / "data" / "raw"
    return Path(access_log.extract(str(elastic_log), DAY, raw, key=TEST_IP_KEY).path)


def test_a_good_batch_passes_and_its_report_is_kept(batch: Path, tmp_path: Path) -> None:
    report = gate.gate(batch, tmp_path / "quarantine", tmp_path / "validations")
    assert report["success"] is True
    assert batch.is_dir()
    kept = json.loads(
        (tmp_path / "validations" / "support_site" / f"{DAY.batch_id}.json").read_text()
    )
    assert kept == report
    # the suite of the lines' aggregates, and the aggregates themselves
    assert kept["suites"]["lines"]["success"] is True
    manifest = read_manifest(batch)
    assert (kept["facts"]["rows"], kept["facts"]["quarantined"]) == (
        manifest.records,
        manifest.quarantined,
    )


def _rewrite_status(batch: Path, status: int) -> None:
    table = pq.read_table(batch / "lines.parquet")
    column = table.schema.get_field_index("status")
    bad = pc.if_else(pc.equal(table["status"], 404), status, table["status"]).cast("int16")
    pq.write_table(table.set_column(column, "status", bad), batch / "lines.parquet")


def test_a_failing_batch_is_quarantined_with_its_report(batch: Path, tmp_path: Path) -> None:
    _rewrite_status(batch, 999)
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batch, tmp_path / "quarantine")
    assert refused.value.failed == ["expect_column_values_to_be_between(status_max)"]
    assert refused.value.reasons == ["an HTTP status is over 599: 999"]
    assert not batch.exists()
    moved = tmp_path / "quarantine" / "support_site" / DAY.batch_id
    assert (moved / "lines.parquet").is_file()
    report = json.loads((moved / "validation.json").read_text())
    assert report["success"] is False


def test_a_clear_ip_is_refused(batch: Path, tmp_path: Path) -> None:
    table = pq.read_table(batch / "lines.parquet")
    column = table.schema.get_field_index("visitor_id")
    leaked = pc.if_else(pc.equal(table["status"], 404), "203.0.113.9", table["visitor_id"])
    pq.write_table(table.set_column(column, "visitor_id", leaked), batch / "lines.parquet")
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batch, tmp_path / "quarantine")
    leaks = pc.sum(pc.equal(table["status"], 404)).as_py()
    assert refused.value.failed == ["expect_column_values_to_be_between(not_pseudonyms)"]
    assert refused.value.reasons == [
        f"{leaks} of {table.num_rows:,} rows have a visitor id that is not a 32-hex pseudonym"
        " (a client IP in clear?)"
    ]


def test_lost_rows_fail_the_row_count(batch: Path, tmp_path: Path) -> None:
    table = pq.read_table(batch / "lines.parquet")
    pq.write_table(table.slice(0, table.num_rows - 1), batch / "lines.parquet")
    manifest = read_manifest(batch)
    rows, lines = manifest.records, manifest.records + manifest.quarantined
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batch, tmp_path / "quarantine")
    assert refused.value.reasons == [
        f"{rows - 1:,} rows where the manifest counts {rows:,}: rows were lost or added after"
        " landing",
        f"{lines - 1:,} rows and quarantined lines for {lines:,} lines of the interval (the"
        f" manifest's own counts: {lines:,}): lines were lost",
    ]


def test_a_log_in_the_wrong_format_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    good = '192.0.2.1 - - [18/May/2015:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
    log.write_text(good + "".join(f"2015-05-18T10:00:{s:02d} GET / 200\n" for s in range(40)))
    summary = access_log.extract(str(log), DAY, tmp_path / "raw", key=TEST_IP_KEY)
    assert (summary.records, summary.quarantined) == (1, 40)
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(Path(summary.path), tmp_path / "quarantine")
    assert refused.value.failed == ["expect_column_values_to_be_between(parsed_share)"]
    assert refused.value.reasons == [
        "1 of 41 lines parsed (2.4%): the log does not match SUPPORT_SITE_LOG_FORMAT=combined;"
        f" files mostly unparsed: {log.resolve()} (40 of 41 lines)"
    ]


def test_cli_load_refuses_and_loads_nothing(batch: Path, env: dict[str, str]) -> None:
    _rewrite_status(batch, 999)
    args = ["load", "--source", "support-site", "--start", "2015-05-18", "--end", "2015-05-19"]
    result = engagement(*args, env=env, check=False)
    assert result.returncode != 0
    assert "failed 1 check(s): an HTTP status is over 599: 999." in result.stderr
    raw_db = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    with duckdb.connect(str(raw_db), read_only=True) as con:  # the refusal, and no row loaded
        assert con.execute("select count(*) from main.batches").fetchone() == (0,)
        assert con.execute("select count(*) from support_site.requests").fetchone() == (0,)
        refusal = con.execute("select batch_id, reasons from main.refusals").fetchall()
    assert refusal == [(DAY.batch_id, '["an HTTP status is over 599: 999"]')]


def test_cli_load_twice_never_duplicates(batch: Path, env: dict[str, str]) -> None:
    args = ["load", "--source", "support-site", "--start", "2015-05-18", "--end", "2015-05-19"]
    settings = Settings.from_env(env)  # the first load as the DAG's tasks do it, the second
    pipeline.validate(settings, Source.SUPPORT_SITE, DAY)  # through the CLI
    loaded = pipeline.load_batch(settings, Source.SUPPORT_SITE, DAY).loaded
    second = json.loads(engagement(*args, env=env).stdout.splitlines()[-1])
    assert second["loaded"] == loaded
    raw_db = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    with duckdb.connect(str(raw_db), read_only=True) as con:
        count = con.execute("select count(*) from support_site.requests").fetchone()[0]
        lines = con.execute("select count(distinct line_no) from support_site.requests").fetchone()[
            0
        ]
    assert count == lines == loaded["support_site.requests"] > 1000


def test_a_batch_of_an_unknown_source_is_refused(batch: Path, tmp_path: Path) -> None:
    """Neither the gate nor the loader takes a batch for the support site by default."""
    manifest = json.loads((batch / "manifest.json").read_text())
    (batch / "manifest.json").write_text(json.dumps(dict(manifest, source="facebook")))
    expected = "unknown source 'facebook': expected one of x, support_site"
    with pytest.raises(ValueError, match=expected):
        gate.validate(batch)
    with pytest.raises(ValueError, match=expected):
        load.load(batch, tmp_path / "raw.duckdb")
    assert not (tmp_path / "raw.duckdb").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"records": "many"}, "records: Input should be a valid integer"),
        ({"lines_read": None}, "lines_read: Input should be a valid integer"),
        ({"start": "yesterday"}, "start: Value error, Invalid isoformat string"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_a_manifest_is_validated_when_read(batch: Path, change: dict, expected: str) -> None:
    path = batch / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ValueError, match=f"manifest.json: {expected}"):
        read_manifest(batch)


def daily_log(path: Path, counts: dict[int, int]) -> list[Interval]:
    """`counts[day]` lines on each day of May 2015, in combined format; the days' intervals."""
    path.write_text(
        "".join(
            f"192.0.2.{n % 50} - - [{day}/May/2015:00:{n // 60:02d}:{n % 60:02d} +0000]"
            f' "GET /a{n} HTTP/1.1" 200 1 "-" "Mozilla/5.0"\n'
            for day, count in counts.items()
            for n in range(count)
        )
    )
    return [Interval.parse(f"2015-05-{d}", f"2015-05-{d + 1}") for d in counts]


def test_a_day_far_under_its_trailing_days_is_an_outage_unless_allowed(tmp_path: Path) -> None:
    """Three days of 100 lines, then a day of 5 (the log shipping broke at 00:05)."""
    log = tmp_path / "access.log"
    days = daily_log(log, {18: 100, 19: 100, 20: 100, 21: 5})
    raw = tmp_path / "raw"
    batches = [Path(access_log.extract(str(log), day, raw, key=TEST_IP_KEY).path) for day in days]
    assert gate.trailing_volumes(batches[3]) == []  # only the batches in force count
    for batch in batches[:3]:  # the first has no trailing days: nothing to compare with
        gate.gate(batch, tmp_path / "quarantine", min_volume_share=0.1)
        promote(raw, batch)
    assert gate.trailing_volumes(batches[3]) == [100, 100, 100]
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batches[3], tmp_path / "quarantine", min_volume_share=0.1)
    assert refused.value.reasons == [
        "5 records, under 10% of the median of the last 3 support_site batches (100): an outage"
        " upstream? (a real quiet day: --allow-empty, or ENGAGEMENT_MIN_VOLUME_SHARE=0)"
    ]
    again = access_log.extract(str(log), days[3], raw, key=TEST_IP_KEY)
    assert gate.gate(Path(again.path), tmp_path / "quarantine", min_volume_share=0.0)["success"]


def test_the_quarantine_lists_shows_and_releases_a_refused_batch(
    tmp_path: Path, env: dict[str, str]
) -> None:
    log = tmp_path / "access.log"
    days = daily_log(log, {18: 100, 19: 100, 20: 100, 21: 5})
    settings = Settings.from_env(env)
    for day in days[:3]:
        pipeline.extract_support_site(settings, day, str(log))
        pipeline.validate(settings, Source.SUPPORT_SITE, day)
        pipeline.load_batch(settings, Source.SUPPORT_SITE, day)
    pipeline.extract_support_site(settings, days[3], str(log))
    with pytest.raises(gate.BatchRejected):
        pipeline.validate(settings, Source.SUPPORT_SITE, days[3])
    batch = days[3].batch_id
    reason = "5 records, under 10% of the median of the last 3 support_site batches (100)"
    listed = engagement("quarantine", "list", env=env).stdout
    assert listed.startswith(f"support_site {batch}: {reason}") and listed.count("\n") == 1
    shown = engagement("quarantine", "show", batch, env=env).stdout
    refused = settings.quarantine_dir / "support_site" / batch
    assert (
        reason in shown and f"its Data Docs (open in a browser): {refused}/data_docs.html" in shown
    )
    # Great Expectations' page of the validation: the failed expectation, the value observed
    docs = re.sub(r"<[^>]+>", " ", (refused / "data_docs.html").read_text())
    assert "Unsuccessful Expectations 1" in " ".join(docs.split())
    assert "minimum value must be greater than or equal to 10.0 . 5" in " ".join(docs.split())
    # released as it is, it fails again and goes back; as a real quiet day, it loads
    with pytest.raises(gate.BatchRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        quarantine.release(settings, batch)
    assert (settings.quarantine_dir / "support_site" / batch / "validation.json").is_file()
    released = engagement("quarantine", "release", batch, "--allow-empty", env=env)
    loaded, built = map(json.loads, released.stdout.splitlines())  # released, then published
    assert loaded["loaded"] == {"support_site.requests": 5}
    assert built["changed_sources"] == ["support_site"] and built["tables"]
    empty = f"nothing in quarantine (under {settings.quarantine_dir})\n"
    assert engagement("quarantine", "list", env=env).stdout == empty


def test_validating_a_refused_interval_again_lands_it_again(tmp_path: Path, env: dict) -> None:
    """What clearing a failed validate task in Airflow does: the source was fixed (the rest
    of the day's log arrived), the batch is landed again from it and passes."""
    log = tmp_path / "access.log"
    days = daily_log(log, {18: 100, 19: 100, 20: 5})
    settings = Settings.from_env(env)
    for day in days:
        pipeline.extract_support_site(settings, day, str(log))
    for day in days[:2]:
        pipeline.validate(settings, Source.SUPPORT_SITE, day)
    with pytest.raises(gate.BatchRejected):
        pipeline.validate(settings, Source.SUPPORT_SITE, days[2])
    with pytest.raises(UsageError, match="refused by the gate and is in quarantine"):
        pipeline.validate(settings, Source.SUPPORT_SITE, days[2])  # the CLI says where it is
    daily_log(log, {18: 100, 19: 100, 20: 100})
    logs = dict(os.environ, **env, SUPPORT_SITE_LOGS=str(log))
    validated = pipeline.validate(
        Settings.from_env(logs), Source.SUPPORT_SITE, days[2], reland=True
    )
    assert validated.validated
    assert read_manifest(settings.raw_dir / "support_site" / days[2].batch_id).records == 100
    assert not (settings.quarantine_dir / "support_site" / days[2].batch_id).exists()


def test_documented_errors_are_one_line_and_exit_2(
    batch: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """No mart yet, nothing loaded, a quarantined batch, a busy sandbox port."""
    import socket

    empty = dict(env, ENGAGEMENT_DATA_DIR=str(tmp_path / "empty"))
    _rewrite_status(batch, 999)
    interval = ["--start", "2015-05-18", "--end", "2015-05-19"]
    with pytest.raises(gate.BatchRejected):  # quarantined, as `load` would
        gate.gate(batch, Path(env["ENGAGEMENT_DATA_DIR"]) / "quarantine")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = {
            ("headline",): (empty, "no published mart at"),
            ("build",): (empty, "nothing loaded yet"),
            ("load", "--source", "support-site", *interval): (env, "refused by the gate"),
            ("sandbox", "--port", port): (env, f"cannot listen on 127.0.0.1:{port}"),
        }
        for args, (environment, expected) in cases.items():
            result = engagement(*args, env=environment, check=False)
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr.startswith("engagement: ") and result.stderr.count("\n") == 1
            assert expected in result.stderr, (args, result.stderr)


@pytest.mark.parametrize(
    "content",
    [
        "".join(f'{{"ts": "2015-05-18T10:00:{s:02d}Z", "path": "/"}}\n' for s in range(30)),
        "".join(f"2015-05-18T10:00:{s:02d} GET / 200\n" for s in range(30)),
        bytes(range(256)).decode("latin-1") * 4 + "\n",
    ],
    ids=["json-lines", "another-format", "binary"],
)
def test_a_log_that_does_not_parse_is_never_outside_the_interval(
    tmp_path: Path, content: str
) -> None:
    """Its mtime lies years after the interval: no line may pass for another day's."""
    log = tmp_path / "access.log"
    log.write_bytes(content.encode("latin-1"))
    os.utime(log, (2_000_000_000, 2_000_000_000))  # 2033
    summary = access_log.extract(str(log), DAY, tmp_path / "raw", key=TEST_IP_KEY)
    manifest = read_manifest(Path(summary.path))
    assert (manifest.records, manifest.outside_interval) == (0, 0)
    assert manifest.quarantined == manifest.lines_read > 0
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(Path(summary.path), tmp_path / "quarantine")
    lines = manifest.lines_read
    assert refused.value.reasons == [
        f"0 of {lines} lines parsed (0.0%): the log does not match"
        f" SUPPORT_SITE_LOG_FORMAT=combined; files mostly unparsed: {log.resolve()}"
        f" ({lines} of {lines} lines)"
    ]


def test_an_x_day_far_under_its_trailing_days_is_an_outage(tmp_path: Path) -> None:
    from datetime import date, timedelta

    from tests.test_warehouse_x import ACME, landed_batch, on, stamp

    first = date(2026, 11, 2)
    days = [first + timedelta(days=n) for n in range(4)]
    batches = []
    for n, day in enumerate(days):
        posts = [
            {
                "id": f"{n}{i:03d}",
                "text": "t",
                "author_id": ACME["id"],
                "created_at": stamp(on(day, 9)),
            }
            for i in range(20 if n < 3 else 1)
        ]
        batches.append(landed_batch(tmp_path / "raw" / "x", day, posts, []))
    for batch in batches[:3]:
        gate.gate(batch, tmp_path / "quarantine", min_volume_share=0.1)
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batches[3], tmp_path / "quarantine", min_volume_share=0.1)
    assert refused.value.failed == ["expect_table_row_count_to_be_between"]
    assert refused.value.reasons[0].startswith("1 records, under 10% of the median of the last 3 x")
