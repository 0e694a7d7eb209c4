"""The quarantine as a workflow: the batches the gate refused, why, and their release.

A refused batch sits whole in `quarantine/<source>/<batch>/` with the gate's report
(`validation.json`) and Great Expectations' Data Docs page of it (`data_docs.html`).
`release` puts it back among the batch's versions as a candidate, validates it again
(after a fix of the gate's settings, with `allow_empty` for a real quiet day, or
`accept_partial` for a batch whose files were damaged inside), which makes it the version
in force, and loads it (`engagement quarantine release` then builds and publishes the mart,
unless `--no-build`); a batch whose data was wrong is not released but extracted again
once the source is fixed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engagement import landing, pipeline
from engagement.errors import UsageError
from engagement.gate import DATA_DOCS, REPORT
from engagement.landing import Interval, Source
from engagement.settings import Settings


class Quarantined(BaseModel):
    """A refused batch: where it is and the gate's reasons, in plain words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    batch: str
    path: Path
    reasons: list[str]

    def line(self) -> str:
        return f"{self.source.value} {self.batch}: {'; '.join(self.reasons)}"


def _read(path: Path) -> Quarantined:
    report = json.loads((path / REPORT).read_text()) if (path / REPORT).is_file() else {}
    reasons = [failure["reason"] for failure in report.get("failed", [])]
    reasons = reasons or [report.get("error", f"no {REPORT}: refused before this version")]
    return Quarantined(
        source=Source.parse(path.parent.name), batch=path.name, path=path, reasons=reasons
    )


def batches(settings: Settings) -> list[Quarantined]:
    root = settings.quarantine_dir
    return [
        _read(path)
        for source in Source
        if (root / source).is_dir()
        for path in sorted((root / source).iterdir())
        if path.is_dir() and not path.name.startswith(".")
    ]


def find(settings: Settings, batch: str, source: Source | None = None) -> Quarantined:
    found = [q for q in batches(settings) if q.batch == batch and source in (None, q.source)]
    if not found:
        raise UsageError(
            f"no quarantined batch {batch}{f' of {source}' if source else ''} under"
            f" {settings.quarantine_dir} (engagement quarantine list shows them)"
        )
    if len(found) > 1:
        raise UsageError(f"both sources have a quarantined batch {batch}: pass --source")
    return found[0]


def show(settings: Settings, batch: str, source: Source | None = None) -> str:
    refused = find(settings, batch, source)
    lines = [f"{refused.source.value} batch {refused.batch}, at {refused.path}:"]
    lines += [f"  - {reason}" for reason in refused.reasons]
    lines.append(f"Great Expectations' validation result: {refused.path / REPORT}")
    if (refused.path / DATA_DOCS).is_file():
        lines.append(f"its Data Docs (open in a browser): {refused.path / DATA_DOCS}")
    return "\n".join(lines)


def release(
    settings: Settings,
    batch: str,
    source: Source | None = None,
    allow_empty: bool = False,
    accept_partial: bool = False,
) -> pipeline.Loaded:
    """Put the refused version back as a candidate, validate it again (it becomes the
    version in force), then load it. Raises BatchRejected (and quarantines it again) when
    it still fails. `allow_empty` accepts an empty batch (or a real quiet day under the
    volume check), `accept_partial` one whose files were damaged inside."""
    refused = find(settings, batch, source)
    interval = Interval.from_batch_id(refused.batch)
    raw = settings.raw_dir
    fields = landing.manifest_fields(refused.path)
    version = fields.version if fields is not None else None
    current = landing.in_force(raw, refused.source, interval)
    if current is not None and (version is None or version <= current[0]):
        raise UsageError(
            f"{current[1]} holds a newer batch of this interval (version {current[0]}): the"
            f" quarantined one is stale (remove {refused.path} once you no longer need it)"
        )
    version = version or landing.legacy_version(refused.path)
    target = landing.version_dir(raw, refused.source, interval, version)
    for report in (REPORT, DATA_DOCS):
        (refused.path / report).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(refused.path, target)
    pipeline.validate(
        settings,
        refused.source,
        interval,
        allow_empty,
        version=version,
        accept_partial=accept_partial,
    )
    return pipeline.load_batch(settings, refused.source, interval)
