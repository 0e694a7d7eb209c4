"""Support-site access logs: read plain and gzipped files, keep the lines of one interval.

Every line read is accounted for: it is a parsed row of this interval, a parsed row of
another interval, or a quarantined line (with its file, line number and raw bytes).
"""

from __future__ import annotations

import glob
import gzip
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from extract.batches import Interval, iso, landing, summary, write_manifest

# Apache/nginx combined format; the common format is the same without referrer and agent.
LINE = re.compile(
    r"^(?P<client_ip>\S+) (?P<ident>\S+) (?P<auth_user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)")?\s*$'
)
TS = re.compile(r"(\d{2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")
MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}

ROW_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_no", pa.int64()),
        ("raw", pa.binary()),
        ("requested_at", pa.timestamp("us")),
        ("client_ip", pa.string()),
        ("method", pa.string()),
        ("target", pa.string()),
        ("protocol", pa.string()),
        ("status", pa.int32()),
        ("bytes", pa.int64()),
        ("referrer", pa.string()),
        ("user_agent", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_no", pa.int64()),
        ("raw", pa.binary()),
        ("reason", pa.string()),
    ]
)


def parse_timestamp(text: str) -> datetime | None:
    m = TS.fullmatch(text)
    if not m or m.group(2) not in MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    try:
        local = datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss))
    except ValueError:
        return None
    return local.replace(tzinfo=timezone(offset)).astimezone(UTC)


def _dash(value: str | None) -> str | None:
    return None if value in (None, "-") else value


def parse_line(text: str) -> dict | None:
    """The fields of one combined/common log line, or None when it is not such a line."""
    m = LINE.match(text)
    if not m:
        return None
    requested_at = parse_timestamp(m["ts"])
    if requested_at is None:
        return None
    parts = m["request"].split(" ")
    method, target, protocol = (parts + [None, None])[:3] if len(parts) <= 3 else (None,) * 3
    return {
        "requested_at": requested_at,
        "client_ip": m["client_ip"],
        "method": method if method and method != "-" else None,
        "target": target,
        "protocol": protocol,
        "status": int(m["status"]),
        "bytes": None if m["bytes"] == "-" else int(m["bytes"]),
        "referrer": _dash(m["referrer"]),
        "user_agent": _dash(m["user_agent"]),
    }


def read_lines(path: Path) -> tuple[list[bytes], str | None]:
    """All lines of a plain or gzipped file; a truncated gzip keeps what could be read."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines: list[bytes] = []
    error = None
    try:
        with opener(path, "rb") as handle:
            for raw in handle:
                lines.append(raw.rstrip(b"\r\n"))
    except (EOFError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return lines, error


@dataclass
class FileResult:
    rows: list[dict]
    quarantined: list[dict]
    lines_read: int
    outside: int
    read_error: str | None


def select_interval(path: Path, interval: Interval) -> FileResult:
    lines, error = read_lines(path)
    parsed = [parse_line(raw.decode("utf-8", errors="replace")) for raw in lines]
    # A line without a readable timestamp belongs to the interval of the nearest readable
    # line before it (after it, at the top of a file; the file's mtime when it has none),
    # so that every line lands in exactly one batch.
    stamps = [p["requested_at"] if p else None for p in parsed]
    last = next((s for s in stamps if s is not None), None)
    if last is None:
        last = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    for i, stamp in enumerate(stamps):
        if stamp is None:
            stamps[i] = last
        else:
            last = stamp
    result = FileResult([], [], len(lines), 0, error)
    for line_no, (raw, fields, stamp) in enumerate(zip(lines, parsed, stamps, strict=True), 1):
        if not interval.contains(stamp):
            result.outside += 1
            continue
        if fields is None:
            reason = "not a combined or common log line"
            result.quarantined.append(
                {"source_file": str(path), "line_no": line_no, "raw": raw, "reason": reason}
            )
        else:
            fields["requested_at"] = fields["requested_at"].replace(tzinfo=None)
            result.rows.append({"source_file": str(path), "line_no": line_no, "raw": raw, **fields})
    return result


def extract(logs_glob: str, interval: Interval, raw_root: Path) -> dict:
    """Land the interval's log lines from every file matching the glob as one batch."""
    paths = sorted(Path(p).resolve() for p in glob.glob(logs_glob))
    if not paths:
        raise FileNotFoundError(f"no access-log file matches {logs_glob!r}")
    rows: list[dict] = []
    quarantined: list[dict] = []
    files = []
    for path in paths:
        result = select_interval(path, interval)
        rows += result.rows
        quarantined += result.quarantined
        files.append(
            {
                "path": str(path),
                "lines_read": result.lines_read,
                "rows": len(result.rows),
                "quarantined": len(result.quarantined),
                "outside_interval": result.outside,
                "read_error": result.read_error,
            }
        )
    rows.sort(key=lambda r: (r["requested_at"], r["source_file"], r["line_no"]))
    with landing(raw_root, "support_site", interval) as work:
        pq.write_table(pa.Table.from_pylist(rows, ROW_SCHEMA), work / "lines.parquet")
        pq.write_table(
            pa.Table.from_pylist(quarantined, QUARANTINE_SCHEMA), work / "quarantine.parquet"
        )
        manifest = {
            "batch": interval.batch_id,
            "source": "support_site",
            "start": iso(interval.start),
            "end": iso(interval.end),
            "records": len(rows),
            "quarantined": len(quarantined),
            "lines_read": sum(f["lines_read"] for f in files),
            "outside_interval": sum(f["outside_interval"] for f in files),
            "files": files,
        }
        write_manifest(work, manifest)
    return summary(manifest, raw_root / "support_site" / interval.batch_id)
