"""The quarantine as a workflow: the batches the gate refused, why, and their release.

A refused batch sits whole in `quarantine/<source>/<batch>/` with the gate's report
(`validation.json`) and Great Expectations' Data Docs page of it (`data_docs.html`).
`release` puts it back where it was landed, validates it again (after a fix of the gate's
settings, or with `allow_empty` for a real quiet day) and loads it (`engagement quarantine
release` then builds and publishes the mart, unless `--no-build`); a batch whose data was
wrong is not released but extracted again once the source is fixed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engagement import pipeline
from engagement.gate import DATA_DOCS, REPORT
from engagement.landing import Interval, Source, batch_dir
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


def find(settings: Settings, batch: str, source: str | None = None) -> Quarantined:
    found = [q for q in batches(settings) if q.batch == batch and source in (None, q.source.value)]
    if not found:
        raise LookupError(
            f"no quarantined batch {batch}{f' of {source}' if source else ''} under"
            f" {settings.quarantine_dir} (engagement quarantine list shows them)"
        )
    if len(found) > 1:
        raise LookupError(f"both sources have a quarantined batch {batch}: pass --source")
    return found[0]


def show(settings: Settings, batch: str, source: str | None = None) -> str:
    refused = find(settings, batch, source)
    lines = [f"{refused.source.value} batch {refused.batch}, at {refused.path}:"]
    lines += [f"  - {reason}" for reason in refused.reasons]
    lines.append(f"Great Expectations' validation result: {refused.path / REPORT}")
    if (refused.path / DATA_DOCS).is_file():
        lines.append(f"its Data Docs (open in a browser): {refused.path / DATA_DOCS}")
    return "\n".join(lines)


def release(
    settings: Settings, batch: str, source: str | None = None, allow_empty: bool = False
) -> pipeline.Loaded:
    """Validate the batch again where it was landed, then load it. Raises BatchRejected
    (and quarantines it again) when it still fails."""
    refused = find(settings, batch, source)
    interval = Interval.from_batch_id(refused.batch)
    landed = batch_dir(settings.raw_dir, refused.source, interval)
    if landed.exists():
        raise ValueError(
            f"{landed} holds a newer batch of this interval: the quarantined one is stale"
            f" (remove {refused.path} once you no longer need it)"
        )
    for report in (REPORT, DATA_DOCS):
        (refused.path / report).unlink(missing_ok=True)
    landed.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(refused.path, landed)
    pipeline.validate(settings, refused.source, interval, allow_empty)
    return pipeline.load_batch(settings, refused.source, interval)
