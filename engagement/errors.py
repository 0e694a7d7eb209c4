"""The project's errors: one base class, each subclass saying who must act.

The CLI prints an `EngagementError` as one line and exits with its `exit_code`; any other
exception is a bug and keeps its traceback. Messages name the thing to fix: the option,
the setting (environment variable), the file or the Airflow connection.
"""

from __future__ import annotations


class EngagementError(Exception):
    """Base of the project's errors."""

    exit_code = 2


class UsageError(EngagementError):
    """The user must fix something: an option, a setting, a file, a directory, a connection."""


class DataRefused(EngagementError):
    """The data was refused (a batch by the gate, a build by dbt's tests): nothing was
    published from it; the message says where to look."""

    exit_code = 3
