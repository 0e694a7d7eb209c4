"""The support-site extraction fanned out: planned into parts, each part parsed on its own
(as the ingest DAG's mapped tasks do, on any worker), the parts combined into one batch.
Many small parts land the same batch as one part, a missing or failed part lands nothing,
a retried part replaces its earlier try, and every line is counted once across parts."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.sample import write_sample
from engagement.landing import BatchSummary, Interval, Source, versions_dir
from extract import access_log
from tests.conftest import TEST_IP_KEY

ELASTIC_DAYS = [Interval.parse(f"2015-05-{d}", f"2015-05-{d + 1}") for d in range(17, 21)]
ELASTIC_DAYS.append(Interval.parse("2015-05-17", "2015-05-21"))  # the four days in one
SAMPLE_DAYS = [Interval.parse(f"2026-11-0{d}", f"2026-11-0{d + 1}") for d in range(2, 9)]


def rotated_elastic(directory: Path, elastic_log: Path) -> Path:
    """The shared elastic log cut into five rotated files (plain and gzip), with a copy of
    one (read once) and two truncated gzips (damaged: lines lost): a day's files of a site
    whose extraction spans several parts."""
    directory.mkdir(parents=True)
    lines = elastic_log.read_bytes().splitlines(keepends=True)
    chunks = [b"".join(lines[i * len(lines) // 5 : (i + 1) * len(lines) // 5]) for i in range(5)]
    for i, chunk in enumerate(chunks):
        if i % 2:
            packed = gzip.compress(chunk, mtime=0)
            cut = len(packed) // 3 if i == 1 else len(packed) * 2 // 3
            (directory / f"access.log.{i}.gz").write_bytes(packed[:cut])  # truncated
        else:
            (directory / f"access.log.{i}").write_bytes(chunk)
    shutil.copy(directory / "access.log.0", directory / "access.log.0.copy")
    return directory


def landed(summary: BatchSummary) -> dict:
    """A batch's content: its rows and quarantined lines as multisets, its manifest."""
    batch = Path(summary.path)
    manifest = json.loads((batch / "manifest.json").read_text())
    manifest.pop("version")

    def rows(name: str) -> Counter:
        return Counter(json.dumps(r, default=str, sort_keys=True) for r in pq.read_table(
            batch / name).to_pylist())  # fmt: skip

    return {
        "lines": rows("lines.parquet"),
        "quarantine": rows("quarantine.parquet"),
        "manifest": manifest,
        "schema": pq.read_schema(batch / "lines.parquet"),
    }


def extract_days(logs: str, days: list[Interval], root: Path, part_bytes: int) -> list[dict]:
    """Each day extracted in turn, with a state file (later days skip known files)."""
    return [
        landed(
            access_log.extract(
                logs,
                day,
                root / "raw",
                key=TEST_IP_KEY,
                state_path=root / "state.json",
                part_bytes=part_bytes,
            )
        )  # fmt: skip
        for day in days
    ]


@pytest.mark.parametrize("case", ["elastic", "sample"])
def test_many_parts_land_the_batches_one_part_does(
    tmp_path: Path, elastic_log: Path, case: str
) -> None:
    """The extraction in parts of 100 KB (a part per file, per site) lands, day after day,
    what it lands in one part: the same rows, quarantined lines, manifest (every file's
    entry, damage placed across parts, totals) and state file. One part is today's
    single-process extraction; the counts it lands are pinned by tests/test_access_log.py."""
    if case == "elastic":
        logs = str(rotated_elastic(tmp_path / "logs", elastic_log) / "access.log*")
        days = ELASTIC_DAYS
    else:  # the sample, as two sites: parts never mix sites
        write_sample(tmp_path / "logs")
        logs = f"a={tmp_path / 'logs' / 'access.log*'},b={tmp_path / 'logs' / 'access.log.[12]*'}"
        days = SAMPLE_DAYS
    plan = access_log.plan(logs, days[0], part_bytes=100_000)
    assert len(plan.parts) == len([f for f in plan.files if not f.skipped]) > 2
    assert all(f.site == part.site for part in plan.parts for f in part.files)

    one = extract_days(logs, days, tmp_path / "one", part_bytes=2**40)
    many = extract_days(logs, days, tmp_path / "many", part_bytes=100_000)
    assert many == one
    state = [json.loads((tmp_path / d / "state.json").read_text()) for d in ("one", "many")]
    assert state[0] == state[1] and state[0]
    assert not (tmp_path / "many" / "versions" / access_log.PARTS).exists()  # staging removed
    manifests = [batch["manifest"] for batch in many]
    skipped = {f["skipped"].split()[0] for m in manifests for f in m["files"] if "skipped" in f}
    assert "known" in skipped  # files known to miss the day
    if case == "elastic":
        assert "same" in skipped  # the copy
        damaged = [f for m in manifests for f in m["files"] if "damage_offset" in f]
        assert damaged and all(f["read_error"] or f["damage_elsewhere"] for f in damaged)
        assert sum(m["records"] for m in manifests[:4]) == manifests[4]["records"]


def test_a_missing_or_failed_part_lands_no_batch(tmp_path: Path, elastic_log: Path) -> None:
    logs = str(rotated_elastic(tmp_path / "logs", elastic_log) / "access.log*")
    day, raw, state = ELASTIC_DAYS[4], tmp_path / "raw", tmp_path / "state.json"
    plan = access_log.plan(logs, day, state_path=state, part_bytes=100_000)
    for part in plan.parts[1:]:
        access_log.extract_part(part, day, raw, TEST_IP_KEY)
    with pytest.raises(access_log.PartMissing, match=r"^part 0 of \d+ of the support-site batch"):
        access_log.combine(plan, raw, state)
    # the part fails: its file is gone (rotated away between the plan and the part)
    moved = Path(plan.parts[0].files[0].path)
    moved.rename(moved.with_name("elsewhere"))
    with pytest.raises(FileNotFoundError):
        access_log.extract_part(plan.parts[0], day, raw, TEST_IP_KEY)
    staged = access_log.staging_dir(raw, day, plan.attempt)
    assert sorted(p.name for p in staged.iterdir()) == [
        f"part-{part.index:05d}" for part in plan.parts[1:]
    ]  # nothing of the failed try: no temporary directory left
    with pytest.raises(access_log.PartMissing):
        access_log.combine(plan, raw, state)
    assert not versions_dir(raw, Source.SUPPORT_SITE, day).exists()
    assert not state.exists()  # the state file learns only from a landed batch


def test_a_retried_part_replaces_its_earlier_try(tmp_path: Path, elastic_log: Path) -> None:
    """A part run twice (a worker lost after the part landed, the task retried) is landed
    once: the batch is the one-process extraction's."""
    logs = str(rotated_elastic(tmp_path / "logs", elastic_log) / "access.log*")
    day = ELASTIC_DAYS[4]
    expected = landed(access_log.extract(logs, day, tmp_path / "once", key=TEST_IP_KEY))
    raw = tmp_path / "raw"
    plan = access_log.plan(logs, day, part_bytes=100_000)
    results = [access_log.extract_part(part, day, raw, TEST_IP_KEY) for part in plan.parts]
    again = access_log.extract_part(plan.parts[2], day, raw, TEST_IP_KEY)
    assert again == results[2]
    staged = access_log.staging_dir(raw, day, plan.attempt)
    assert len(list(staged.iterdir())) == len(plan.parts)
    assert landed(access_log.combine(plan, raw)) == expected


def test_lines_are_counted_across_parts(tmp_path: Path, elastic_log: Path) -> None:
    """The parts' counts add up to the batch's and every line is in exactly one part; a part
    whose Parquet does not hold the rows its result counts is refused, and nothing lands."""
    logs = str(rotated_elastic(tmp_path / "logs", elastic_log) / "access.log*")
    day, raw = ELASTIC_DAYS[4], tmp_path / "raw"
    plan = access_log.plan(logs, day, part_bytes=100_000)
    results = [access_log.extract_part(part, day, raw, TEST_IP_KEY) for part in plan.parts]
    staged = access_log.staging_dir(raw, day, plan.attempt)
    seen: Counter[tuple[str, int]] = Counter()
    for part in plan.parts:
        for name in ("lines.parquet", "quarantine.parquet"):
            table = pq.read_table(staged / f"part-{part.index:05d}" / name)
            seen.update(zip(map(str, table["source_file"].to_pylist()),
                            table["line_no"].to_pylist(), strict=True))  # fmt: skip
    assert set(seen.values()) == {1}
    kept = shutil.copytree(staged, tmp_path / "kept")
    summary = access_log.combine(plan, raw)
    manifest = json.loads((Path(summary.path) / "manifest.json").read_text())
    for count in ("lines_read", "rows", "quarantined", "outside_interval"):
        by_parts = sum(getattr(result, count) for result in results)
        total = manifest["records" if count == "rows" else count]
        assert total == by_parts == sum(f[count] for f in manifest["files"])
    assert manifest["records"] + manifest["quarantined"] == len(seen)

    # a part whose file lost a row group: the counts no longer match its files
    shutil.copytree(kept, staged)
    part = staged / "part-00000"
    rows = pq.read_table(part / "lines.parquet")
    pq.write_table(rows.slice(0, len(rows) - 1), part / "lines.parquet")
    versions = versions_dir(raw, Source.SUPPORT_SITE, day)
    before = sorted(versions.iterdir())
    with pytest.raises(RuntimeError, match="its files hold"):
        access_log.combine(plan, raw)
    assert sorted(versions.iterdir()) == before


def test_a_day_with_nothing_to_parse_lands_an_empty_batch(tmp_path: Path) -> None:
    """Every file known to miss the interval: no part, and the batch still lands (empty),
    every file's entry saying why it was skipped."""
    write_sample(tmp_path / "logs")
    logs, state = str(tmp_path / "logs" / "access.log*"), tmp_path / "state.json"
    access_log.extract(logs, SAMPLE_DAYS[0], tmp_path / "raw", TEST_IP_KEY, state_path=state)
    later = Interval.parse("2026-12-01", "2026-12-02")
    plan = access_log.plan(logs, later, state_path=state)
    assert plan.parts == []
    summary = access_log.combine(plan, tmp_path / "raw", state)
    manifest = json.loads((Path(summary.path) / "manifest.json").read_text())
    assert summary.records == manifest["lines_read"] == 0
    assert {f["skipped"] for f in manifest["files"]} == {
        "known content with no line in the interval"
    }
