"""The versions of the raw batches: list them, restore a superseded one.

Every extraction lands a new version of its interval's batch; the gate makes the newest
that passes the version in force (`raw/<source>/<batch>` links to it). The versions it
superseded are kept for ENGAGEMENT_RAW_RETENTION_DAYS; `restore` validates one of them
again, makes it the version in force and loads it (`engagement raw restore` then builds
and publishes the mart, unless `--no-build`).
"""

from __future__ import annotations

from engagement import landing, pipeline
from engagement.errors import UsageError
from engagement.landing import Interval, Source
from engagement.settings import Settings


def find(settings: Settings, batch: str, source: Source | None = None) -> tuple[Source, Interval]:
    """The source and interval of a batch that has a version; the user's mistakes (a
    malformed id, no such batch, a batch of both sources without --source) are errors."""
    try:
        interval = Interval.from_batch_id(batch)
    except ValueError:
        raise UsageError(
            f"{batch!r} is not a batch id: expected START_END, e.g."
            " 20261105T000000Z_20261106T000000Z (engagement quarantine list and the"
            f" directories under {settings.raw_dir} show them)"
        ) from None
    sources = [source] if source else list(Source)
    found = [s for s in sources if landing.versions(settings.raw_dir, s, interval)]
    if not found:
        where = f" of {sources[0]}" if source else ""
        raise UsageError(
            f"no batch {batch}{where} under {settings.raw_dir} or {settings.versions_dir}:"
            " check the batch id (its interval, START_END) and --source"
        )
    if len(found) > 1:
        raise UsageError(f"both sources have a batch {batch}: pass --source x or support-site")
    return found[0], interval


def versions(settings: Settings, batch: str, source: Source | None = None) -> list[str]:
    """A line per version of the batch, oldest first: its status, when, its records; and
    the last refused one, when it is in quarantine."""
    found, interval = find(settings, batch, source)
    lines = []
    for version in landing.versions(settings.raw_dir, found, interval):
        when = [f"landed {landing.iso(version.landed_at)}"]
        if version.promoted_at is not None:
            when.append(f"in force from {landing.iso(version.promoted_at)}")
        if version.superseded_at is not None:
            when.append(f"superseded {landing.iso(version.superseded_at)}")
        records = "?" if version.records is None else f"{version.records:,}"
        lines.append(
            f"{found.value} {batch} {version.version}: {version.status}, {', '.join(when)};"
            f" {records} records"
        )
    refused = landing.batch_dir(settings.quarantine_dir, found, interval)
    manifest = landing.manifest_fields(refused)
    if manifest is not None:
        records = "?" if manifest.records is None else f"{manifest.records:,}"
        lines.append(
            f"{found.value} {batch} {manifest.version or '(before versions)'}: refused,"
            f" in quarantine at {refused} (engagement quarantine show {batch}); {records} records"
        )
    return lines


def restore(
    settings: Settings, batch: str, version: str, source: Source | None = None
) -> pipeline.Loaded:
    """Validate a version of the batch again, make it the version in force and load it.
    Raises BatchRejected (the version stays where it is) when it fails now."""
    found, interval = find(settings, batch, source)
    pipeline.validate(settings, found, interval, version=version)
    return pipeline.load_batch(settings, found, interval)
