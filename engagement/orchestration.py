"""What the Airflow DAGs use besides the pipeline: a task's settings, the failures that no
retry can mend, and the failure notification.

Light at import (the DAG files import it when they are parsed): the settings model and
Airflow's task SDK only; the pipeline is imported inside the tasks.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseNotifier, Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from pydantic import SecretStr

from engagement.errors import UsageError
from engagement.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def task_settings() -> Settings:
    """The environment's settings, with the X bearer token of the `ENGAGEMENT_X_CONN_ID`
    connection (its password) and the X app's OAuth 2.0 client of the
    `ENGAGEMENT_X_OAUTH_CONN_ID` connection (login and password) when Airflow has them:
    secrets kept in Airflow's connections or secrets backend rather than in every worker's
    environment."""
    settings = Settings.from_env()
    oauth = _connection(settings.x_oauth_conn_id)
    if oauth is not None and oauth.login:
        secret = SecretStr(oauth.password) if oauth.password else None
        settings = settings.model_copy(
            update={"x_client_id": oauth.login, "x_client_secret": secret}
        )
    connection = _connection(settings.x_conn_id)
    if connection is None or not connection.password:
        return settings
    source = f"the Airflow connection {settings.x_conn_id}'s password (ENGAGEMENT_X_CONN_ID)"
    return settings.with_x_token(connection.password, source)


def _connection(conn_id: str) -> Connection | None:
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


@contextmanager
def failing_for_good() -> Iterator[None]:
    """Errors that the same run cannot mend fail the task at once, without retries: the API
    refused the request (400, 401, 403: the token, plan or settings must change), the gate
    refused the batch (quarantined; clearing the task lands it again), a bad setting (the
    log format's too), an unknown X account, an account's revoked user-context grant, a run
    over the monthly X budget, a part of a support-site extraction missing when the parts are
    combined (the workers do not share the data directory, or it was removed)."""
    from engagement.gate import BatchRejected
    from extract.access_log import PartMissing
    from extract.log_format import LogFormatError
    from extract.x import RequestRefused
    from extract.x_auth import NotAuthorised
    from extract.x_bill import OverBudget

    try:
        yield
    except (
        RequestRefused,
        NotAuthorised,
        OverBudget,
        BatchRejected,
        SettingsError,
        LogFormatError,
        PartMissing,
    ) as error:
        raise AirflowFailException(str(error)) from error


def failure_message(context: Any) -> str:
    ti = context["ti"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    interval = f" for the interval {start} - {end}" if start and end else ""
    return (
        f"engagement: {ti.dag_id}.{ti.task_id} failed{interval} (run {ti.run_id}, try"
        f" {ti.try_number}): {context.get('exception') or 'see the task log'}"
    )


class FailureNotifier(BaseNotifier):
    """Every failed task is logged (the task's log and the worker's); with a connection id
    (`ENGAGEMENT_ALERT_CONN_ID`) it is also reported there (`send`)."""

    template_fields = ()

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        message = failure_message(context)
        log.error("%s", message)
        if self.conn_id:
            ti = context["ti"]
            subject = f"engagement: {ti.dag_id}.{ti.task_id} failed"
            send(self.conn_id, subject, message, context)


def notify_unanswered(settings: Settings, context: Any) -> int:
    """The mart DAG's task after a publish: the mentions past their target and still
    unanswered not sent before (engagement/unanswered.py), logged and, with
    ENGAGEMENT_ALERT_CONN_ID, sent there as one message; returns how many."""
    from engagement import unanswered

    def report(text: str, items: list[unanswered.Overdue]) -> None:
        log.warning("%s", text)
        if settings.alert_conn_id:
            subject = f"engagement: {len(items)} mentions past their target, unanswered"
            send(settings.alert_conn_id, subject, text, context, event="unanswered")

    return len(unanswered.notify(settings, report))


def send(conn_id: str, subject: str, text: str, context: Any, **fields: Any) -> None:
    """Report `text` to the connection `conn_id` (ENGAGEMENT_ALERT_CONN_ID) with Airflow's
    own notifiers: an `http` connection gets `{"text": text, **fields}` POSTed
    (HttpNotifier), an `smtp` one a mail titled `subject` to the `to` of its extra
    (SmtpNotifier). Sent as given: the notifiers' templating is not run on it (a post's
    text may hold `{{`)."""
    connection = Connection.get(conn_id)
    if connection.conn_type == "http":
        from airflow.providers.http.notifications.http import HttpNotifier

        HttpNotifier(http_conn_id=conn_id, json={"text": text, **fields}).notify(context)
    elif connection.conn_type in ("smtp", "email"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(
            to=connection.extra_dejson["to"],
            smtp_conn_id=conn_id,
            subject=subject,
            html_content=f"<pre>{html.escape(text)}</pre>",
        ).notify(context)
    else:
        raise UsageError(
            f"ENGAGEMENT_ALERT_CONN_ID={conn_id}: a connection of type"
            f" {connection.conn_type!r}; expected http (a webhook) or smtp (mail)"
        )
