"""Internal traffic is decided at extraction, while the client IP is known: `internal_kind`
is `internal_network` for SUPPORT_SITE_INTERNAL_NETWORKS, `web_server` for the server's own
requests, null otherwise; the IPs still never land."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement.landing import Interval
from engagement.settings import Settings
from engagement.warehouse import load
from extract import access_log
from extract.visitors import InternalTraffic
from tests.conftest import TEST_IP_KEY, engagement

DAY = Interval.parse("2026-11-02", "2026-11-03")
NETWORKS = "10.0.0.0/8,192.168.0.0/16,2001:db8:1::/48"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
DUMMY = "Apache/2.4.41 (Ubuntu) (internal dummy connection)"
# (client IP, request, user agent, internal_kind with NETWORKS, internal_kind without)
REQUESTS = [
    ("10.1.2.3", "GET /articles/1 HTTP/1.1", BROWSER, "internal_network", None),
    ("192.168.7.8", "GET /articles/2 HTTP/1.1", BROWSER, "internal_network", None),
    ("::ffff:10.4.5.6", "GET /articles/3 HTTP/1.1", BROWSER, "internal_network", None),
    ("2001:db8:1::42", "GET /articles/4 HTTP/1.1", BROWSER, "internal_network", None),
    ("127.0.0.1", "GET /health HTTP/1.1", "curl/8.5.0", "web_server", "web_server"),
    ("::1", "OPTIONS * HTTP/1.0", DUMMY, "web_server", "web_server"),
    ("::ffff:127.0.0.1", "GET /health HTTP/1.1", "curl/8.5.0", "web_server", "web_server"),
    ("198.51.100.7", "OPTIONS * HTTP/1.0", DUMMY, "web_server", "web_server"),  # mod_remoteip
    ("10.9.9.9", "OPTIONS * HTTP/1.0", DUMMY, "internal_network", "web_server"),  # 1st wins
    ("203.0.113.9", "GET /articles/1 HTTP/1.1", BROWSER, None, None),
    ("2001:db8:2::1", "GET /articles/1 HTTP/1.1", BROWSER, None, None),
    ("11.1.2.3", "GET /articles/1 HTTP/1.1", "-", None, None),
]


def log_line(ip: str, request: str, agent: str, second: int = 0) -> str:
    return f'{ip} - - [02/Nov/2026:10:00:{second % 60:02d} +0000] "{request}" 200 - "-" "{agent}"'


def pseudonym(ip: str) -> str:
    return hmac.new(TEST_IP_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]


def extract_cli(log: Path, env: dict, **settings: str) -> subprocess.CompletedProcess:
    args = ["extract", "support-site", "--logs", str(log), "--start", "2026-11-02"]
    return engagement(*args, "--end", "2026-11-03", env={**env, **settings}, check=False)


@pytest.mark.parametrize("networks", [NETWORKS, ""])
def test_each_line_is_marked_and_no_ip_lands(tmp_path: Path, env: dict, networks: str) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(log_line(*r[:3], second=n) + "\n" for n, r in enumerate(REQUESTS)))
    result = extract_cli(log, env, SUPPORT_SITE_INTERNAL_NETWORKS=networks)
    assert result.returncode == 0, result.stderr
    batch = Path(json.loads(result.stdout.splitlines()[-1])["path"])
    rows = pq.read_table(batch / "lines.parquet").to_pylist()

    column = 3 if networks else 4
    assert [r["internal_kind"] for r in rows] == [r[column] for r in REQUESTS]
    assert [r["visitor_id"] for r in rows] == [pseudonym(r[0]) for r in REQUESTS]
    values = "\0".join(v for row in rows for v in row.values() if isinstance(v, str))
    assert not [r[0] for r in REQUESTS if r[0] in values]


def test_kinds_are_cached_per_distinct_value_across_blocks(tmp_path: Path) -> None:
    """Many blocks and both threads, each seeing IPs and user agents seen before."""
    order = [n for n in range(len(REQUESTS)) for _ in range(40)]
    random.Random(7).shuffle(order)
    log = tmp_path / "access.log"
    log.write_text(
        "".join(log_line(*REQUESTS[n][:3], second=i) + "\n" for i, n in enumerate(order))
    )
    for networks, column in ((NETWORKS, 3), ("", 4)):
        settings = Settings.from_env({"SUPPORT_SITE_INTERNAL_NETWORKS": networks})
        summary = access_log.extract(
            str(log),
            DAY,
            tmp_path / f"raw{column}",
            key=TEST_IP_KEY,
            block_bytes=2048,
            internal_networks=settings.support_site_internal_networks,
        )
        rows = pq.read_table(Path(summary.path) / "lines.parquet").to_pylist()
        assert [r["internal_kind"] for r in rows] == [REQUESTS[n][column] for n in order]


def test_a_network_wider_than_a_slash_8_is_looked_at_whole() -> None:
    expected = {  # with 10.0.0.0/7: IPs written as 10.x and 11.x, and every IPv6 one, are
        # looked at in Python, the others by Arrow
        "11.1.2.3": "internal_network",
        "10.0.0.1": "internal_network",
        "12.0.0.1": None,
        "::ffff:11.0.0.1": "internal_network",
        "127.0.0.1": "web_server",
        "2001:db8::1": None,
        "::1": "web_server",
    }
    ips = pa.array(list(expected)).dictionary_encode()
    agents = pa.array([BROWSER] * len(expected)).dictionary_encode()
    kinds = InternalTraffic([ipaddress.ip_network("10.0.0.0/7")]).column(ips, agents)
    assert kinds.to_pylist() == list(expected.values())


def test_networks_are_read_as_cidr_and_a_bare_address_is_one_host() -> None:
    value = " 10.0.0.0/8, 192.0.2.7 ,2001:db8:1::/48,2001:db8::9,"
    networks = Settings.from_env({"SUPPORT_SITE_INTERNAL_NETWORKS": value})
    shown = [str(n) for n in networks.support_site_internal_networks]
    assert shown == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8:1::/48", "2001:db8::9/128"]
    assert Settings.from_env({}).support_site_internal_networks == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "intranet", "10.1.2.3/8"])
def test_a_bad_network_stops_the_extraction_in_one_line(
    tmp_path: Path, env: dict, bad: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text(log_line(*REQUESTS[0][:3]) + "\n")
    result = extract_cli(log, env, SUPPORT_SITE_INTERNAL_NETWORKS=f"192.168.0.0/16,{bad}")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "SUPPORT_SITE_INTERNAL_NETWORKS" in result.stderr and repr(bad) in result.stderr
    assert not (Path(env["ENGAGEMENT_DATA_DIR"]) / "raw").exists()


def test_a_batch_landed_before_the_column_still_loads(tmp_path: Path) -> None:
    """A raw warehouse and a batch from before internal_kind: the loader adds the column,
    the old batch's rows get null, and a new batch's rows their kind."""
    old_ddl = load.DDL.replace(" internal_kind varchar,", "").split("-- internal traffic")[0]
    assert old_ddl != load.DDL and "internal_kind" not in old_ddl
    raw_db = tmp_path / "raw.duckdb"
    with duckdb.connect(str(raw_db)) as con:
        con.execute(old_ddl)
    log = tmp_path / "access.log"
    log.write_text("".join(log_line(*r[:3]) + "\n" for r in REQUESTS))
    days = [Interval.parse("2026-11-02", "2026-11-03"), Interval.parse("2026-11-02", "2026-11-04")]
    old, new = (
        Path(access_log.extract(str(log), day, tmp_path / "raw", key=TEST_IP_KEY).path)
        for day in days
    )
    lines = pq.read_table(old / "lines.parquet")
    pq.write_table(lines.drop_columns(["internal_kind"]), old / "lines.parquet")

    for batch in (old, new):
        load.load(batch, raw_db)
    with duckdb.connect(str(raw_db), read_only=True) as con:
        kinds = con.execute(
            "select batch_id, list(internal_kind order by line_no) from support_site.requests"
            " group by batch_id order by batch_id"
        ).fetchall()
    assert kinds == [
        (days[0].batch_id, [None] * len(REQUESTS)),
        (days[1].batch_id, [r[4] for r in REQUESTS]),
    ]
