"""Settings: one model (its reference, docs/configuration.md, is tests/test_docs.py's), bad
values refused in one line naming the variable, secrets never shown."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from engagement.settings import Settings, SettingsError
from tests.conftest import REPO, engagement

TOKEN = "supersecret-token-4242"
HMAC_KEY = "supersecret-hmac-key-4242"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("X_MAX_RETRIES", "five", "X_MAX_RETRIES: Input should be a valid integer"),
        ("SUPPORT_SITE_BLOCK_MB", "0", "SUPPORT_SITE_BLOCK_MB: Input should be greater than 0"),
        ("X_RETRY_BACKOFF", "-1", "X_RETRY_BACKOFF: Input should be greater than or equal to 0"),
        (
            "SUPPORT_SITE_ANSWER_PATHS",
            "/kb/*,articles/*",
            "SUPPORT_SITE_ANSWER_PATHS: Value error, each path pattern starts with / or *",
        ),
        (
            "X_METRICS_REFRESH_DAYS",
            "1.5",
            "X_METRICS_REFRESH_DAYS: Input should be a valid integer",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert str(error.value).startswith(f"invalid setting {expected}")
    assert repr(value) in str(error.value)
    result = engagement("headline", env=dict(os.environ, **{variable: value}), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and variable in result.stderr


def test_values_are_read_as_the_readme_says() -> None:
    settings = Settings.from_env(
        {
            "X_ACCOUNTS": " brand, support ,",
            "X_API_BASE_URL": "http://127.0.0.1:1/",
            "X_MAX_RETRIES": "",
        }
    )
    assert settings.x_accounts == ("brand", "support")
    assert Settings.from_env(
        {"SUPPORT_SITE_ANSWER_PATHS": " /kb/* , /faq ,"}
    ).support_site_answer_paths == ("/kb/*", "/faq")
    assert settings.x_api_base_url == "http://127.0.0.1:1"
    assert settings.x_policy.max_retries == 5  # empty means the default
    assert settings.data_dir.is_absolute()


def test_secrets_never_show(tmp_path) -> None:
    env = {"X_BEARER_TOKEN": TOKEN, "ENGAGEMENT_IP_HMAC_KEY": HMAC_KEY}
    settings = Settings.from_env(env)
    assert settings.x_bearer_token.get_secret_value() == TOKEN
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
        f"{settings!r} {settings.x_bearer_token} {settings.ip_hmac_key!r}",
    ]
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**env, "X_TIMELINE_CAP": "lots"})
    shown.append(str(error.value))
    for text in shown:
        assert TOKEN not in text and HMAC_KEY not in text

    with socket.socket() as closed:  # a port nobody listens on: the extraction fails
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = engagement(
        "extract", "x", "--start", "2026-11-02", "--end", "2026-11-03",
        env=dict(
            os.environ, **env, X_API_BASE_URL=f"http://127.0.0.1:{port}", X_ACCOUNTS="brand",
            X_MAX_RETRIES="0", ENGAGEMENT_DATA_DIR=str(tmp_path / "data"),
        ),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    for text in (result.stdout, result.stderr, *(p.read_text() for p in tmp_path.rglob("*.*"))):
        assert TOKEN not in text and HMAC_KEY not in text


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["extract", "x", "--start", "2026-11-02", "--end", "2026-11-03"],
        ["load", "--source", "x", "--start", "2026-11-02", "--end", "2026-11-03"],
        ["build"],
        ["headline"],
    ],
)
def test_runtime_commands_import_no_development_tooling(command: list[str], tmp_path) -> None:
    """The sandbox and the sample generator (package devtools) are for development: the
    product's commands run (here: up to their first error, with nothing set up) without
    importing any of it."""
    env = dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(tmp_path / "data"),
        X_BEARER_TOKEN=TOKEN,
        X_ACCOUNTS="brand",
        X_API_BASE_URL="http://127.0.0.1:9",
        X_MAX_RETRIES="0",
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "engagement.cli", *command],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "engagement.settings" in imported  # the run got as far as the product's code
    assert not {name for name in imported if name.partition(".")[0] == "devtools"}


def test_the_clis_fault_kinds_are_the_sandboxs() -> None:
    from devtools.x_sandbox import FAULT_KINDS

    result = engagement("sandbox", "--help", env=dict(os.environ))
    assert "|".join(FAULT_KINDS) in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("accounts: {a: {time_zone: Mars/Base}}", "accounts.a.time_zone: Value error, unknown"),
        ("accounts: {a: {hours: {funday: '08:00-18:00'}}}", "'funday' is not a day"),
        ("accounts: {a: {hours: {mon: '18:00-08:00'}}}", "opening must come before"),
        ("accounts: {a: {hours: {mon-fri: '08:00-18:00', wed: '12:00-20:00'}}}", "wed overlap"),
        ("accounts: {a: {holidays: {country: XX}}}", "holidays: Country XX not available"),
        ("accounts: {a: {holidays: {country: DE, subdivision: ZZ}}}", "does not have subdivision"),
        ("defaults: {first_response_target: {minutes: 0}}", "minutes: Input should be greater"),
        ("accounts: {a: {colour: red}}", "accounts.a.colour: Extra inputs are not permitted"),
        ("accounts: [", "not valid YAML"),
    ],
)
def test_a_bad_accounts_file_is_one_line_naming_it_and_the_field(
    text: str, says: str, tmp_path
) -> None:
    from engagement import accounts
    from engagement.errors import UsageError

    path = tmp_path / "accounts.yml"
    path.write_text(text)
    with pytest.raises(UsageError) as refused:
        accounts.load(path)
    assert str(refused.value).startswith(f"ENGAGEMENT_ACCOUNTS_FILE={path}: ")
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_an_accounts_file_gives_each_account_its_own_fields_and_the_defaults_rest(
    tmp_path,
) -> None:
    """What the build passes to dbt: the defaults' entry (username null) and one per account
    of the file; the demo's file is valid; a missing file is one line."""
    from engagement import accounts
    from engagement.errors import UsageError

    path = tmp_path / "accounts.yml"
    path.write_text(
        "defaults: {time_zone: Europe/Berlin, first_response_target: {minutes: 30}}\n"
        "accounts:\n"
        "  '@AcmeSupport': {hours: {mon-fri: '08:00-12:00', sat: ['10:00-11:00', '12:00-24:00']},"
        " holidays: {country: DE, subdivision: BE}, first_response_target: null}\n"
    )
    entries = accounts.dbt_var(accounts.load(path))
    by_name = {entry["username"]: entry for entry in entries}
    assert list(by_name) == [None, "acmesupport"]  # other accounts take the null entry
    assert by_name[None]["openings"] == [[day, 0, 1440] for day in range(1, 8)]
    assert (by_name[None]["target_minutes"], by_name[None]["target_basis"]) == (30, "calendar")
    support = by_name["acmesupport"]
    assert support["time_zone"] == "Europe/Berlin"  # the defaults'
    assert support["openings"] == [[d, 480, 720] for d in range(1, 6)] + [
        [6, 600, 660],
        [6, 720, 1440],
    ]
    assert support["target_minutes"] is None and "2026-10-03" in support["holidays"]
    assert accounts.load(REPO / "scripts" / "demo_accounts.yml").care("acmesupport").holidays
    with pytest.raises(UsageError, match="ENGAGEMENT_ACCOUNTS_FILE=.*cannot read it"):
        accounts.load(tmp_path / "missing.yml")
