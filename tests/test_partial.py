"""No silent emptiness: a directory of logs is read, a spec naming no file is refused, an
empty batch is refused on a first run too, and a file damaged inside makes its batch
partial: located, refused by the gate, and loaded once accepted."""

from __future__ import annotations

import errno
import gzip
import io
import json
import random
import zlib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from devtools.sample import SAMPLE_DAYS, SAMPLE_START, write_sample
from engagement import gate
from engagement.landing import Interval, read_manifest
from extract import access_log
from tests.conftest import TEST_IP_KEY, engagement

DAY = Interval.parse("2026-11-02", "2026-11-03")


def line(n: int, day: int = 2) -> str:
    """A combined-format line of 2026-11-`day`, its n-th second, with varied fields."""
    rng = random.Random(n)
    ip = f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"
    path = f"/docs/{rng.randrange(10**6):06d}?q={rng.randrange(10**9)}"
    return (
        f"{ip} - - [{day:02d}/Nov/2026:{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
        f' +0000] "GET {path} HTTP/1.1" 200 {rng.randrange(10**5)} "-" "Mozilla/5.0 ({n})"'
    )


def lines(count: int, day: int = 2) -> str:
    return "".join(line(n, day) + "\n" for n in range(count))


def interval_args(interval: Interval) -> list[str]:
    return ["--start", str(interval.start.date()), "--end", str(interval.end.date())]


def refusal(result: object) -> str:
    """The one line a command printed on stderr."""
    stderr = result.stderr  # type: ignore[attr-defined]
    assert stderr.count("\n") == 1, stderr
    return stderr


# --- which files --logs names ------------------------------------------------------------


def test_a_directory_as_logs_reads_the_log_files_in_it(tmp_path: Path, env: dict) -> None:
    logs = tmp_path / "logs"
    (logs / "old").mkdir(parents=True)
    (logs / "access.log").write_text(lines(30))
    (logs / "access.log.1").write_text(lines(20, day=1))  # the day before: read, outside
    (logs / "access.log.2.gz").write_bytes(gzip.compress(lines(10).replace("GET", "PUT").encode()))
    (logs / ".access.log.swp").write_text(lines(5))  # hidden: not a log file
    (logs / "old" / "access.log").write_text(lines(7))  # a subdirectory is not read
    result = engagement(
        "extract", "support-site", "--logs", str(logs), *interval_args(DAY), env=env
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    manifest = read_manifest(Path(summary["path"]))
    assert sorted(Path(f.path).name for f in manifest.files) == [
        "access.log",
        "access.log.1",
        "access.log.2.gz",
    ]
    assert (manifest.records, manifest.outside_interval, manifest.lines_read) == (40, 20, 60)
    # and through the setting, as `engagement run` reads it
    from engagement import pipeline
    from engagement.settings import Settings

    settings = Settings.from_env(dict(env, SUPPORT_SITE_LOGS=str(logs)))
    assert pipeline.extract_support_site(settings, DAY).records == 40


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("empty", "the directory '{root}/empty' holds no log file"),
        ("empty/access.log*", "no log file matches '{root}/empty/access.log*'"),
        ("only-dirs/*", "no log file matches '{root}/only-dirs/*'"),
        ("missing", "no log file matches '{root}/missing'"),
        ("hidden", "the directory '{root}/hidden' holds no log file"),
    ],
)
def test_logs_naming_no_file_are_refused_in_one_line(
    tmp_path: Path, env: dict, spec: str, expected: str
) -> None:
    root = tmp_path / "logs"
    for name in ("empty", "only-dirs/a", "hidden"):
        (root / name).mkdir(parents=True)
    (root / "hidden" / ".access.log").write_text(lines(3))
    cases = [
        (["--logs", str(root / spec)], env),
        ([], dict(env, SUPPORT_SITE_LOGS=str(root / spec))),
    ]
    for option, environment in cases:
        args = ["extract", "support-site", *option, *interval_args(DAY)]
        result = engagement(*args, env=environment, check=False)
        assert result.returncode == 2, result.stderr
        assert refusal(result) == (
            f"engagement: {expected.format(root=root)}: check --logs or SUPPORT_SITE_LOGS\n"
        )
        assert not (Path(env["ENGAGEMENT_DATA_DIR"]) / "raw" / "support_site").exists()


# --- empty batches -----------------------------------------------------------------------


def test_an_empty_batch_is_refused_on_a_first_run_unless_allowed(tmp_path: Path, env: dict) -> None:
    """The logs hold 11-02 only; 11-03 is landed empty, with no trailing batch to compare."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(lines(50))
    day = Interval.parse("2026-11-03", "2026-11-04")
    engagement("extract", "support-site", "--logs", str(logs), *interval_args(day), env=env)
    result = engagement(
        "load", "--source", "support-site", *interval_args(day), env=env, check=False
    )
    assert result.returncode == 3
    assert refusal(result).startswith(
        f"engagement: batch refused: support_site batch {day.batch_id} failed 1 check(s):"
        f" 0 records: the support_site batch {day.batch_id} is empty (1 log file(s), 50 lines"
        " read, none of them in 2026-11-03T00:00:00Z - 2026-11-04T00:00:00Z: check --logs or"
        " SUPPORT_SITE_LOGS); a real quiet day is accepted with --allow-empty"
    )
    raw_db = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    assert_refused_not_loaded(raw_db, day.batch_id)
    released = engagement(
        "quarantine", "release", day.batch_id, "--allow-empty", "--no-build", env=env
    )
    assert json.loads(released.stdout)["loaded"] == {"support_site.requests": 0}
    with duckdb.connect(str(raw_db), read_only=True) as con:
        assert con.execute("select batch_id, records from main.batches").fetchall() == [
            (day.batch_id, 0)
        ]


def test_an_empty_x_batch_is_refused_and_allowed(tmp_path: Path) -> None:
    from tests.test_warehouse_x import landed_batch

    batch = landed_batch(tmp_path / "raw" / "x", date(2026, 11, 2), [], [])
    assert gate.validate(batch, allow_empty=True).failures == []
    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(batch, tmp_path / "quarantine", min_volume_share=0.1)
    assert refused.value.failed == ["expect_table_row_count_to_be_between"]
    assert refused.value.reasons[0].startswith(
        f"0 records: the x batch {DAY.batch_id} is empty (no post or mention of the accounts"
        " (acmecloud) in the interval)"
    )


# --- damaged files -----------------------------------------------------------------------


def sample_file(logs: Path, name: str) -> tuple[Path, Interval]:
    """A file of the sample logs (rotated a day per file, newest first) and its day."""
    paths = write_sample(logs)
    age = [p.name for p in paths].index(name)
    day = SAMPLE_START + timedelta(days=SAMPLE_DAYS - 1 - age)
    return logs / name, Interval.parse(str(day), str(day + timedelta(days=1)))


def test_a_truncated_gzip_of_the_sample_makes_a_partial_batch_refused_until_accepted(
    tmp_path: Path, env: dict
) -> None:
    damaged, day = sample_file(tmp_path / "logs", "access.log.2.gz")
    whole = gzip.decompress(damaged.read_bytes()).decode().splitlines()
    cut = damaged.stat().st_size // 2
    damaged.write_bytes(damaged.read_bytes()[:cut])
    env = dict(env, SUPPORT_SITE_LOGS=str(tmp_path / "logs"))

    extracted = engagement("extract", "support-site", *interval_args(day), env=env)
    summary = json.loads(extracted.stdout.splitlines()[-1])
    manifest = read_manifest(Path(summary["path"]))
    [entry] = manifest.damaged_files
    kept = entry.lines_read
    assert entry.path == str(damaged) and entry.read_error.startswith("truncated gzip")
    assert (entry.damage_offset, entry.bytes_unread, entry.lines_kept) == (cut, 0, kept)
    assert entry.lines_lost_estimate == 0  # what was cut off is not in the file
    assert len(whole) // 3 < kept < len(whole)
    assert manifest.is_partial and manifest.lines_lost_estimate == 0
    rows = pq.read_table(Path(summary["path"]) / "lines.parquet").to_pylist()
    assert [r["line_no"] for r in rows if r["source_file"] == str(damaged)][-1] <= kept

    load = ["load", "--source", "support-site", *interval_args(day)]
    result = engagement(*load, env=env, check=False)
    assert result.returncode == 3
    assert (
        f"{damaged} is damaged at byte {cut:,} (truncated gzip stream): {kept:,} lines kept, the"
        " lines cut off its end are lost (how many is unknown); accept the partial batch with"
        f" engagement quarantine release {day.batch_id} --accept-partial." in refusal(result)
    )
    raw_db = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    assert_refused_not_loaded(raw_db, day.batch_id)
    again = engagement("quarantine", "release", day.batch_id, env=env, check=False)
    assert again.returncode == 3 and "--accept-partial" in refusal(again)

    released = engagement("quarantine", "release", day.batch_id, "--accept-partial", env=env)
    loaded_summary, built = map(json.loads, released.stdout.splitlines())  # loaded, published
    assert loaded_summary["loaded"] == {"support_site.requests": manifest.records}
    assert manifest.records > 0
    with duckdb.connect(str(raw_db), read_only=True) as con:
        [(loaded,)] = con.execute("select manifest from main.batches").fetchall()
    [file] = [f for f in json.loads(loaded)["files"] if f.get("read_error")]
    assert (file["path"], file["damage_offset"], file["lines_kept"]) == (str(damaged), cut, kept)
    assert engagement("quarantine", "list", env=env).stdout.startswith("nothing in quarantine")
    # published: the day is partial in the coverage mart, saying which file and where
    with duckdb.connect(built["published"], read_only=True) as con:
        status, reason = con.execute(
            """
            select status, status_reason from marts.agg_daily_source_coverage
            where source = 'support_site' and date_day = ?
            """,
            [day.start.date()],
        ).fetchone()
    assert status == "partial" and damaged.name in reason and f"{cut}" in reason, reason


def assert_refused_not_loaded(raw_db: Path, batch_id: str) -> None:
    """The refusal is recorded in the raw warehouse, and nothing of the batch is loaded."""
    with duckdb.connect(str(raw_db), read_only=True) as con:
        assert con.execute("select count(*) from main.batches").fetchone() == (0,)
        assert con.execute("select count(*) from support_site.requests").fetchone() == (0,)
        refused = con.execute("select source, batch_id from main.refusals").fetchall()
    assert refused == [("support_site", batch_id)]


def gzip_damaged_at(path: Path, text: bytes, cut: int) -> int:
    """`text` gzipped to `path`, a full flush after its first `cut` bytes and the byte after
    the flush made an invalid deflate block header (zlib refuses it at once); its offset."""
    deflate = zlib.compressobj(wbits=31)
    data = bytearray(deflate.compress(text[:cut]) + deflate.flush(zlib.Z_FULL_FLUSH))
    at = len(data)
    data += deflate.compress(text[cut:]) + deflate.flush()
    data[at] = 0b111  # the last block, of type 3: there is no such type
    path.write_bytes(bytes(data))
    return at


def test_a_corrupt_block_inside_a_gzip_is_located_and_what_follows_estimated(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log.1.gz"
    count, kept = 20_000, 12_000
    text = lines(count).encode()
    at = gzip_damaged_at(log, text, len(lines(kept).encode()))
    assert at > 256 * 1024  # in the file's second chunk read
    summary = access_log.extract(str(log), DAY, tmp_path / "raw", key=TEST_IP_KEY)
    manifest = read_manifest(Path(summary.path))
    [entry] = manifest.damaged_files
    assert entry.read_error == "corrupt gzip data: Error -3 while decompressing data:" + (
        " invalid block type"
    )
    assert (entry.damage_offset, entry.lines_kept, entry.lines_read) == (at, kept, kept)
    assert entry.bytes_unread == log.stat().st_size - at
    # every line up to the damage is kept, those of its chunk too
    rows = pq.read_table(Path(summary.path) / "lines.parquet").to_pylist()
    assert [r["line_no"] for r in rows] == list(range(1, kept + 1))
    originals = text.decode().splitlines()
    for row in rows[-100:]:
        target = originals[row["line_no"] - 1].split('"')[1].split()[1]
        assert f"{row['path']}?{row['query_string']}" == target
    # the rest, at the rate of what was read: about 40% of the file's lines
    expected = entry.bytes_unread * entry.lines_kept / entry.damage_offset
    assert entry.lines_lost_estimate == round(expected)
    assert abs(entry.lines_kept + entry.lines_lost_estimate - count) < count * 0.02
    assert manifest.lines_lost_estimate == entry.lines_lost_estimate

    with pytest.raises(gate.BatchRejected) as refused:
        gate.gate(Path(summary.path), tmp_path / "quarantine")
    assert refused.value.failed == ["expect_column_values_to_be_between(damaged_files)"]
    assert refused.value.reasons == [
        f"{log} is damaged at byte {entry.damage_offset:,} (corrupt gzip data):"
        f" {entry.lines_kept:,} lines kept, ~{entry.lines_lost_estimate:,} lost; accept"
        f" the partial batch with engagement quarantine release {DAY.batch_id} --accept-partial"
    ]
    moved = tmp_path / "quarantine" / "support_site" / DAY.batch_id
    report = json.loads((moved / gate.REPORT).read_text())
    assert report["damaged_files"][0]["damage_offset"] == entry.damage_offset
    assert gate.validate(moved, accept_partial=True).failures == []


def test_a_gzip_damaged_before_its_first_line_is_estimated_at_a_typical_rate(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log.2.gz"
    data = gzip.compress(lines(2_000).encode(), mtime=0)
    log.write_bytes(data[:12] + bytes(64) + data[76:])  # the first deflate bytes zeroed
    summary = access_log.extract(str(log), DAY, tmp_path / "raw", key=TEST_IP_KEY)
    [entry] = read_manifest(Path(summary.path)).damaged_files
    assert (entry.lines_kept, entry.damage_offset) == (0, entry.damage_offset)
    assert entry.damage_offset < 12 + 64
    unread = log.stat().st_size - entry.damage_offset
    assert entry.lines_lost_estimate == -(-unread // access_log.TYPICAL_LINE_BYTES[True]) > 0


class FailingDisk(io.RawIOBase):
    """A real file whose reads fail with EIO past byte `bad` (a bad block of the disk)."""

    def __init__(self, path: Path, bad: int) -> None:
        self.inner, self.bad = open(path, "rb"), bad  # noqa: SIM115

    def read(self, size: int = -1) -> bytes:
        if self.inner.tell() + max(size, 0) > self.bad:
            raise OSError(errno.EIO, "Input/output error")
        return self.inner.read(size)


def test_a_block_that_cannot_be_read_stops_the_file_where_it_is(tmp_path: Path) -> None:
    log = tmp_path / "access.log.1.gz"
    log.write_bytes(gzip.compress(lines(30_000).encode(), mtime=0))
    errors: list[access_log.Damage] = []
    disk = FailingDisk(log, 300 * 1024)
    content = b"".join(access_log._blocks(disk, True, 1 << 20, errors))  # noqa: SLF001
    disk.inner.close()
    assert errors == [access_log.Damage("unreadable block: Input/output error", 256 * 1024)]
    assert lines(30_000).encode().startswith(content) and content.count(b"\n") > 1000


def test_a_damaged_file_makes_partial_only_the_batches_its_lost_lines_may_belong_to(
    tmp_path: Path, env: dict
) -> None:
    """A truncated access.log.2.gz (11-06) is read on every run (its span is not known
    whole). Its lost lines follow its last line kept (11-06) and precede the first line of
    access.log.1 (11-07, a little after midnight): 11-05 and 11-08 are complete, 11-06 and
    (strictly: a few seconds of it) 11-07 partial."""
    from engagement import pipeline
    from engagement.settings import Settings

    damaged, day = sample_file(tmp_path / "logs", "access.log.2.gz")
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    settings = Settings.from_env(dict(env, SUPPORT_SITE_LOGS=str(tmp_path / "logs")))
    batches = {}
    for offset in (0, -1, 1, 2):
        start = day.start + timedelta(days=offset)
        interval = Interval(start, start + timedelta(days=1))
        summary = pipeline.extract_support_site(settings, interval)
        manifest = read_manifest(Path(summary.path))
        [entry] = [f for f in manifest.files if f.path == str(damaged)]
        assert summary.warnings == [f"{damaged}: {entry.read_error or entry.damage_elsewhere}"]
        assert manifest.records > 1000 and entry.damage_offset > 0
        batches[offset] = (manifest.is_partial, entry.read_error, entry.damage_elsewhere)
    reason = "truncated gzip stream: kept the lines before the damage"
    assert batches[0] == batches[1] == (True, reason, None)
    partial, error, elsewhere = batches[-1]
    assert (partial, error) == (False, None)
    assert elsewhere.startswith(f"{reason} (its lost lines lie after 2026-11-06T")
    assert elsewhere.endswith(", the interval's end or later)")
    partial, error, elsewhere = batches[2]
    assert (partial, error) == (False, None)
    assert elsewhere.startswith(f"{reason} (its lost lines lie before 2026-11-07T00:0")
    assert elsewhere.endswith(", where the next file begins)")
