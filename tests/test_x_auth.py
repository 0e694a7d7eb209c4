"""User-context access: x-login through the sandbox's OAuth 2.0 endpoints, the token store,
refresh with rotation under a lock, revocation, DM events landed, tokens kept secret."""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
import requests

from devtools.x_sandbox import SandboxServer
from engagement.settings import Settings
from extract import x_auth
from tests.conftest import REPO, engagement
from tests.conftest import authorise as _authorise
from tests.conftest import token_secrets as _secrets

ACCOUNT = "acmesupport"


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def _grants(sandbox: SandboxServer) -> list[dict]:
    return requests.get(sandbox.url + "/_sandbox/oauth/grants", timeout=10).json()["grants"]


def test_x_login_catches_the_redirect_and_keeps_the_tokens_owner_only(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    login = subprocess.Popen(
        [sys.executable, "-m", "engagement.cli", "x-login", ACCOUNT, "--wait", "120"],
        env=auth_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert login.stdout is not None
    url = ""
    while not url.startswith("http"):  # the authorize URL, on a line of its own
        url = login.stdout.readline().strip()
        assert url or login.poll() is None, login.stderr.read() if login.stderr else ""
    assert url.startswith(sandbox.url + "/i/oauth2/authorize?")
    assert "code_challenge_method=S256" in url and "dm.read" in url and "offline.access" in url
    # "waiting for the redirect" is printed once the loopback port is listened on
    assert "Waiting" in login.stdout.readline()
    browser = requests.get(url + f"&sandbox_user={ACCOUNT}", timeout=30)  # follows the 302
    assert browser.status_code == 200 and "Authorised" in browser.text
    out, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    settings = _settings(auth_env)
    store = x_auth.TokenStore(settings.tokens_dir)
    grant = store.load(ACCOUNT)
    assert grant is not None and grant.account == ACCOUNT
    assert set(grant.scope.split()) == {"dm.read", "offline.access", "tweet.read", "users.read"}
    assert stat.S_IMODE(store.path(ACCOUNT).stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    for secret in _secrets(grant):
        assert secret not in out + err and secret not in repr(grant)
    assert "readable only by you" in out


def test_a_code_of_another_sign_in_is_refused(auth_env: dict[str, str]) -> None:
    settings = _settings(auth_env)
    app = x_auth.OAuthApp.from_settings(settings)
    handler = app.handler(x_auth.scopes(settings.x_user_features))
    back = requests.get(
        app.authorization_url(handler) + "&sandbox_user=acmecloud",
        allow_redirects=False,
        timeout=10,
    ).headers["location"]
    # pasted into another x-login: its code was issued for another PKCE verifier
    result = subprocess.run(
        [sys.executable, "-m", "engagement.cli", "x-login", ACCOUNT, "--paste"],
        env=auth_env,
        cwd=REPO,
        input=back + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("engagement: X refused the sign-in") and "sign in again" in line
    assert not x_auth.TokenStore(settings.tokens_dir).path(ACCOUNT).exists()


def test_signed_in_as_another_account_is_refused(auth_env: dict[str, str]) -> None:
    settings = _settings(auth_env)
    login = threading.Thread(
        target=lambda: requests.get(waiting.get() + "&sandbox_user=acmecloud", timeout=30)
    )
    waiting = _Url(settings.x_redirect_uri)
    with pytest.raises(x_auth.NotAuthorised, match=r"signed in as @acmecloud, not @acmesupport"):
        x_auth.login(settings, ACCOUNT, wait=60, show=waiting.see(login.start))
    login.join()
    assert not x_auth.TokenStore(settings.tokens_dir).path(ACCOUNT).exists()


class _Url:
    """Takes the authorize URL from login's printed lines and starts the 'browser' once
    login says it is waiting, checking first that the redirect's port is listened on then."""

    def __init__(self, redirect_uri: str) -> None:
        self.url = ""
        self.redirect = urlsplit(redirect_uri)

    def get(self) -> str:
        return self.url

    def see(self, browse: Callable[[], None]) -> Callable[[str], None]:
        def show(text: str) -> None:
            found = re.search(r"^http\S+$", text, re.M)
            if found:
                self.url = found[0]
            elif text.startswith("Waiting"):
                # login is paused here: a refused connection means it said so too early
                socket.create_connection((self.redirect.hostname, self.redirect.port), 5).close()
                browse()

        return show


def _blocked_on(lock: Path, waiters: int, threads: list[threading.Thread]) -> None:
    """Until `waiters` flock requests wait on `lock` (/proc/locks shows them as '->'),
    failing if a thread ends first: it did not wait for the lock."""
    inode = lock.stat().st_ino
    while True:
        blocked = [
            line
            for line in Path("/proc/locks").read_text().splitlines()
            if "->" in line and line.split()[-3].endswith(f":{inode}")
        ]
        if len(blocked) >= waiters:
            return
        assert all(t.is_alive() for t in threads), "a refresh ran without waiting for the lock"


def test_two_concurrent_refreshes_make_one_and_a_third_succeeds(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    grant = _authorise(auth_env, ACCOUNT)
    settings = _settings(auth_env)
    store, app = x_auth.TokenStore(settings.tokens_dir), x_auth.OAuthApp.from_settings(settings)
    stale = grant.access_token.get_secret_value()
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(x_auth.access_token(store, app, ACCOUNT, stale=stale))
        )
        for _ in range(2)
    ]
    with store.lock(ACCOUNT):  # both start while a third party holds the lock
        for thread in threads:
            thread.start()
        _blocked_on(store.directory / f".{ACCOUNT}.lock", 2, threads)
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2 and results[0] == results[1] != stale
    assert [g["refreshed"] for g in _grants(sandbox)] == [1]
    kept = store.load(ACCOUNT)
    assert kept is not None and kept.access_token.get_secret_value() == results[0]
    assert kept.refresh_token.get_secret_value() != grant.refresh_token.get_secret_value()
    third = x_auth.access_token(store, app, ACCOUNT, stale=results[0])
    assert third not in (stale, results[0])
    assert [g["refreshed"] for g in _grants(sandbox)] == [2]


def test_an_expired_access_token_is_refreshed_and_the_request_resent(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    grant = _authorise(auth_env, ACCOUNT)
    settings = _settings(auth_env)
    store, app = x_auth.TokenStore(settings.tokens_dir), x_auth.OAuthApp.from_settings(settings)
    # X's clock passes the token's two hours; ours does not know (its own clock says valid)
    requests.post(sandbox.url + "/_sandbox/clock", json={"advance_seconds": 7300}, timeout=10)
    client = x_auth.user_client(store, app, ACCOUNT)
    me = client.get_me(user_auth=False)
    assert me.status_code == 200 and me.json()["data"]["username"] == ACCOUNT
    assert [r.status_code for r in me.history] == [401]
    renewed = store.load(ACCOUNT)
    assert renewed is not None and renewed.access_token != grant.access_token


def test_a_revoked_grant_fails_at_once_naming_the_account_and_the_fix(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    _authorise(auth_env, ACCOUNT)
    requests.post(sandbox.url + "/_sandbox/oauth/revoke", json={"username": ACCOUNT}, timeout=10)
    requests.delete(sandbox.url + "/_sandbox/requests", timeout=10)
    result = engagement(
        "extract", "x", "--start", "2026-11-03", "--end", "2026-11-04", env=auth_env, check=False
    )
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert f"@{ACCOUNT}" in line and f"engagement x-login {ACCOUNT}" in line
    assert len(result.stderr.strip().splitlines()) == 1
    posts = [r for r in requests.get(sandbox.url + "/_sandbox/requests", timeout=10).json()]
    dm_calls = [r for r in posts if r["path"] == "/2/dm_events"]
    assert len(dm_calls) == 1  # refused, refreshed once (refused too), never retried
    assert not list((Path(auth_env["ENGAGEMENT_DATA_DIR"]) / "raw").glob("x/*"))


def test_dm_events_land_for_the_authorised_account_only(
    auth_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    grant = _authorise(auth_env, ACCOUNT)
    result = engagement(
        "extract", "x", "--start", "2026-11-03", "--end", "2026-11-04", env=auth_env
    )
    batch = Path(json.loads(result.stdout.splitlines()[-1])["path"])
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["dm_accounts"] == [ACCOUNT]
    expected = [
        e
        for e in sandbox.dm_events
        if grant.user_id in e["participant_ids"] and "2026-11-03" <= e["created_at"] < "2026-11-04"
    ]
    assert manifest["dm_events"] == len(expected) > 0
    pages = [json.loads(line) for line in (batch / "pages.jsonl").read_text().splitlines()]
    dm_pages = [p for p in pages if p["endpoint"].startswith("dm_events")]
    assert dm_pages and all(p["auth"] == "user" and p["account"] == ACCOUNT for p in dm_pages)
    landed = {e["id"] for p in dm_pages for e in json.loads(p["body"]).get("data", [])}
    assert {e["id"] for e in expected} <= landed
    everything = "".join(p.read_text(errors="replace") for p in batch.rglob("*") if p.is_file())
    for secret in _secrets(x_auth.TokenStore(_settings(auth_env).tokens_dir).load(ACCOUNT)):
        assert secret not in everything and secret not in result.stderr
    engagement(
        "load", "--source", "x", "--start", "2026-11-03", "--end", "2026-11-04", env=auth_env
    )
    raw = Path(auth_env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    with duckdb.connect(str(raw), read_only=True) as con:
        loaded = con.sql("select account_username, event_id from x.dm_events").fetchall()
        access = con.sql("select account_username, is_dm_authorised from x.dm_access").fetchall()
    assert sorted(loaded) == sorted((ACCOUNT, e["id"]) for e in expected)
    assert sorted(access) == [("acmecloud", False), (ACCOUNT, True)]


def test_an_interval_past_xs_30_days_of_dms_is_a_gap(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    _authorise(auth_env, ACCOUNT)
    requests.post(sandbox.url + "/_sandbox/clock", json={"now": "2026-12-04T00:00:00Z"}, timeout=10)
    result = engagement(
        "extract", "x", "--start", "2026-11-03", "--end", "2026-11-04", env=auth_env
    )
    batch = Path(json.loads(result.stdout.splitlines()[-1])["path"])
    manifest = json.loads((batch / "manifest.json").read_text())
    gaps = [g for g in manifest["gaps"] if g["endpoint"] == "dm_events"]
    assert gaps == [
        {
            "account": ACCOUNT,
            "endpoint": "dm_events",
            "cap": 30,
            "newer_than_interval": 0,
            "returned": 0,
            "complete_from": gaps[0]["complete_from"],
        }
    ]
    assert gaps[0]["complete_from"].startswith("2026-11-04")
