"""Who made a request, as far as the warehouse may know: a keyed pseudonym of the client IP,
whether the user agent is a person's browser or a program (a bot), and whether the request
is the company's own (internal traffic, decided here while the IP is still known).

All are computed once per distinct value (an access log repeats its IPs and user agents
many times): visitor ids once per distinct IP of a parsed half block, bot flags once per
distinct user agent of the whole extraction, internal traffic by Arrow on a half block's
distinct IPs and user agents (in Python once per extraction for the IPs that may be in an
internal network).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engagement.settings import SettingsError
from extract import _logparse

if TYPE_CHECKING:
    import ua_parser

MIN_KEY_LENGTH = 16
ID_BYTES = 16  # a visitor id is the first 128 bits of the HMAC
# priority of crawler-user-agents tags when a user agent matches several entries
BOT_KINDS = ("social-preview", "search-engine", "ai-crawler", "feed-reader", "monitoring")
BOT_KINDS += ("http-library", "browser-automation", "scanner", "seo", "advertising")
# Programs the crawler list misses, by kind, first match wins (case-insensitive, anywhere in
# the user agent). They come before ua-parser's verdict because it names some of them as if
# they were browsers (Liferea, Reeder, libfetch, Dalvik, and Digg Feed Fetcher, which quotes
# Safari's user agent, as Safari).
NON_BROWSERS = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("feed_reader", r"feed|\brss\b|\d+ (?:readers|subscribers)\b|^(?:liferea|reeder|newsify)/"),
        (
            "http_library",
            r"^(?:fetch libfetch|dalvik/|ruby$)|cfnetwork/|http_request2?/|libcurl|\bcurl/|wget/"
            r"|python|java/|okhttp|go-http-client|libwww-perl|apache-httpclient|node-fetch|axios/",
        ),
        ("monitoring", r"monitor|uptime|pingdom|nagios|check_http|zabbix|chef client|portscout"),
        ("link_checker", r"link ?(?:validator|checker|sleuth)|linkcheck|checklink"),
    )
)
# internal_kind, first match wins: a client IP in SUPPORT_SITE_INTERNAL_NETWORKS, then the web
# server's own requests (a loopback client: health checks; Apache's internal dummy connection)
INTERNAL_KINDS = ("internal_network", "web_server")
INTERNAL_NETWORK, WEB_SERVER = 0, 1  # their codes (positions)
DUMMY_CONNECTION = "(internal dummy connection)"
LOOPBACK_PREFIXES = ("127.", "::ffff:127.")  # and ::1: loopback IPs as web servers write them
MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # of IPv4-mapped IPv6 addresses, ::ffff:a.b.c.d
IP_LIKE = re.compile(
    r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
)


class Pseudonymiser:
    """HMAC-SHA256 of the client IP under a secret key, its first 128 bits as 32 hex
    digits: the same IP always gives the same visitor id, and without the key the id cannot
    be turned back into the IP (IPv4 is small enough to try every address, which a plain
    hash would not resist).

    Every id is OpenSSL's HMAC; nothing cryptographic is written in this project. A single
    IP (`__call__`, used to scrub quarantined text) goes through the standard library's
    `hmac`. A parsed column (`column`) goes through `_logparse.hmac_ids`, OpenSSL's EVP_MAC
    called from C, once per distinct IP of the column (a half block's dictionary): keyed
    once per call, the loop over the distinct IPs runs with the GIL released, so it
    overlaps the parse and the Parquet write on the other threads, where a Python loop per
    IP (0.7-1.2 us each, GIL held) slowed the ingest bench by up to 14%. The tests check
    both paths against `hmac.new(key, ip, hashlib.sha256)`."""

    def __init__(self, key: str) -> None:
        secret = key.encode()
        if len(secret) < MIN_KEY_LENGTH:
            raise SettingsError(
                f"ENGAGEMENT_IP_HMAC_KEY must be at least {MIN_KEY_LENGTH} bytes long"
            )
        self._key = secret
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymiser({len(self._cache)} ids)"

    def __call__(self, ip: str) -> str:
        visitor = self._cache.get(ip)
        if visitor is None:
            digest = hmac.digest(self._key, ip.encode(), "sha256")
            visitor = self._cache[ip] = digest[:ID_BYTES].hex()
        return visitor

    def column(self, ips: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
        """Visitor ids of a column of IPs, one HMAC per distinct IP (OpenSSL, from C)."""
        encoded = as_dictionary(ips)
        distinct = encoded.dictionary
        if distinct.type != pa.string():  # e.g. large_string: the C side reads int32 offsets
            distinct = distinct.cast(pa.string())
        n = len(distinct)
        _, offsets, data = distinct.buffers()
        if offsets is None:  # an empty array may come without buffers
            offsets = pa.py_buffer(np.zeros(1, np.int32))
        text = _logparse.hmac_ids(offsets, data or b"", distinct.offset, n, self._key)
        ids_offsets = np.arange(0, 2 * ID_BYTES * n + 1, 2 * ID_BYTES, dtype=np.int32)
        ids = pa.Array.from_buffers(
            pa.string(), n, [None, pa.py_buffer(ids_offsets), pa.py_buffer(text)]
        )
        return pa.DictionaryArray.from_arrays(encoded.indices, ids)

    def scrub(self, text: str) -> str:
        """Text with every IPv4/IPv6 address in it replaced by its pseudonym."""

        def replace(m: re.Match) -> str:
            try:
                ipaddress.ip_address(m.group(0))
            except ValueError:
                return m.group(0)
            return "visitor:" + self(m.group(0))

        return IP_LIKE.sub(replace, text)


class AgentClassifier:
    """Whether a user agent is a person's browser, and if not which kind of program it is.

    In order, first answer wins:
    1. no user agent: a bot (`no_user_agent`; every browser sends one);
    2. the maintained crawler-user-agents list: a bot of the list's tag (`social_preview`
       for facebookexternalhit, Twitterbot, LinkedInBot, ...; `crawler` when untagged);
    3. `NON_BROWSERS`, documented rules for the feed readers, HTTP libraries, monitors and
       link checkers the list misses: a bot of that kind;
    4. ua-parser (uap-core's maintained regexes): a `Spider` device is a bot (`crawler`); a
       user agent for which it names a browser family (Chrome, IE 6, Opera Mini, Lynx, the
       X app, ...) or a device (phones, feature phones' WAP browsers) is a person's;
    5. anything else is a program nobody identifies (`unrecognised`), e.g. feedparser's
       `UniversalFeedParser/4.2`: not a person's browser, so no session either.
    """

    def __init__(self) -> None:
        import crawleruseragents

        self._entries = [
            (re.compile(e["pattern"]), e.get("tags", []))
            for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        ]
        self._any = crawleruseragents.is_crawler
        self._any("")  # compiles the list's combined patterns now, not on the first request
        # ua-parser compiles its regexes in 0.3-1 s: in a thread, while the extraction reads
        # and parses its first block
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ua-parser")
        self._ua_parser: Future[ua_parser.Parser] = pool.submit(_browsers_and_devices)
        pool.shutdown(wait=False)  # the thread ends with its one task
        self._cache: dict[str | None, tuple[bool, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, user_agent: str | None) -> tuple[bool, str | None]:
        """(is_bot, bot_kind); (False, None) for a person's browser."""
        cached = self._cache.get(user_agent)
        if cached is not None:
            return cached
        with self._lock:  # threads parsing one block see the same new agents: classify once
            return self._cache.get(user_agent) or self._classify(user_agent)

    def _classify(self, user_agent: str | None) -> tuple[bool, str | None]:
        kind = self.bot_kind(user_agent)
        result = self._cache[user_agent] = (kind is not None, kind)
        return result

    def bot_kind(self, user_agent: str | None) -> str | None:
        """The kind of program, by the rules above; None for a person's browser."""
        if not user_agent:
            return "no_user_agent"
        if self._any(user_agent):
            tags = {t for pattern, ts in self._entries if pattern.search(user_agent) for t in ts}
            return next((k for k in BOT_KINDS if k in tags), "crawler").replace("-", "_")
        kind = next((k for k, pattern in NON_BROWSERS if pattern.search(user_agent)), None)
        if kind:
            return kind
        parser = self._ua_parser.result()
        device = parser.parse_device(user_agent)
        if device is not None and device.family == "Spider":
            return "crawler"
        if device is not None or parser.parse_user_agent(user_agent) is not None:
            return None
        return "unrecognised"

    def wait_ready(self) -> None:
        """Wait for ua-parser's regexes (start-up: the ingest bench times what follows)."""
        self._ua_parser.result()

    def columns(self, agents: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, pa.Array]:
        """is_bot and bot_kind for a column of user agents, classifying each distinct one."""
        encoded = as_dictionary(agents)
        flags = [self(ua) for ua in encoded.dictionary.to_pylist()]
        missing = self(None)
        is_bot = pa.array([f[0] for f in flags] or [False], pa.bool_())
        kind = pa.array([f[1] for f in flags] or [None], pa.string())
        indices = encoded.indices
        absent = pc.is_null(indices)
        return (
            pc.if_else(absent, missing[0], pc.take(is_bot, indices)),
            pc.if_else(absent, missing[1], pc.take(kind, indices)),
        )


class InternalTraffic:
    """`internal_kind` of requests (`INTERNAL_KINDS`): `internal_network` when the client IP
    is in one of `networks` (an IPv4-mapped IPv6 address, ::ffff:10.1.2.3, as its IPv4
    address), else `web_server` when it is a loopback address (127.0.0.0/8, ::1,
    ::ffff:127.x: the server's health checks) or the user agent is Apache's internal dummy
    connection; null for everything else."""

    def __init__(self, networks: Sequence[IPv4Network | IPv6Network] = ()) -> None:
        self.networks = tuple(networks)
        # (version, first address, netmask) as integers: an address is in a network when
        # `address & netmask == first`
        self._ranges = [(n.version, int(n.network_address), int(n.netmask)) for n in self.networks]
        # how the IPv4 addresses of the networks are written: the first octet and a dot, or
        # anything for a network wider than /8; only such IPs and IPv6 ones are looked at
        ipv4 = [n for n in self.networks if n.version == 4]
        self._starts = {f"{n.network_address.packed[0]}." if n.prefixlen >= 8 else "" for n in ipv4}
        self._by_ip: dict[str, int | None] = {}  # code of the kind, per IP

    def column(self, ips: pa.DictionaryArray, agents: pa.DictionaryArray) -> pa.DictionaryArray:
        """internal_kind of each request, from its client IP and user agent."""
        distinct = ips.dictionary
        loopback = pc.equal(distinct, "::1")  # by Arrow, on IPs as web servers write them
        for prefix in LOOPBACK_PREFIXES:
            loopback = pc.or_(loopback, pc.starts_with(distinct, prefix))
        by_ip = pc.if_else(loopback, _code(WEB_SERVER), _code(None))
        if self.networks:  # the IPs that may be in one, each classified once per extraction
            maybe = pc.match_substring(distinct, ":")
            for start in self._starts:
                maybe = pc.or_(maybe, pc.starts_with(distinct, start))
            if pc.any(maybe).as_py():
                codes = [self._kind_of(ip) for ip in distinct.filter(maybe).to_pylist()]
                by_ip = pc.replace_with_mask(by_ip, maybe, pa.array(codes, pa.int32()))
        dummy = pc.match_substring(agents.dictionary, DUMMY_CONNECTION)
        kinds = pa.array(INTERNAL_KINDS)
        if not pc.any(pc.is_valid(by_ip)).as_py() and not pc.any(dummy).as_py():
            return pa.DictionaryArray.from_arrays(pa.nulls(len(ips), pa.int32()), kinds)
        codes = pc.take(by_ip, ips.indices)
        from_agent = pc.and_kleene(pc.is_null(codes), pc.take(dummy, agents.indices))
        codes = pc.if_else(pc.fill_null(from_agent, False), _code(WEB_SERVER), codes)
        return pa.DictionaryArray.from_arrays(codes, kinds)

    def _kind_of(self, ip: str) -> int | None:
        if ip not in self._by_ip:
            self._by_ip[ip] = self._classify(ip)
        return self._by_ip[ip]

    def _classify(self, ip: str) -> int | None:
        address = _address(ip)
        if address is None:
            return None
        version, number = address
        if any(v == version and number & mask == first for v, first, mask in self._ranges):
            return INTERNAL_NETWORK
        loopback = number >> 24 == 127 if version == 4 else number == 1
        return WEB_SERVER if loopback else None


def _address(ip: str) -> tuple[int, int] | None:
    """(IP version, the address as an integer), an IPv4-mapped IPv6 address as its IPv4
    address; None for text that is not an IP. inet_pton, as ipaddress takes 5 times as long
    (a log may hold a distinct IP every few lines)."""
    try:
        if ":" not in ip:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        packed = socket.inet_pton(socket.AF_INET6, ip)
    except (OSError, ValueError):
        return None
    if packed.startswith(MAPPED_PREFIX):
        return 4, int.from_bytes(packed[len(MAPPED_PREFIX) :], "big")
    return 6, int.from_bytes(packed, "big")


def _code(code: int | None) -> pa.Scalar:
    return pa.scalar(code, pa.int32())


def _browsers_and_devices() -> ua_parser.Parser:
    """ua-parser over its built-in browser and device regexes (not the OS ones, unused),
    matched by its Rust resolver."""
    import ua_parser
    from ua_parser import regex

    browsers, _, devices = ua_parser.load_builtins()
    return ua_parser.Parser(regex.Resolver((browsers, [], devices)))


@functools.cache
def agent_classifier() -> AgentClassifier:
    """The process's classifier (compiling the list's patterns takes a moment)."""
    return AgentClassifier()


def as_dictionary(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """A column as one dictionary array (the parser gives most columns as such already)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array if isinstance(array, pa.DictionaryArray) else pc.dictionary_encode(array)
