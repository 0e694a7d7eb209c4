"""Build the dbt seed ``referrer_hosts.csv`` from Matomo's referrer lists.

The lists come from the Matomo "searchengine-and-social-list" project, released under
CC0 1.0 (public domain dedication, see ``matomo_LICENSE`` next to them):

* ``matomo_Socials.yml``       ``Network: [host, ...]``               -> ``social``
* ``matomo_SearchEngines.yml`` ``Engine: [{urls: [host, ...]}, ...]`` -> ``search``
* ``matomo_AIAssistants.yml``  ``Assistant: [host, ...]``             -> ``ai_assistant``

Rules (kept deliberately simple; the dbt model ``int_support_site__referrer_channels``
does the matching):

* Every url of every entry is taken, lowercased, with one leading ``www.`` or ``m.``
  removed (``www.facebook.com`` and ``m.facebook.com`` become ``facebook.com``; the SQL
  side strips the same prefixes from the referrer host). ``{}`` is kept verbatim: in SQL
  it matches any label(s), e.g. ``google.{}`` matches ``google.co.uk``.
* We match on the referrer *host* only. A pattern with a path (``x.com/i/grok``,
  ``bing.com/images/search``, ``google.{}/cse``) contributes its host only when no
  host-only pattern of any list already names that host. So ``x.com`` stays Twitter
  (social) and Grok-on-x.com traffic is counted as Twitter, ``bing.com`` stays Bing.
  Android app referrers (``android-app//...``) are dropped.
* When several lists name the same host, the row with the highest precedence wins:
  host-only before path-derived, then ``ai_assistant`` > ``social`` > ``search``
  (e.g. ``chatgpt.com`` is both a Matomo search engine and an AI assistant -> ai_assistant;
  ``www.facebook.com`` is both -> social), then the network name alphabetically.
* Network names are URL-decoded (Matomo writes ``Google%2B``).

The output is sorted by host_pattern, so re-running gives a byte-identical file.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from urllib.parse import unquote

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_PATH = REPO_ROOT / "dbt_project" / "seeds" / "referrer_hosts.csv"
# the shared reference data sits next to the repository: <repo>/../shared/data/reference
DEFAULT_REFERENCE_DIR = REPO_ROOT.parent / "shared" / "data" / "reference"
HEADER = ("host_pattern", "network", "channel")

# lower rank wins
CHANNEL_RANK = {"ai_assistant": 0, "social": 1, "search": 2}


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def _simple_list(data: dict) -> list[tuple[str, str]]:
    """``Name: [url, ...]`` (Socials, AIAssistants) -> [(network, url)]."""
    return [(str(name), str(url)) for name, urls in data.items() for url in urls or []]


def _search_engines(data: dict) -> list[tuple[str, str]]:
    """``Name: [{urls: [url, ...], params: ...}, ...]`` -> [(network, url)]."""
    return [
        (str(name), str(url))
        for name, entries in data.items()
        for entry in entries or []
        for url in (entry or {}).get("urls") or []
    ]


def _normalise_host(host: str) -> str:
    """Lowercase, trim dots and drop one leading ``www.`` or ``m.`` (the SQL side does the same)."""
    host = host.strip().strip(".").lower()
    for prefix in ("www.", "m."):
        if host.startswith(prefix) and len(host) > len(prefix):
            return host[len(prefix) :]
    return host


def build_referrer_seed(reference_dir: Path) -> list[tuple[str, str, str]]:
    """Return sorted, de-duplicated (host_pattern, network, channel) rows."""
    reference_dir = Path(reference_dir)
    sources = [
        ("social", _simple_list(_load(reference_dir / "matomo_Socials.yml"))),
        ("search", _search_engines(_load(reference_dir / "matomo_SearchEngines.yml"))),
        ("ai_assistant", _simple_list(_load(reference_dir / "matomo_AIAssistants.yml"))),
    ]
    # host_pattern -> (rank tuple, network, channel)
    best: dict[str, tuple[tuple[int, int, str], str, str]] = {}
    for channel, pairs in sources:
        for raw_network, raw_url in pairs:
            network = unquote(raw_network).strip()
            url = raw_url.strip().lower()
            if not url or url.startswith("android-app:") or url.startswith("android-app/"):
                continue
            has_path = "/" in url
            host = _normalise_host(url.split("/", 1)[0])
            if not host or " " in host:
                continue
            rank = (int(has_path), CHANNEL_RANK[channel], network)
            current = best.get(host)
            if current is None or rank < current[0]:
                best[host] = (rank, network, channel)
    return sorted((host, network, channel) for host, (_, network, channel) in best.items())


def write_seed(rows: list[tuple[str, str, str]], path: Path = SEED_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    reference_dir = Path(args[0]) if args else DEFAULT_REFERENCE_DIR
    output = Path(args[1]) if len(args) > 1 else SEED_PATH
    rows = build_referrer_seed(reference_dir)
    write_seed(rows, output)
    print(f"wrote {len(rows)} referrer host patterns to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
