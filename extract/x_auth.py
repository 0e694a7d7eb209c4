"""User-context access to X: OAuth 2.0 Authorization Code with PKCE, tokens kept and refreshed.

`login` runs the flow once per account through tweepy's `OAuth2UserHandler` (it makes the PKCE
verifier and keeps it, with the state, until the callback). The grant is kept by `TokenStore`:
a file per account, readable only by its owner, in a directory every worker sees. X's access
tokens last two hours and each refresh rotates the refresh token (the old one dies at once),
so a refresh happens under the account's file lock and the rotated grant is written
(atomically) before its access token is used: two tasks refreshing at once make one refresh,
and the second reads its result. Airflow 3 tasks cannot write connections (the Task SDK only
reads them), which is why the tokens live here and not in an Airflow connection.

A grant X refuses (revoked by the user, or unused past its lifetime) is `NotAuthorised`: no
retry can mend it, only `engagement x-login ACCOUNT` again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests
import tweepy
from oauthlib.oauth2 import OAuth2Error
from pydantic import BaseModel, ConfigDict, SecretStr
from requests.auth import AuthBase, HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from engagement.errors import UsageError
from engagement.settings import REAL_X_API, Policy, Settings

log = logging.getLogger(__name__)

TOKEN_URL = REAL_X_API + "/2/oauth2/token"  # tweepy's; rerouted like every request
AUTHORIZE_PREFIX = "https://twitter.com"  # tweepy's authorize URL starts with it
FEATURE_SCOPES = {"dm_events": ("dm.read",), "private_metrics": ()}
BASE_SCOPES = ("tweet.read", "users.read", "offline.access")
REFRESH_MARGIN = timedelta(minutes=5)  # refresh an access token this long before it expires


class NotAuthorised(UsageError):
    """The account has no usable user-context grant: only signing in again mends it."""


class TokenError(UsageError):
    """The token endpoint could not be reached or answered nonsense after the retries."""


def scopes(features: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes the configured user-context features need, offline.access (refresh) too."""
    extra = {scope for feature in features for scope in FEATURE_SCOPES[feature]}
    return tuple(sorted(set(BASE_SCOPES) | extra))


class Grant(BaseModel):
    """An account's tokens. SecretStr keeps the tokens out of reprs, errors and dumps."""

    model_config = ConfigDict(frozen=True)

    account: str
    user_id: str
    scope: str
    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime
    obtained_at: datetime

    @classmethod
    def from_token(cls, account: str, user_id: str, token: dict, now: datetime) -> Grant:
        if not token.get("refresh_token"):
            raise NotAuthorised(
                f"X granted @{account} no refresh token (scope offline.access was not"
                " granted): run `engagement x-login " + account + "` again and allow it"
            )
        scope = token.get("scope", "")
        return cls(
            account=account,
            user_id=user_id,
            scope=" ".join(scope) if isinstance(scope, list) else scope,
            access_token=SecretStr(token["access_token"]),
            refresh_token=SecretStr(token["refresh_token"]),
            expires_at=now + timedelta(seconds=int(token.get("expires_in", 7200))),
            obtained_at=now,
        )

    def secret_dict(self) -> dict:
        """The grant as its file holds it, the tokens revealed."""
        data = self.model_dump(mode="json")
        data["access_token"] = self.access_token.get_secret_value()
        data["refresh_token"] = self.refresh_token.get_secret_value()
        return data


def relogin(account: str) -> str:
    return f"run `engagement x-login {account}` to authorise it again"


@dataclass(frozen=True)
class TokenStore:
    """A file per account (`<account>.json`, mode 0600, in a 0700 directory) and a lock file
    beside it that serialises its refreshes across threads and processes."""

    directory: Path

    def path(self, account: str) -> Path:
        return self.directory / f"{account.lower()}.json"

    def load(self, account: str) -> Grant | None:
        try:
            return Grant.model_validate_json(self.path(account).read_text())
        except FileNotFoundError:
            return None

    def accounts(self) -> list[str]:
        return (
            sorted(p.stem for p in self.directory.glob("*.json")) if self.directory.is_dir() else []
        )

    def save(self, grant: Grant) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path(grant.account)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(grant.secret_dict(), out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)

    def remove(self, account: str) -> bool:
        try:
            self.path(account).unlink()
            return True
        except FileNotFoundError:
            return False

    @contextmanager
    def lock(self, account: str) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / f".{account.lower()}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class OAuthApp:
    """The X app's OAuth 2.0 client and where its token endpoint is reached."""

    client_id: str
    client_secret: SecretStr | None
    redirect_uri: str
    base_url: str = REAL_X_API
    policy: Policy = Policy()

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthApp:
        if not settings.x_client_id:
            raise UsageError(
                "X_CLIENT_ID is not set: user-context access needs your X app's OAuth 2.0"
                " client id (and X_CLIENT_SECRET for a confidential app)"
            )
        return cls(
            settings.x_client_id,
            settings.x_client_secret,
            settings.x_redirect_uri,
            settings.x_api_base_url,
            settings.x_policy,
        )

    def _mount(self, session: requests.Session) -> None:
        from extract.x import Reroute

        session.mount(REAL_X_API + "/", Reroute(self.base_url, self.policy.timeout))

    def _client_auth(self) -> HTTPBasicAuth | None:
        if self.client_secret is None:
            return None
        return HTTPBasicAuth(self.client_id, self.client_secret.get_secret_value())

    def handler(self, scope: tuple[str, ...]) -> tweepy.OAuth2UserHandler:
        handler = tweepy.OAuth2UserHandler(
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scope=list(scope),
            client_secret=self.client_secret and self.client_secret.get_secret_value(),
        )
        self._mount(handler)
        return handler

    def authorization_url(self, handler: tweepy.OAuth2UserHandler) -> str:
        url = handler.get_authorization_url()
        if self.base_url != REAL_X_API:  # the sandbox serves the authorize page itself
            url = self.base_url + url.removeprefix(AUTHORIZE_PREFIX)
        return url

    def exchange(self, handler: tweepy.OAuth2UserHandler, redirected_to: str) -> dict:
        """The tokens for the code of the URL the browser was sent back to."""
        query = urlsplit(redirected_to).query
        if "error=" in query and "code=" not in query:
            raise NotAuthorised(f"X did not authorise the app ({query}): try again")
        with _loopback_transport(redirected_to):
            return self._token_call(lambda: handler.fetch_token(redirected_to))

    def refresh(self, grant: Grant) -> dict:
        session = OAuth2Session(self.client_id)
        self._mount(session)
        session.register_compliance_hook("refresh_token_response", _transient_on_5xx)
        return self._token_call(
            lambda: session.refresh_token(
                TOKEN_URL,
                refresh_token=grant.refresh_token.get_secret_value(),
                auth=self._client_auth(),
                client_id=self.client_id,
                timeout=self.policy.timeout,
            ),
            account=grant.account,
        )

    def _token_call(self, call: Callable[[], dict], account: str | None = None) -> dict:
        failures: list[str] = []
        while True:
            try:
                return dict(call())
            except OAuth2Error as exc:  # X refused the code or the refresh token
                who = f"@{account}" if account else "the sign-in"
                raise NotAuthorised(
                    f"X refused {who}'s authorisation ({exc.error}: it was revoked, expired or"
                    f" already used): {relogin(account) if account else 'sign in again'}"
                ) from None
            except (requests.ConnectionError, requests.Timeout, _Transient) as exc:
                failures.append(str(exc) if isinstance(exc, _Transient) else type(exc).__name__)
            if len(failures) > self.policy.max_retries:
                raise TokenError(
                    f"POST /2/oauth2/token: giving up after {len(failures)} failed attempts"
                    f" ({', '.join(failures)}): check X_API_BASE_URL and try again"
                )
            time.sleep(self.policy.backoff * 2 ** (len(failures) - 1))


class _Transient(Exception):
    pass


def _transient_on_5xx(response: requests.Response) -> requests.Response:
    if response.status_code >= 500:
        raise _Transient(f"{response.status_code} {response.reason}")
    return response


@contextmanager
def _loopback_transport(url: str) -> Iterator[None]:
    """oauthlib refuses an http:// redirect; RFC 8252 allows it on the loopback address."""
    host = urlsplit(url).hostname or ""
    if not (url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1")):
        yield
        return
    before = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["OAUTHLIB_INSECURE_TRANSPORT"]
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = before


def access_token(
    store: TokenStore,
    app: OAuthApp,
    account: str,
    *,
    stale: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    """A usable access token of `account`: the stored one, or a refreshed one when it expires
    within REFRESH_MARGIN or is `stale` (the API just refused it). Under the account's lock,
    so a concurrent refresh is waited for and its result used."""
    with store.lock(account):
        grant = store.load(account)
        if grant is None:
            raise NotAuthorised(
                f"@{account} is not authorised for user context: {relogin(account)}"
            )
        token = grant.access_token.get_secret_value()
        if token != stale and grant.expires_at - REFRESH_MARGIN > clock():
            return token
        renewed = Grant.from_token(account, grant.user_id, app.refresh(grant), clock())
        store.save(renewed)  # before use: the old refresh token is already dead
        log.info("@%s: access token refreshed, valid until %s", account, renewed.expires_at)
        return renewed.access_token.get_secret_value()


class UserAuth(AuthBase):
    """Requests auth for one account's user context: the current access token on each
    request, and one refresh and resend when the API answers 401 to it."""

    def __init__(self, store: TokenStore, app: OAuthApp, account: str) -> None:
        self.store, self.app, self.account = store, app, account

    def __repr__(self) -> str:
        return f"UserAuth(@{self.account})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = access_token(self.store, self.app, self.account)
        request.headers["Authorization"] = f"Bearer {token}"
        request.register_hook("response", self._on_401(token))
        return request

    def _on_401(self, sent: str) -> Callable:
        def retry(response: requests.Response, **kwargs) -> requests.Response:
            if response.status_code != 401 or getattr(response.request, "_resent", False):
                return response
            token = access_token(self.store, self.app, self.account, stale=sent)
            response.content  # noqa: B018  (read it, so the connection can be reused)
            request = response.request.copy()
            request.headers["Authorization"] = f"Bearer {token}"
            request._resent = True  # type: ignore[attr-defined]
            resent = response.connection.send(request, **kwargs)
            resent.history.append(response)
            resent.request = request
            return resent

        return retry


def user_client(store: TokenStore, app: OAuthApp, account: str) -> tweepy.Client:
    """A tweepy client of `account`'s user context. Its calls need `user_auth=False` (tweepy
    means OAuth 1.0a by user_auth=True); the Authorization header is UserAuth's."""
    from extract.x import make_client

    client = make_client("user-context", app.base_url, app.policy.timeout)
    client.session.auth = UserAuth(store, app, account)
    return client


def authorised_username(app: OAuthApp, token: str) -> tuple[str, str]:
    """(id, username) of the user an access token belongs to (GET /2/users/me)."""
    from extract.x import make_client

    client = make_client(token, app.base_url, app.policy.timeout)
    response = client.get_me(user_auth=False)
    data = response.json()["data"]
    return data["id"], data["username"]


def login(
    settings: Settings,
    account: str,
    *,
    paste: bool = False,
    wait: float = 300.0,
    show: Callable[[str], None] = print,
) -> Grant:
    """Authorise `account`: show the authorize URL, take the URL the browser is sent back to
    (caught on a loopback X_REDIRECT_URI, else, or with `paste`, read from the input),
    exchange its code, check that the signed-in user is @account, keep the grant."""
    app = OAuthApp.from_settings(settings)
    store = TokenStore(settings.tokens_dir)
    settings.check_writable(store.directory, setting=f"ENGAGEMENT_X_TOKENS_DIR={store.directory}")
    handler = app.handler(scopes(settings.x_user_features))
    url = app.authorization_url(handler)
    show(f"Open this URL, sign in as @{account} and authorise the app:\n{url}")
    if paste or not _is_loopback(app.redirect_uri):
        back = input("Paste the URL the browser was sent back to: ").strip()
    else:
        back = catch_redirect(
            app.redirect_uri,
            wait,
            listening=lambda: show(
                f"Waiting up to {wait:.0f} s for X to send the browser back to {app.redirect_uri}"
            ),
        )
    token = app.exchange(handler, back)
    now = datetime.now(UTC)
    user_id, username = authorised_username(app, token["access_token"])
    if username.lower() != account.lower():
        raise NotAuthorised(
            f"signed in as @{username}, not @{account}: sign out of X, then run"
            f" `engagement x-login {account}` and sign in as @{account}"
        )
    grant = Grant.from_token(account, user_id, token, now)
    with store.lock(account):
        store.save(grant)
    return grant


def logout(settings: Settings, account: str) -> bool:
    """Revoke the account's refresh token at X (its grant with it) and forget the tokens;
    False when none were kept. A revocation X refuses still forgets them."""
    store = TokenStore(settings.tokens_dir)
    with store.lock(account):
        grant = store.load(account)
        if grant is None:
            return False
        app = OAuthApp.from_settings(settings)
        with requests.Session() as session:
            app._mount(session)
            response = session.post(
                REAL_X_API + "/2/oauth2/revoke",
                data={
                    "token": grant.refresh_token.get_secret_value(),
                    "token_type_hint": "refresh_token",
                    "client_id": app.client_id,
                },
                auth=app._client_auth(),
            )
        if not response.ok:
            log.warning("@%s: X refused the revocation (%s)", account, response.status_code)
        return store.remove(account)


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and bool(parts.port)
    )


def catch_redirect(
    redirect_uri: str, wait: float, listening: Callable[[], None] = lambda: None
) -> str:
    """The full URL of the first request to `redirect_uri`'s path on its loopback port;
    `listening` is called once the port is bound, so no redirect can arrive before it."""
    parts = urlsplit(redirect_uri)
    caught: list[str] = []

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != (parts.path or "/"):
                self.send_error(404)
                return
            caught.append(f"{parts.scheme}://{parts.netloc}{self.path}")
            body = b"<p>Authorised. You can close this window and go back to the terminal.</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the URL holds the one-time code."""

    try:
        server = HTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Callback)
    except OSError as exc:
        raise UsageError(
            f"X_REDIRECT_URI={redirect_uri}: cannot listen there ({exc.strerror}): free the"
            " port or register another loopback redirect URI in the X app and set it"
        ) from None
    deadline = time.monotonic() + wait
    with server:
        listening()
        server.timeout = 0.5
        while not caught and time.monotonic() < deadline:
            server.handle_request()
    if not caught:
        raise UsageError(
            f"no redirect reached {redirect_uri} within {wait:.0f} s: run x-login again"
            " (--wait gives more time)"
        )
    return caught[0]
