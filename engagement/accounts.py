"""How each company account works: its time zone, weekly opening hours, holidays and
first-response target, read from the accounts file (setting ENGAGEMENT_ACCOUNTS_FILE; the
format is in docs/care.md). The build hands it to dbt as the var `x_account_care`, where the
first response is measured in calendar and in business minutes
(models/intermediate/int_x__account_business_hours.sql).

    defaults:                       # every account, unless it says otherwise below
      first_response_target: {minutes: 60, basis: calendar}
    accounts:
      acmesupport:
        time_zone: Europe/Berlin
        hours: {mon-fri: "08:00-18:00", sat: "10:00-14:00"}
        holidays: {country: DE, subdivision: BE}
        first_response_target: {minutes: 120, basis: business}

Without a file, every account is open 24/7 in UTC with no holidays and the default target.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import available_timezones

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engagement.errors import UsageError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "24/7"
# the years whose holidays the build passes to dbt: from X's first year to well ahead, a
# fixed span so the same file always builds the same mart
HOLIDAY_YEARS = range(2006, 2041)
SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minutes: float = Field(gt=0)
    basis: Literal["calendar", "business"] = "calendar"


class HolidayCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str
    subdivision: str | None = None

    def dates(self) -> list[str]:
        """The calendar's holidays over HOLIDAY_YEARS, as ISO dates."""
        try:
            calendar = holidays.country_holidays(
                self.country, subdiv=self.subdivision, years=HOLIDAY_YEARS
            )
        except NotImplementedError as exc:  # the package's word for an unknown country/subdiv
            raise ValueError(str(exc)) from None
        return sorted(day.isoformat() for day in calendar)


class Care(BaseModel):
    """One account's care settings; a field an account leaves out is the defaults'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = "UTC"
    hours: Literal["24/7"] | dict[str, str | list[str]] = ALWAYS
    holidays: HolidayCalendar | None = None
    first_response_target: Target | None = Target(minutes=60)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Berlin)")
        return value

    @field_validator("hours")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        if value != ALWAYS:
            openings(value)  # raises ValueError on a bad day or span
        return value

    def schedule(self) -> list[tuple[int, int, int]]:
        """(ISO weekday 1-7, opening minute, closing minute) of each weekly opening span."""
        if self.hours == ALWAYS:
            return [(day, 0, 24 * 60) for day in range(1, 8)]
        return openings(self.hours)


def openings(hours: dict[str, str | list[str]]) -> list[tuple[int, int, int]]:
    """`{"mon-fri": "08:00-18:00", "sat": ["10:00-12:00", "13:00-15:00"]}` as (ISO weekday,
    opening minute, closing minute) spans, sorted and disjoint; closing may be 24:00."""
    spans = []
    for days, times in hours.items():
        first, _, last = days.strip().lower().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{days!r} is not a day or a range of days (mon ... sun, mon-fri)")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{days!r}: a range of days runs from monday to sunday")
        for text in [times] if isinstance(times, str) else times:
            match = SPAN.match(text.strip())
            if not match:
                raise ValueError(f"{text!r} is not an opening span like 08:00-18:00")
            h1, m1, h2, m2 = map(int, match.groups())
            opens, closes = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or not 0 <= opens < closes <= 24 * 60:
                raise ValueError(f"{text!r}: the opening must come before the closing, 00:00-24:00")
            spans += [(day + 1, opens, closes) for day in range(start, end + 1)]
    spans.sort()
    for (day, _, closes), (next_day, opens, _) in zip(spans, spans[1:], strict=False):
        if day == next_day and opens < closes:
            raise ValueError(f"the openings of {DAYS[day - 1]} overlap")
    return spans


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Care = Care()
    accounts: dict[str, Care] = {}

    @field_validator("accounts", mode="before")
    @classmethod
    def _usernames(cls, value: Any) -> Any:
        if isinstance(value, dict):  # as X_ACCOUNTS may write them; an empty entry: defaults
            return {str(name).lstrip("@").lower(): own or {} for name, own in value.items()}
        return value

    def care(self, username: str | None) -> Care:
        """The settings of `username` (None: of an account the file does not name): its
        own fields, the defaults' for those it leaves out."""
        own = self.accounts.get(username.lower()) if username else None
        if own is None:
            return self.defaults
        return self.defaults.model_copy(
            update={field: getattr(own, field) for field in own.model_fields_set}
        )


def load(path: Path | None) -> AccountsFile:
    """The accounts file at `path` (None: the defaults). A bad file raises UsageError in one
    line naming the file and what to fix."""
    if path is None:
        return AccountsFile()
    where = f"ENGAGEMENT_ACCOUNTS_FILE={path}"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        accounts = AccountsFile.model_validate(data)
        for username in [None, *accounts.accounts]:
            care = accounts.care(username)
            if care.holidays:
                care.holidays.dates()
        return accounts
    except ValidationError as exc:
        error = exc.errors()[0]
        place = ".".join(str(part) for part in error["loc"])
        raise UsageError(f"{where}: {place}: {error['msg']}") from None
    except ValueError as exc:
        raise UsageError(f"{where}: holidays: {exc}") from None


def dbt_var(accounts: AccountsFile) -> list[dict[str, Any]]:
    """The var `x_account_care`: an entry per account the file names and one with username
    null for any other, each with its time zone, opening spans, holidays and target. Only
    the file decides it (not X_ACCOUNTS), so only a changed file rebuilds the mart."""
    entries = []
    for username in [None, *sorted(accounts.accounts)]:
        care = accounts.care(username)
        target = care.first_response_target
        entries.append(
            {
                "username": username,
                "time_zone": care.time_zone,
                "openings": [list(span) for span in care.schedule()],
                "holidays": care.holidays.dates() if care.holidays else [],
                "target_minutes": target.minutes if target else None,
                "target_basis": target.basis if target else None,
            }
        )
    return entries
