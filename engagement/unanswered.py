"""Mentions that need an answer, are past their account's first-response target and are
still unanswered: listed by `engagement unanswered`, and sent once each, after a publish, to
ENGAGEMENT_ALERT_CONN_ID by the mart DAG (`notify`).

Which mentions they are is the mart's to say (marts.fct_x_mentions: needs_answer, waiting,
is_target_breached at the end of the X data); this module only lists them and remembers, in
`<ENGAGEMENT_DATA_DIR>/state/notified_mentions.json`, which ones were sent. An id leaves the
file when its mention is no longer overdue (answered, or its answer window closed)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engagement import figures
from engagement.settings import Settings

OVERDUE_SQL = """
select
    mention_id, created_at, target_due_at, mentioned_account_username, author_username,
    mention_text, is_deleted
from marts.fct_x_mentions
where needs_answer and answer_status = 'waiting' and is_target_breached
order by created_at, mention_id
"""
TEXT_CHARS = 120  # of a mention's text in a list or a notification


@dataclass(frozen=True)
class Overdue:
    mention_id: str
    created_at: datetime  # naive UTC, as in the mart
    due_at: datetime
    account: str
    author: str | None
    text: str | None
    is_deleted: bool

    @property
    def link(self) -> str:
        """The post on X (X redirects /i/web/status/ID to the author's own path)."""
        return f"https://x.com/{self.author or 'i/web'}/status/{self.mention_id}"

    def age(self, now: datetime) -> str:
        """How long ago it was posted: `3 h 05 min`, `2 d 4 h`."""
        minutes = max(int((now - self.created_at.replace(tzinfo=UTC)).total_seconds() // 60), 0)
        days, minutes = divmod(minutes, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        return f"{days} d {hours} h" if days else f"{hours} h {minutes:02d} min"

    def line(self, now: datetime) -> str:
        text = "(deleted)" if self.is_deleted or self.text is None else " ".join(self.text.split())
        if len(text) > TEXT_CHARS:
            text = text[: TEXT_CHARS - 1] + "…"
        author = f"@{self.author}" if self.author else "(unknown)"
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} UTC, {self.age(now)} ago, {author} to"
            f" @{self.account}: {self.link}\n    {text}"
        )


def overdue(published_db: Path) -> list[Overdue]:
    """The overdue mentions of the published mart, oldest first."""
    with figures.connect(published_db) as con:
        return [Overdue(*row) for row in con.execute(OVERDUE_SQL).fetchall()]


def message(items: list[Overdue], now: datetime) -> str:
    """The notification (or the terminal list): the count, then each one, oldest first."""
    head = (
        f"engagement: {len(items)} mention{'s' if len(items) != 1 else ''} needing an answer"
        " past the account's first-response target and still unanswered (oldest first):"
    )
    return "\n".join([head, *(f"- {item.line(now)}" for item in items)])


def notify(
    settings: Settings, send: Callable[[str, list[Overdue]], None], now: datetime | None = None
) -> list[Overdue]:
    """Send the overdue mentions not sent before as one message (`send(text, items)`), then
    record them as sent; returns those sent. One notifier at a time (a lock beside the
    record); a failed send records nothing, so the next publish sends them again."""
    now = now or datetime.now(UTC)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    record = settings.state_dir / "notified_mentions.json"
    with open(settings.state_dir / ".notified_mentions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sent: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
        items = overdue(settings.published_db)
        new = [item for item in items if item.mention_id not in sent]
        if new:
            send(message(new, now), new)
        still = {item.mention_id for item in items}
        kept = {mention: at for mention, at in sent.items() if mention in still}
        kept |= {item.mention_id: now.isoformat() for item in new}
        if kept != sent:
            partial = record.with_suffix(".json.partial")
            partial.write_text(json.dumps(kept, indent=0, sort_keys=True))
            os.replace(partial, record)
    return new
