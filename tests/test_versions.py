"""Raw batch versions: a re-extraction lands beside the batch in force, only a version that
passes the gate replaces it, superseded versions are listed, restored and pruned."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from engagement import gate, landing, pipeline, quarantine, raw
from engagement.errors import UsageError
from engagement.landing import Interval, Source, read_manifest
from engagement.settings import Settings
from extract import access_log
from tests.conftest import FIRST_DAY, TEST_IP_KEY, SampleRun, engagement, mart_hashes
from tests.test_gate import daily_log

SITE = Source.SUPPORT_SITE
# a log in a format the gate refuses: nothing parses as combined
WRONG_FORMAT = "".join(
    f'{{"ts": "2015-05-20T10:00:{s:02d}Z", "path": "/", "status": 200}}\n' for s in range(40)
)


def tree_hash(root: Path) -> str:
    """Every file under `root` (following symlinks) and every symlink's target."""
    digest = hashlib.sha256()
    for directory, names, files in sorted(os.walk(root, followlinks=True)):
        names.sort()
        for name in sorted(names + files):
            path = Path(directory) / name
            digest.update(str(path.relative_to(root)).encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def raw_tables(raw_db: Path, skip: tuple[str, ...] = ("main.refusals",)) -> dict[str, str]:
    """A hash of every raw warehouse table's full content but `skip`'s."""
    with duckdb.connect(str(raw_db), read_only=True) as con:
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() order by 1"
        ).fetchall()
        return {
            table: hashlib.sha256(
                repr(con.execute(f"select * from {table} order by all").fetchall()).encode()
            ).hexdigest()
            for (table,) in tables
            if table not in skip
        }


def refusals(raw_db: Path) -> list[tuple]:
    with duckdb.connect(str(raw_db), read_only=True) as con:
        return con.execute(
            "select source, batch_id, version, reasons from main.refusals order by all"
        ).fetchall()


def loaded_version(raw_db: Path, batch: str) -> tuple:
    with duckdb.connect(str(raw_db), read_only=True) as con:
        return con.execute(
            "select version, records from main.batches where batch_id = ?", [batch]
        ).fetchone()


def land(settings: Settings, day: Interval, log: Path) -> pipeline.Loaded:
    pipeline.extract_support_site(settings, day, str(log))
    pipeline.validate(settings, SITE, day)
    return pipeline.load_batch(settings, SITE, day)


@pytest.fixture
def three_days(tmp_path: Path, env: dict[str, str]) -> tuple[Settings, list[Interval], Path]:
    """Three days of 100 lines each, landed and loaded."""
    log = tmp_path / "access.log"
    days = daily_log(log, {18: 100, 19: 100, 20: 100})
    settings = Settings.from_env(env)
    for day in days:
        land(settings, day, log)
    return settings, days, log


def test_a_refused_reextraction_leaves_the_batch_in_force_and_a_passing_one_replaces_it(
    three_days: tuple[Settings, list[Interval], Path], tmp_path: Path
) -> None:
    settings, days, log = three_days
    day = days[2]
    link = settings.raw_dir / "support_site" / day.batch_id
    assert link.is_symlink() and read_manifest(link).records == 100
    first = Path(os.readlink(link)).name
    raw_before, tables_before = tree_hash(settings.raw_dir), raw_tables(settings.raw_db)
    broken = tmp_path / "broken.log"
    broken.write_text(WRONG_FORMAT)
    candidate = pipeline.extract_support_site(settings, day, str(broken))
    assert candidate.path.parent == settings.versions_dir / "support_site" / day.batch_id
    assert read_manifest(candidate.path).version == candidate.path.name > first
    with pytest.raises(gate.BatchRejected, match="does not match SUPPORT_SITE_LOG_FORMAT"):
        pipeline.validate(settings, SITE, day)
    # the batch in force, its files and its load are as they were; the refusal is recorded
    assert Path(os.readlink(link)).name == first
    assert (tree_hash(settings.raw_dir), raw_tables(settings.raw_db)) == (
        raw_before,
        tables_before,
    )
    quarantined = settings.quarantine_dir / "support_site" / day.batch_id
    assert read_manifest(quarantined).version == candidate.path.name
    assert not candidate.path.exists()
    [(source, batch, version, reasons)] = refusals(settings.raw_db)
    assert (source, batch, version) == ("support_site", day.batch_id, candidate.path.name)
    assert "does not match SUPPORT_SITE_LOG_FORMAT=combined" in json.loads(reasons)[0]
    [in_force] = landing.versions(settings.raw_dir, SITE, day)
    assert raw.versions(settings, day.batch_id, SITE) == [
        f"support_site {day.batch_id} {first}: in force, landed"
        f" {landing.iso(in_force.landed_at)}, in force from"
        f" {landing.iso(in_force.promoted_at)}; 100 records",
        f"support_site {day.batch_id} {candidate.path.name}: refused, in quarantine at"
        f" {quarantined} (engagement quarantine show {day.batch_id}); 0 records",
    ]
    # its load is the version in force, as it was
    assert loaded_version(settings.raw_db, day.batch_id) == (first, 100)
    # a rerun without a new extraction says where the refused batch is
    with pytest.raises(
        UsageError, match=f"refused by the gate and is in quarantine at {quarantined}"
    ):
        pipeline.validate(settings, SITE, day)

    # the source fixed (the day has 120 lines now): the new version passes and replaces it
    daily_log(log, {18: 100, 19: 100, 20: 120})
    second = land(settings, day, log)
    assert second.loaded == {"support_site.requests": 120} and second.version > first
    assert Path(os.readlink(link)).name == second.version
    assert loaded_version(settings.raw_db, day.batch_id) == (second.version, 120)
    assert refusals(settings.raw_db) == []  # deleted in the load's transaction
    assert not quarantined.exists()
    listed = landing.versions(settings.raw_dir, SITE, day)
    assert [(v.version, v.status, v.records) for v in listed] == [
        (first, "superseded", 100),
        (second.version, "in force", 120),
    ]
    assert listed[0].superseded_at == listed[1].promoted_at


def test_a_superseded_version_is_restored_and_stays_in_force(
    three_days: tuple[Settings, list[Interval], Path],
) -> None:
    settings, days, log = three_days
    day = days[1]
    [first] = landing.versions(settings.raw_dir, SITE, day)
    daily_log(log, {18: 100, 19: 90, 20: 100})
    newer = land(settings, day, log)
    assert loaded_version(settings.raw_db, day.batch_id) == (newer.version, 90)
    restored = raw.restore(settings, day.batch_id, first.version, SITE)
    assert (restored.version, restored.loaded) == (first.version, {"support_site.requests": 100})
    assert loaded_version(settings.raw_db, day.batch_id) == (first.version, 100)
    # the newer version, once in force, is no candidate: a rerun validates the one in force
    assert pipeline.validate(settings, SITE, day).version == first.version
    statuses = [(v.version, v.status) for v in landing.versions(settings.raw_dir, SITE, day)]
    assert statuses == [(first.version, "in force"), (newer.version, "superseded")]
    with pytest.raises(UsageError, match="no version 20990101T000000000000Z of the support_site"):
        raw.restore(settings, day.batch_id, "20990101T000000000000Z")
    with pytest.raises(UsageError, match="no batch 20150101T000000Z_20150102T000000Z under"):
        raw.restore(settings, "20150101T000000Z_20150102T000000Z", first.version)
    with pytest.raises(UsageError, match="'yesterday' is not a batch id"):
        raw.versions(settings, "yesterday")


def test_a_refused_version_released_from_quarantine_becomes_the_one_in_force(
    three_days: tuple[Settings, list[Interval], Path],
) -> None:
    """A real quiet day refused as an outage, released with --allow-empty."""
    settings, days, log = three_days
    day = days[2]
    daily_log(log, {18: 100, 19: 100, 20: 5})
    pipeline.extract_support_site(settings, day, str(log))
    with pytest.raises(gate.BatchRejected, match="5 records, under 10%"):
        pipeline.validate(settings, SITE, day)
    [(_, _, version, _)] = refusals(settings.raw_db)
    with pytest.raises(gate.BatchRejected):  # as it is, it fails again and goes back
        quarantine.release(settings, day.batch_id)
    assert loaded_version(settings.raw_db, day.batch_id)[1] == 100
    released = quarantine.release(settings, day.batch_id, allow_empty=True)
    assert (released.version, released.loaded) == (version, {"support_site.requests": 5})
    assert refusals(settings.raw_db) == []
    assert [v.status for v in landing.versions(settings.raw_dir, SITE, day)] == [
        "superseded",
        "in force",
    ]


def test_superseded_versions_are_pruned_after_the_retention_only(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    days = daily_log(log, {18: 10, 19: 10})
    root = tmp_path / "data" / "raw"

    def version(day: Interval) -> Path:
        return Path(access_log.extract(str(log), day, root, key=TEST_IP_KEY).path)

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    old, current = version(days[0]), version(days[0])
    landing.promote(root, old, now=t0 - timedelta(days=5))
    landing.promote(root, current, now=t0)  # `old` superseded at t0
    candidate = version(days[0])  # landed, never validated
    recent, latest = version(days[1]), version(days[1])
    landing.promote(root, recent, now=t0)
    landing.promote(root, latest, now=t0 + timedelta(days=20))  # `recent` superseded at t0+20
    assert landing.prune(root, 30, now=t0 + timedelta(days=29, hours=23)) == []
    assert landing.prune(root, 30, now=t0 + timedelta(days=30)) == [old]
    assert not old.exists()
    assert all(p.is_dir() for p in (current, candidate, recent, latest))
    assert landing.prune(root, 30, now=t0 + timedelta(days=51)) == [recent]
    assert [(v.path, v.status) for v in landing.versions(root, SITE, days[0])] == [
        (current, "in force"),
        (candidate, "candidate"),
    ]
    assert landing.newest_candidate(root, SITE, days[0]) == candidate


def test_with_no_retention_a_promotion_removes_the_version_it_supersedes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    log = tmp_path / "access.log"
    [day] = daily_log(log, {18: 10})
    settings = Settings.from_env(dict(env, ENGAGEMENT_RAW_RETENTION_DAYS="0"))
    first = land(settings, day, log)
    kept = Settings.from_env(env)  # 30 days
    second = land(kept, day, log)
    assert [v.version for v in landing.versions(settings.raw_dir, SITE, day)] == [
        first.version,
        second.version,
    ]
    third = land(settings, day, log)
    assert [(v.version, v.status) for v in landing.versions(settings.raw_dir, SITE, day)] == [
        (third.version, "in force")
    ]


def test_a_batch_landed_before_versions_is_moved_into_versions_on_its_first_promotion(
    tmp_path: Path, env: dict[str, str]
) -> None:
    log = tmp_path / "access.log"
    [day] = daily_log(log, {18: 50})
    settings = Settings.from_env(env)
    landed = pipeline.extract_support_site(settings, day, str(log)).path
    legacy = settings.raw_dir / "support_site" / day.batch_id  # as batches were landed
    legacy.parent.mkdir(parents=True)
    os.rename(landed, legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    (legacy / "manifest.json").write_text(json.dumps({**manifest, "version": None}))
    shutil.rmtree(landed.parent)
    files = tree_hash(legacy)
    [old] = landing.versions(settings.raw_dir, SITE, day)
    assert (old.status, old.path, old.records) == ("in force", legacy, 50)
    assert pipeline.load_batch(settings, SITE, day).loaded == {"support_site.requests": 50}
    assert loaded_version(settings.raw_db, day.batch_id) == (None, 50)

    daily_log(log, {18: 60})
    new = land(settings, day, log)
    assert legacy.is_symlink() and Path(os.readlink(legacy)).name == new.version
    moved = settings.versions_dir / "support_site" / day.batch_id / old.version
    assert tree_hash(moved) == files
    assert [(v.version, v.status) for v in landing.versions(settings.raw_dir, SITE, day)] == [
        (old.version, "superseded"),
        (new.version, "in force"),
    ]
    restored = raw.restore(settings, day.batch_id, old.version)
    assert restored.loaded == {"support_site.requests": 50}
    assert Path(os.readlink(legacy)).name == old.version


@pytest.mark.e2e
def test_a_refused_reextraction_leaves_raw_files_raw_warehouse_and_mart_as_they_were(
    tmp_path: Path, sandbox_url: str, sample_day: SampleRun
) -> None:
    """The acceptance test: a good interval loaded, built and published (conftest's run of
    the sample's first day); re-extracted from a broken log, it is refused and nothing in
    force changes; restored from its versions."""
    env = sample_day.copy(tmp_path, sandbox_url)
    settings = Settings.from_env(env)
    interval = list(FIRST_DAY)
    batch = "20261102T000000Z_20261103T000000Z"
    published = settings.published_db
    before = (
        tree_hash(settings.raw_dir),
        raw_tables(settings.raw_db),
        published.read_bytes(),
        mart_hashes(published),
    )
    [good] = landing.versions(settings.raw_dir, SITE, Interval.from_batch_id(batch))

    broken = tmp_path / "broken" / "access.log"
    broken.parent.mkdir()
    broken.write_text(WRONG_FORMAT.replace("2015-05-20", "2026-11-02"))
    extracted = engagement("extract", "support-site", "--logs", str(broken), *interval, env=env)
    candidate = Path(json.loads(extracted.stdout.splitlines()[-1])["path"])
    assert candidate.parent == settings.versions_dir / "support_site" / batch
    refused = engagement("load", "--source", "support-site", *interval, env=env, check=False)
    assert refused.returncode == 3, refused.stderr
    assert "does not match SUPPORT_SITE_LOG_FORMAT" in refused.stderr
    after = (
        tree_hash(settings.raw_dir),
        raw_tables(settings.raw_db),
        published.read_bytes(),
        mart_hashes(published),
    )
    assert after == before
    assert [r[:3] for r in refusals(settings.raw_db)] == [("support_site", batch, candidate.name)]
    engagement("build", env=env)  # a build after the refusal publishes the same mart
    assert mart_hashes(published) == before[3]

    # a good extraction replaces it: the refusal is gone once it loads
    engagement("extract", "support-site", *interval, env=env)
    engagement("load", "--source", "support-site", *interval, env=env)
    assert refusals(settings.raw_db) == []
    listed = engagement("raw", "versions", batch, "--source", "support-site", env=env)
    listed = listed.stdout.splitlines()
    assert len(listed) == 2
    assert listed[0].startswith(f"support_site {batch} {good.version}: superseded, landed ")
    assert f"; {good.records:,} records" in listed[0] and ": in force, landed" in listed[1]
    restored = engagement(
        "raw", "restore", batch, good.version, "--source", "support_site", env=env
    )
    restored_summary, built = map(json.loads, restored.stdout.splitlines())  # then published
    assert restored_summary["version"] == good.version and built["changed_loads"] >= 1
    assert mart_hashes(published) == before[3]
    both = engagement("raw", "versions", batch, env=env, check=False)
    assert both.returncode == 2 and "pass --source x or support-site" in both.stderr
    unknown = engagement("raw", "restore", batch, "20261102", "--source", "x", env=env, check=False)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert f"no version 20261102 of the x batch {batch}" in unknown.stderr
    assert "engagement raw versions" in unknown.stderr
