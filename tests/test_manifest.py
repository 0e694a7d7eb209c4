"""The batch manifests' typed models read the manifests on disk and write them back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engagement.landing import (
    Endpoint,
    LogFileEntry,
    ManifestError,
    SupportSiteManifest,
    XManifest,
    manifest_fields,
    read_manifest,
    summary,
    write_manifest,
)

BATCH = {"batch": "20261105T000000Z_20261106T000000Z", "start": "2026-11-05T00:00:00Z",
         "end": "2026-11-06T00:00:00Z", "version": "20261106T010203000004Z"}  # fmt: skip
IDENTITY = {"site": "support", "file_id": "0123456789abcdef"}
COUNTS = {"lines_read": 10, "rows": 7, "quarantined": 1, "outside_interval": 2}
ZERO = dict.fromkeys(COUNTS, 0)
# a support-site manifest as extract/access_log.py writes it: a file skipped (no read_error
# key), one read whole (read_error null), one damaged inside the interval, one elsewhere
SUPPORT_SITE = BATCH | {
    "source": "support_site", "format": "combined", "records": 21, "quarantined": 3,
    "lines_read": 30, "outside_interval": 6,
    "files": [
        {"path": "/logs/a.log", **IDENTITY, "skipped": "same content as /logs/b.log", **ZERO},
        {"path": "/logs/b.log", **IDENTITY, "read_error": None, **COUNTS},
        {"path": "/logs/c.log.gz", **IDENTITY, **COUNTS,
         "read_error": "truncated gzip stream: kept the lines before the damage",
         "damage_offset": 4096, "lines_kept": 10, "bytes_unread": 0, "lines_lost_estimate": 0},
        {"path": "/logs/d.log.gz", **IDENTITY, **COUNTS, "read_error": None,
         "damage_elsewhere": "corrupt gzip data (its lost lines lie after ...)",
         "damage_offset": 100, "lines_kept": 10, "bytes_unread": 50, "lines_lost_estimate": 5},
    ],
}  # fmt: skip
X = BATCH | {
    "source": "x", "records": 12, "quarantined": 0, "accounts": ["acmecloud"], "pages": 4,
    "metrics_refreshed": 3, "deleted": 1, "refresh_window_start": "2026-10-30T00:00:00Z",
    "gaps": [{"account": "acmecloud", "endpoint": "tweets", "cap": 20,
              "newer_than_interval": 15, "returned": 5, "complete_from": None}],
    "dm_accounts": ["acmecloud"], "dm_events": 2,
}  # fmt: skip


def _land(directory: Path, manifest: dict) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (directory / "manifest.json").write_text(text)
    return text


@pytest.mark.parametrize("written", [SUPPORT_SITE, X], ids=["support_site", "x"])
def test_a_manifest_on_disk_reads_typed_and_writes_back_byte_identical(
    tmp_path: Path, written: dict
) -> None:
    text = _land(tmp_path / "on_disk", written)
    manifest = read_manifest(tmp_path / "on_disk")
    (tmp_path / "again").mkdir()
    write_manifest(tmp_path / "again", manifest)
    assert (tmp_path / "again" / "manifest.json").read_text() == text


def test_the_typed_entries_say_what_the_readers_ask(tmp_path: Path) -> None:
    _land(tmp_path / "site", SUPPORT_SITE)
    site = read_manifest(tmp_path / "site")
    assert isinstance(site, SupportSiteManifest)
    assert [Path(f.path).name for f in site.damaged_files] == ["c.log.gz"]
    assert site.is_partial and site.lines_lost_estimate == 0
    assert summary(site, tmp_path).warnings == [
        f"/logs/{name}: {reason}"
        for name, reason in (("c.log.gz", SUPPORT_SITE["files"][2]["read_error"]),
                             ("d.log.gz", SUPPORT_SITE["files"][3]["damage_elsewhere"]))
    ]  # fmt: skip
    _land(tmp_path / "x", X)
    x = read_manifest(tmp_path / "x")
    assert isinstance(x, XManifest)
    assert x.gaps[0].endpoint is Endpoint.TWEETS and x.gaps[0].complete_from is None
    # a manifest landed before DMs were read: no account's DMs known
    older = {k: v for k, v in X.items() if k not in ("dm_accounts", "dm_events")}
    _land(tmp_path / "x_older", older)
    assert read_manifest(tmp_path / "x_older").dm_accounts == []


def test_an_entry_set_by_the_extraction_writes_only_what_was_set() -> None:
    entry = LogFileEntry(path="/logs/e.log", **IDENTITY)
    entry.read_error = None  # read whole: the key is there, null
    assert entry.model_dump(mode="json") == {"path": "/logs/e.log", **IDENTITY, "read_error": None}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {"files": [{"path": "/logs/a.log", **IDENTITY, "lines_read": "ten"}]},
            "files.0.lines_read",
        ),
        ({"files": [{"path": "/logs/a.log", **IDENTITY, "offset": 3}]}, "files.0.offset"),
        ({"gaps": [{**X["gaps"][0], "endpoint": "lookup"}]}, "gaps.0.endpoint"),
    ],
    ids=["count of the wrong type", "unknown field", "a gap of a non-timeline endpoint"],
)
def test_a_bad_sub_entry_is_refused_naming_where(tmp_path: Path, change: dict, where: str) -> None:
    base = X if "gaps" in change else SUPPORT_SITE
    _land(tmp_path, base | change)
    with pytest.raises(ManifestError, match=rf"manifest.json: {where}: "):
        read_manifest(tmp_path)


def test_a_refused_batch_s_fields_read_leniently(tmp_path: Path) -> None:
    _land(tmp_path, {"source": "facebook", "version": 3, "records": "many"})
    assert manifest_fields(tmp_path).model_dump() == {"version": None, "records": None}
    _land(tmp_path, SUPPORT_SITE)
    assert manifest_fields(tmp_path).model_dump() == {"version": BATCH["version"], "records": 21}
    assert manifest_fields(tmp_path / "nothing") is None
