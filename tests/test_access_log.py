"""Support-site extraction on real log lines: every line is accounted for exactly once."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from extract import access_log
from extract.batches import Interval

WHOLE = Interval.parse("2015-05-17", "2015-05-21")
DAYS = [Interval.parse(f"2015-05-{d}", f"2015-05-{d + 1}") for d in range(17, 21)]


def independent_status(line: str) -> str | None:
    """Status by splitting on quotes: `ip - - [ts] "request" status bytes "ref" "ua"`."""
    parts = line.split('"')
    if len(parts) < 7 or not line.endswith('"'):
        return None
    return parts[2].split()[0]


def test_whole_elastic_log_is_rows_plus_quarantined(tmp_path: Path, elastic_log: Path) -> None:
    lines = elastic_log.read_text().splitlines()
    expected = Counter(s for s in map(independent_status, lines) if s)
    bad = [(n, line) for n, line in enumerate(lines, 1) if independent_status(line) is None]

    summary = access_log.extract(str(elastic_log), WHOLE, tmp_path)

    batch = Path(summary["path"])
    rows = pq.read_table(batch / "lines.parquet").to_pylist()
    quarantined = pq.read_table(batch / "quarantine.parquet").to_pylist()
    assert summary["records"] == len(rows) == len(lines) - len(bad)
    assert summary["quarantined"] == len(quarantined) == len(bad) >= 1
    assert [(q["line_no"], q["raw"].decode()) for q in quarantined] == bad
    assert Counter(str(r["status"]) for r in rows) == expected
    assert sorted(r["raw"].decode() for r in rows) == sorted(
        line for line in lines if independent_status(line)
    )
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["lines_read"] == len(lines)
    assert manifest["records"] + manifest["quarantined"] + manifest["outside_interval"] == len(
        lines
    )


def test_daily_batches_partition_the_log(tmp_path: Path, elastic_log: Path) -> None:
    seen: Counter[int] = Counter()
    for day in DAYS:
        batch = Path(access_log.extract(str(elastic_log), day, tmp_path)["path"])
        for name in ("lines.parquet", "quarantine.parquet"):
            seen.update(pq.read_table(batch / name, columns=["line_no"])["line_no"].to_pylist())
        for row in pq.read_table(batch / "lines.parquet", columns=["requested_at"]).to_pylist():
            assert (
                day.start.replace(tzinfo=None) <= row["requested_at"] < day.end.replace(tzinfo=None)
            )
    assert sorted(seen) == list(range(1, 10_001))
    assert set(seen.values()) == {1}


def test_rotated_gzip_set_with_damage_loses_no_good_line(tmp_path: Path) -> None:
    good = '203.0.113.9 - - [02/Nov/2026:10:{:02d}:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "ua"'
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_bytes(
        (good.format(1) + "\n").encode() + b"\xff\xfe not a log line\n" + good.format(2).encode()
    )
    (logs / "access.log.1").write_bytes(b"")
    with gzip.open(logs / "access.log.2.gz", "wt") as handle:
        handle.write("".join(good.format(m) + "\n" for m in range(10, 40)))
    whole = (logs / "access.log.2.gz").read_bytes()
    (logs / "access.log.3.gz").write_bytes(whole[: len(whole) - 12])  # a truncated tail

    interval = Interval.parse("2026-11-02", "2026-11-03")
    summary = access_log.extract(str(logs / "access.log*"), interval, tmp_path / "raw")

    manifest = json.loads((Path(summary["path"]) / "manifest.json").read_text())
    files = {Path(f["path"]).name: f for f in manifest["files"]}
    assert files["access.log"] == files["access.log"] | {
        "lines_read": 3,
        "rows": 2,
        "quarantined": 1,
    }
    assert files["access.log.1"]["lines_read"] == 0
    assert files["access.log.2.gz"]["rows"] == 30
    truncated = files["access.log.3.gz"]
    assert (
        truncated["read_error"]
        and truncated["rows"] == truncated["lines_read"] - truncated["quarantined"]
    )
    assert summary["records"] + summary["quarantined"] == manifest["lines_read"]


def test_rerun_replaces_the_batch(tmp_path: Path, elastic_log: Path) -> None:
    first = access_log.extract(str(elastic_log), DAYS[0], tmp_path)
    before = (Path(first["path"]) / "lines.parquet").read_bytes()
    second = access_log.extract(str(elastic_log), DAYS[0], tmp_path)
    assert first == second
    assert (Path(second["path"]) / "lines.parquet").read_bytes() == before
    assert [p.name for p in (tmp_path / "support_site").iterdir()] == [DAYS[0].batch_id]
