"""Support-site extraction on real log lines: every line is accounted for exactly once,
client IPs never land in clear, and enrichment agrees with computations written here."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import crawleruseragents
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engagement.landing import Interval
from extract import access_log
from tests.conftest import TEST_IP_KEY, engagement

WHOLE = Interval.parse("2015-05-17", "2015-05-21")
DAYS = [Interval.parse(f"2015-05-{d}", f"2015-05-{d + 1}") for d in range(17, 21)]
DAY = Interval.parse("2026-11-02", "2026-11-03")
SOCIAL_PREVIEW = ("facebookexternalhit", "Twitterbot", "LinkedInBot")
CRAWLER_PATTERNS = [re.compile(e["pattern"]) for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA]


def extract(logs: str, interval: Interval, root: Path, **kw) -> dict:
    return access_log.extract(logs, interval, root, key=TEST_IP_KEY, **kw)


def read(batch: str | Path, name: str = "lines.parquet") -> list[dict]:
    return pq.read_table(Path(batch) / name).to_pylist()


def manifest(summary: dict) -> dict:
    return json.loads((Path(summary.path) / "manifest.json").read_text())


def by_quotes(line: str) -> dict | None:
    """`ip - - [ts] "request" status bytes "ref" "ua"` cut at its quotes, or None."""
    parts = line.split('"')
    if len(parts) != 7 or parts[4] != " " or parts[6].strip():
        return None
    status = parts[2].split()[0]
    ref, ua = parts[3], parts[5]
    host = re.match(r"^[a-z]+://([^/:?#]+)", ref.lower())
    return {
        "ip": parts[0].split()[0],
        "status": int(status),
        "referrer_host": host.group(1).rstrip(".") if host else None,
        "user_agent": None if ua in ("", "-") else ua,
    }


def is_crawler(user_agent: str | None) -> bool:
    return not user_agent or any(p.search(user_agent) for p in CRAWLER_PATTERNS)


def test_elastic_log_counts_agree_and_its_truncated_line_is_quarantined(
    tmp_path: Path, elastic_log: Path
) -> None:
    lines = elastic_log.read_text().splitlines()
    expected = [by_quotes(line) for line in lines]
    bad = [(n, line) for n, (line, e) in enumerate(zip(lines, expected, strict=True), 1) if not e]
    good = [e for e in expected if e]

    summary = extract(str(elastic_log), WHOLE, tmp_path / "raw")

    rows = read(summary.path)
    quarantined = read(summary.path, "quarantine.parquet")
    assert summary.records == len(rows) == len(good) == len(lines) - 1
    assert summary.quarantined == len(quarantined) == len(bad) == 1
    assert manifest(summary)["lines_read"] == len(lines) == len(rows) + len(quarantined)
    assert Counter(r["status"] for r in rows) == Counter(e["status"] for e in good)
    assert Counter(r["referrer_host"] for r in rows) == Counter(e["referrer_host"] for e in good)
    flags = Counter((r["user_agent"], r["is_bot"]) for r in rows)
    crawlers = Counter((e["user_agent"], True) for e in good if is_crawler(e["user_agent"]))
    assert flags & crawlers == crawlers  # and programs beyond the list: tests/test_agents.py
    assert len({agent for agent, _ in flags}) == len(flags)  # one verdict per user agent
    assert sum(r["is_bot"] for r in rows) > 1000 and sum(not r["is_bot"] for r in rows) > 5000
    previews = [r for r in rows if any(name in (r["user_agent"] or "") for name in SOCIAL_PREVIEW)]
    assert previews and {(r["is_bot"], r["bot_kind"]) for r in previews} == {
        (True, "social_preview")
    }
    assert {r["bot_kind"] for r in rows if not r["is_bot"]} == {None}

    [(line_no, text)] = bad
    [q] = quarantined
    assert (q["line_no"], q["source_file"]) == (line_no, str(elastic_log.resolve()))
    ip = text.split()[0]
    assert q["raw"] == text.replace(ip, "visitor:" + pseudonym(ip), 1)
    assert ip not in q["raw"]


COMBINED_RE = re.compile(
    r'^(\S+) \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?\s*$'
)
STATIC = re.compile(r"\.(?:css|js|mjs|png|jpe?g|gif|webp|avif|svg|ico|woff2?|ttf|eot|map)$", re.I)


def by_regex(text: str) -> dict | None:
    """Every field of a combined line, the slow way."""
    m = COMBINED_RE.match(text)
    if not m:
        return None
    words = m[3].split(" ")
    method, target, protocol = (words + [None, None])[:3] if len(words) <= 3 else [None] * 3
    path, _, query = target.partition("?") if target is not None else (None, "", "")
    stamp = datetime.strptime(m[2], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    return {
        "requested_at": stamp.replace(tzinfo=None),
        "method": None if method in ("", "-") else method,
        "path": path,
        "query_string": query or None,
        "protocol": protocol,
        "status": int(m[4]),
        "bytes": None if m[5] == "-" else int(m[5]),
        "referrer": None if m[6] in (None, "", "-") else m[6],
        "user_agent": None if m[7] in (None, "", "-") else m[7],
        "is_static_asset": None if path is None else bool(STATIC.search(path)),
    }


def test_every_field_agrees_with_a_regex_parse(tmp_path: Path, elastic_log: Path) -> None:
    lines = elastic_log.read_text().splitlines()
    summary = extract(str(elastic_log), WHOLE, tmp_path / "raw", block_bytes=256 * 1024)
    rows = read(summary.path)
    assert len(rows) > 9000
    for row in rows:
        assert {k: row[k] for k in by_regex(lines[row["line_no"] - 1])} == by_regex(
            lines[row["line_no"] - 1]
        ), row["line_no"]


def pseudonym(ip: str) -> str:
    return hmac.new(TEST_IP_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]


def test_no_client_ip_lands_in_clear(tmp_path: Path, elastic_log: Path) -> None:
    lines = elastic_log.read_text().splitlines()
    ips = {line.split()[0] for line in lines}
    summary = extract(str(elastic_log), WHOLE, tmp_path / "raw")
    batch = Path(summary.path)
    for name in ("lines.parquet", "quarantine.parquet"):
        values = [v for row in read(batch, name) for v in row.values() if isinstance(v, str)]
        text = "\0".join(values)  # an IP holds no NUL: a match lies within one value
        found = [ip for ip in ips if len(ip) > 6 and ip in text]
        assert not found, (name, found[:3], [v for v in values if found[0] in v][:3])
    assert not any(ip in (batch / "manifest.json").read_text() for ip in ips)
    rows = read(batch)
    assert {r["visitor_id"] for r in rows} <= {pseudonym(ip) for ip in ips}
    first = by_quotes(lines[0])
    assert rows[0]["visitor_id"] == pseudonym(first["ip"])


def test_daily_batches_partition_the_log(tmp_path: Path, elastic_log: Path) -> None:
    seen: Counter[int] = Counter()
    for day in DAYS:
        batch = Path(extract(str(elastic_log), day, tmp_path / "raw").path)
        for name in ("lines.parquet", "quarantine.parquet"):
            seen.update(pq.read_table(batch / name, columns=["line_no"])["line_no"].to_pylist())
        for row in pq.read_table(batch / "lines.parquet", columns=["requested_at"]).to_pylist():
            assert (
                day.start.replace(tzinfo=None) <= row["requested_at"] < day.end.replace(tzinfo=None)
            )
    assert sorted(seen) == list(range(1, 10_001))
    assert set(seen.values()) == {1}


def line(minute: int, ip: str = "203.0.113.9", ua: str = "Mozilla/5.0 Firefox/132.0") -> str:
    return (
        f'{ip} - - [02/Nov/2026:10:{minute:02d}:00 +0000] "GET /a?utm_source=X&utm_medium=social'
        f' HTTP/1.1" 200 5 "https://t.co/abc" "{ua}"'
    )


def test_rotated_damaged_set_loses_no_good_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_bytes(
        (line(1) + "\n").encode()
        + b"\xff\xfe not a log line\n"
        + line(2, ua="Bad\xffbyte").encode("latin-1")
        + b"\n"
        + line(3, ua='say \\"hi\\" \\\\o/').encode()
        + b"\r\n"
        + b'198.51.100.7 - - [02/Nov/2026:10:04:00 +0000] "GET /b HTTP/1.1" 304 -\n'
        + b'198.51.100.7 - - [02/Nov/2026:10:05:00 +0000] "GET /c HTTP/1.1" 200 9 "-" "cut'
    )  # no final newline: the last line is truncated
    (logs / "access.log.1").write_bytes(b"")
    rotated = [line(m, ip=f"192.0.2.{m}") for m in range(10, 40)]
    with gzip.open(logs / "access.log.2.gz", "wt") as handle:
        handle.write("".join(f"{text}\n" for text in rotated))
    shutil.copy(logs / "access.log.2.gz", tmp_path / "copy.gz")
    with gzip.open(logs / "access.log.3.gz", "wt") as handle:
        handle.write("".join(line(m, ip="192.0.2.200") + "\n" for m in range(40, 60)))
    whole = (logs / "access.log.3.gz").read_bytes()
    (logs / "access.log.3.gz").write_bytes(whole[: len(whole) - 30])  # a truncated tail
    shutil.copy(tmp_path / "copy.gz", logs / "access.log.2.gz.bak")  # the same file twice

    summary = extract(str(logs / "access.log*"), DAY, tmp_path / "raw")

    files = {Path(f["path"]).name: f for f in manifest(summary)["files"]}
    assert {k: files["access.log"][k] for k in ("lines_read", "rows", "quarantined")} == {
        "lines_read": 6,
        "rows": 4,
        "quarantined": 2,
    }
    assert files["access.log.1"]["lines_read"] == 0
    assert files["access.log.2.gz"]["rows"] == 30
    assert files["access.log.2.gz.bak"]["lines_read"] == 0
    assert files["access.log.2.gz.bak"]["skipped"].startswith("same content as")
    truncated = files["access.log.3.gz"]
    assert truncated["read_error"].startswith("truncated gzip stream")
    size = (logs / "access.log.3.gz").stat().st_size  # read to its end, where it was cut
    assert (truncated["damage_offset"], truncated["bytes_unread"]) == (size, 0)
    assert truncated["lines_kept"] == truncated["lines_read"]
    assert summary.warnings == [f"{logs / 'access.log.3.gz'}: {truncated['read_error']}"]
    assert 0 < truncated["rows"] <= 20
    assert truncated["rows"] + truncated["quarantined"] == truncated["lines_read"]
    assert summary.records + summary.quarantined == manifest(summary)["lines_read"]

    rows = {(Path(r["source_file"]).name, r["line_no"]): r for r in read(summary.path)}
    assert rows[("access.log", 3)]["user_agent"] == "Bad\\xffbyte"
    assert rows[("access.log", 4)]["user_agent"] == 'say "hi" \\o/'
    assert rows[("access.log", 5)]["status"] == 304 and rows[("access.log", 5)]["bytes"] is None
    first = rows[("access.log", 1)]
    assert (first["path"], first["query_string"]) == ("/a", "utm_source=X&utm_medium=social")
    assert (first["utm_source"], first["utm_medium"]) == ("x", "social")
    assert (first["referrer_host"], first["referrer_path"]) == ("t.co", "/abc")
    assert first["is_bot"] is False and first["is_static_asset"] is False
    quarantined = {q["line_no"]: q for q in read(summary.path, "quarantine.parquet")}
    assert quarantined[2]["raw"] == "\\xff\\xfe not a log line"
    assert quarantined[6]["reason"] and "198.51.100.7" not in quarantined[6]["raw"]


def test_rerun_replaces_the_batch_and_a_rotated_file_is_not_read_again(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state.json"
    logs.mkdir()
    day_one = [line(m) for m in range(0, 50)]
    (logs / "access.log").write_text("".join(f"{text}\n" for text in day_one))
    first = extract(str(logs / "access.log*"), DAY, tmp_path / "raw", state_path=state)
    before = (Path(first.path) / "lines.parquet").read_bytes()
    again = extract(str(logs / "access.log*"), DAY, tmp_path / "raw", state_path=state)
    assert again.model_copy(update={"path": first.path}) == first  # a new version, beside
    assert (Path(again.path) / "lines.parquet").read_bytes() == before
    assert (Path(first.path) / "lines.parquet").read_bytes() == before
    versions = tmp_path / "versions" / "support_site" / DAY.batch_id
    assert sorted(versions.iterdir()) == sorted([Path(first.path), Path(again.path)])
    assert not (tmp_path / "raw").exists()  # none is in force before the gate passes one

    # logrotate: access.log -> access.log.1 -> access.log.2.gz, a new access.log each day
    next_day = Interval.parse("2026-11-03", "2026-11-04")
    os.rename(logs / "access.log", logs / "access.log.1")
    (logs / "access.log").write_text(line(5).replace("02/Nov", "03/Nov") + "\n")
    second = extract(str(logs / "access.log*"), next_day, tmp_path / "raw", state_path=state)
    files = {Path(f["path"]).name: f for f in manifest(second)["files"]}
    assert files["access.log.1"]["skipped"] == "known content with no line in the interval"
    assert (second.records, files["access.log"]["rows"]) == (1, 1)
    with gzip.open(logs / "access.log.2.gz", "wb") as handle:
        handle.write((logs / "access.log.1").read_bytes())
    (logs / "access.log.1").unlink()
    third = extract(str(logs / "access.log*"), next_day, tmp_path / "raw", state_path=state)
    files = {Path(f["path"]).name: f for f in manifest(third)["files"]}
    assert files["access.log.2.gz"]["lines_read"] == 0 and "skipped" in files["access.log.2.gz"]
    # without the state every line is still read and counted (once)
    fresh = extract(str(logs / "access.log*"), DAY, tmp_path / "raw2")
    assert fresh.records == first.records == 50


def test_vhost_format_and_request_time_last(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        'help.acme.example:443 203.0.113.5 - - [02/Nov/2026:10:00:00 +0100] "GET /x HTTP/2.0"'
        ' 200 12 "-" "Twitterbot/1.0"\n'
        'docs.acme.example:80 203.0.113.6 - - [02/Nov/2026:10:00:01 -0030] "GET /y.css HTTP/1.1"'
        " 200 3\n"
    )
    summary = extract(str(log), DAY, tmp_path / "raw", log_format="vhost_combined")
    rows = read(summary.path)
    assert [(r["site"], r["requested_at"].hour, r["requested_at"].minute) for r in rows] == [
        ("help.acme.example", 9, 0),
        ("docs.acme.example", 10, 30),
    ]
    assert (rows[0]["bot_kind"], rows[1]["is_static_asset"]) == ("social_preview", True)

    timed = tmp_path / "timed.log"
    timed.write_text(line(7) + " 0.153\n" + line(8) + "\n")
    custom = (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent" $request_time'
    )
    summary = extract(f"help.acme.example={timed}", DAY, tmp_path / "raw2", log_format=custom)
    [row] = read(summary.path)
    assert (row["site"], row["request_time"], summary.quarantined) == (
        "help.acme.example",
        0.153,
        1,
    )


def test_several_sites_from_configuration(tmp_path: Path) -> None:
    for site in ("help", "docs"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "access.log").write_text(line(1) + "\n" + line(2) + "\n")
    spec = f"help.acme.example={tmp_path / 'help' / '*'},docs.acme.example={tmp_path}/docs/*"
    summary = extract(spec, DAY, tmp_path / "raw")
    assert Counter(r["site"] for r in read(summary.path)) == {
        "help.acme.example": 2,
        "docs.acme.example": 2,
    }


def test_extraction_refuses_to_run_without_the_ip_key(tmp_path: Path, env: dict) -> None:
    (tmp_path / "access.log").write_text(line(1) + "\n")
    env = {k: v for k, v in env.items() if k != "ENGAGEMENT_IP_HMAC_KEY"}
    args = ["extract", "support-site", "--logs", str(tmp_path / "access.log")]
    result = engagement(*args, "--start", "2026-11-02", "--end", "2026-11-03", env=env, check=False)
    assert result.returncode == 2
    assert "ENGAGEMENT_IP_HMAC_KEY is not set" in result.stderr
    assert not (Path(env["ENGAGEMENT_DATA_DIR"]) / "raw").exists()
    with pytest.raises(ValueError, match="at least 16 bytes"):
        access_log.extract(str(tmp_path / "access.log"), DAY, tmp_path / "raw", key="short")


def test_cli_prints_the_summary_last(tmp_path: Path, env: dict, elastic_log: Path) -> None:
    args = ["extract", "support-site", "--logs", str(elastic_log)]
    result = engagement(*args, "--start", "2015-05-18", "--end", "2015-05-19", env=env)
    summary = json.loads(result.stdout.splitlines()[-1])
    keys = {"batch", "source", "start", "end", "records", "quarantined", "path", "warnings"}
    assert set(summary) == keys and summary["warnings"] == []
    assert TEST_IP_KEY not in result.stdout + result.stderr
    state = Path(env["ENGAGEMENT_DATA_DIR"]) / "state" / "support_site_files.json"
    assert TEST_IP_KEY not in state.read_text()


@pytest.mark.parametrize("key", [TEST_IP_KEY, "k" * 64, "long-" * 20, "clé-secrète-ünïcode"])
def test_visitor_ids_are_the_keyed_hmac(key: str) -> None:
    pseudonymise = access_log.Pseudonymiser(key)
    ips = ["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1", "10.0.0.1", "203.0.113.9", ""]
    ips += ["host-" * 11, "proxy.example-" * 9, "fe80::1%eth0", "hôte-ünïcode"]
    expected = [hmac.new(key.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32] for ip in ips]
    sliced = pa.array(["x", *ips])[1:]  # an array that starts at an offset
    assert pseudonymise.column(sliced).to_pylist() == expected
    # as the parser gives them: dictionary arrays, in chunks, the dictionary itself sliced
    encoded = pa.array(["x", "y", *ips]).dictionary_encode()
    sliced_dictionary = pa.DictionaryArray.from_arrays(
        pc.subtract(encoded.indices[2:], 1), encoded.dictionary[1:]
    )
    chunked = pa.chunked_array([encoded[2:5], encoded[5:]])
    assert pseudonymise.column(sliced_dictionary).to_pylist() == expected
    assert pseudonymise.column(chunked).to_pylist() == expected
    assert [pseudonymise(ip) for ip in ips] == expected
    assert pseudonymise.column(pa.array([], pa.string())).to_pylist() == []


def test_parsed_and_quarantined_lines_give_an_ip_the_same_visitor_id(tmp_path: Path) -> None:
    ips = ["203.0.113.9", "2001:db8::1"]
    good = '{} - - [02/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "Mozilla/5.0"'
    bad = '{} - - [02/Nov/2026:10:00:01 +0000] "GET /b HTTP/1.1 200 5 from {}'
    log = tmp_path / "access.log"
    log.write_text("".join(f"{good.format(ip)}\n{bad.format(ip, ip)}\n" for ip in ips))
    summary = extract(str(log), DAY, tmp_path / "raw")
    rows, quarantined = read(summary.path), read(summary.path, "quarantine.parquet")
    assert [r["visitor_id"] for r in rows] == [pseudonym(ip) for ip in ips]
    visitors = ["visitor:" + pseudonym(ip) for ip in ips]
    assert [q["raw"] for q in quarantined] == [bad.format(v, v) for v in visitors]


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"caf\xc3", b"\xc3\xa9t\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98",
     b"\xc0\xaf", b"\xf4\x90\x80\x80", b"ok \xe2\x82\xac \xf0\x9f\x98\x80", b"a\\\xffb"],
)  # fmt: skip
def test_bytes_that_are_not_utf8_read_as_python_reads_them(tmp_path: Path, raw: bytes) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(line(1).encode().replace(b"Mozilla/5.0 Firefox/132.0", raw) + b"\n")
    [row] = read(extract(str(log), DAY, tmp_path / "raw").path)
    expected = raw.decode("utf-8", "backslashreplace").replace("\\\\", "\\")
    assert row["user_agent"] == expected


def test_lines_are_cut_exactly_at_newlines(tmp_path: Path) -> None:
    good = line(1).encode()
    text = good + b"\r\n" + b"a\rb\n" + b"\n" + good.replace(b"GET", b"G\rET") + b"\n" + good
    log = tmp_path / "access.log"
    log.write_bytes(text)
    summary = extract(str(log), DAY, tmp_path / "raw")
    rows, bad = read(summary.path), read(summary.path, "quarantine.parquet")
    assert manifest(summary)["lines_read"] == text.count(b"\n") + 1 == 5
    assert [r["line_no"] for r in rows] == [1, 4, 5]
    assert rows[1]["method"] == "G\rET"
    assert [(q["line_no"], q["raw"]) for q in bad] == [(2, "a\rb"), (3, "")]


def test_format_strings_that_cannot_be_read_are_refused() -> None:
    for spec, message in [
        ('$remote_addr [$time_local] "$request', "unbalanced double quote"),
        ('$remote_addr [$time_local] "$request $status"', "one \\$variable"),
        ("$remote_addr$remote_user [$time_local]", "separated by text"),
        ("$host [$time_local]", "must contain \\$remote_addr"),
        ("$remote_addr $status", "must contain \\$time_local"),
    ]:
        with pytest.raises(ValueError, match=message):
            access_log.LogFormat.parse(spec)


def test_a_truncated_gzip_is_a_warning_on_stderr_and_in_the_summary(
    tmp_path: Path, env: dict
) -> None:
    log = tmp_path / "access.log.1.gz"
    with gzip.open(log, "wt") as handle:
        handle.write("".join(line(m) + "\n" for m in range(40)))
    log.write_bytes(log.read_bytes()[:-30])
    args = ["extract", "support-site", "--logs", str(log), "--start", str(DAY.start.date())]
    result = engagement(*args, "--end", str(DAY.end.date()), env=env)
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["warnings"] == [
        f"{log}: truncated gzip stream: kept the lines before the damage"
    ]
    assert result.stderr == f"engagement: warning: {summary['warnings'][0]}\n"
    assert 0 < summary["records"] < 40
