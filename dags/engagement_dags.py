"""Engagement mart DAGs: one DAG lands each daily interval of both sources, one builds
the mart on their Assets.

`engagement_ingest` waits a little for late data, then lands, validates and loads exactly
its data interval for each source (a task group per source, side by side). The support
site's extraction is fanned out: `plan_parts` groups the interval's log files into parts
(SUPPORT_SITE_PART_MB), `extract_part` is mapped over them (the Celery workers parse them in
parallel, into a staging area of the shared data directory), and `combine` lands them as one
batch version, atomically, before the gate and the load. The tasks only
call functions of `engagement.pipeline` (imported inside the tasks, so parsing stays
light). The scheduler catches up every interval from ENGAGEMENT_START_DATE, one at a time.
`engagement_mart` builds on any load of either source (`|`): a reload of one source
(a cleared task, a backfill) is built and published without waiting for the other source's
next load, and a build takes in every load since the last one. An interval where one source
is loaded and the other not yet is published as it is: the coverage mart
(`agg_daily_source_coverage`) marks the source still pending as missing for those days,
never as zero. With `max_active_runs=1`, the loads that come while a build runs are taken
by one more build after it; a build with no new load does nothing (no dbt, no publish).
The landing's writers go before a build waiting for the writer slot (priority), so an
interval whose two loads are both ready is built once, not once per source.
Writers of the DuckDB warehouses (validations, which record the gate's refusals, loads
and builds) share the one-slot pool `duckdb_writer`, so they never write at once, whatever
runs in parallel.
After each publish the mart DAG writes the HTML report of the published mart and sends
the mentions past their account's target and still unanswered, each once, to
ENGAGEMENT_ALERT_CONN_ID (engagement/unanswered.py).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task, task_group

from engagement.orchestration import FailureNotifier, failing_for_good, task_settings
from engagement.settings import Settings

SETTINGS = Settings.from_env()  # the environment only: cheap at parse time
START = pendulum.datetime(*SETTINGS.start_date.timetuple()[:3], tz="UTC")
WRITER_POOL = "duckdb_writer"
# the landing's writers go before a build waiting for the same slot: that build then takes
# in both sources' loads of the interval, instead of one build per source
LANDING_PRIORITY = 10
RAW = {"x": Asset("engagement_raw_x"), "support_site": Asset("engagement_raw_support_site")}
MART = Asset("engagement_mart")
NOTIFY = FailureNotifier(SETTINGS.alert_conn_id)


def _inputs(source: str, start, end) -> tuple:
    """The pipeline functions' arguments: settings, the source and the run's data interval."""
    from engagement.landing import Interval, Source

    return task_settings(), Source.parse(source), Interval(start, end)


@dag(
    dag_id="engagement_ingest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START,
    catchup=True,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": [NOTIFY],
    },
    tags=["engagement", "extract"],
    doc_md="Lands, validates and loads each source's batch of each daily data interval.",
)
def engagement_ingest():
    # deferred: the wait holds no worker slot (the triggerer keeps it); a past interval
    # (catch-up, backfill) does not wait at all
    wait = TimeDeltaSensor(
        task_id="wait_for_late_data",
        delta=timedelta(minutes=SETTINGS.landing_delay_minutes),
        deferrable=True,
        timeout=timedelta(minutes=SETTINGS.landing_delay_minutes + 60).total_seconds(),
        execution_timeout=timedelta(minutes=10),
        # a wait cannot fail for its data; a try that dies starting (a worker that could
        # not reach the API server in time, on a busy machine) is worth another
        retries=2,
        retry_delay=timedelta(seconds=30),
    )
    for source in RAW:
        wait >> source_tasks(source)


def source_tasks(source: str):
    @task_group(group_id=source)
    def land():
        # rate-limit waits of the X API can take 15 minutes each
        @task(execution_timeout=timedelta(hours=1))
        def extract(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            with failing_for_good():
                inputs = _inputs(source, data_interval_start, data_interval_end)
                return pipeline.extract(*inputs).model_dump(mode="json")

        # the support site's files are parsed in parts, a mapped task each, on any worker
        # (they share the data directory), then combined into one batch version. The parts
        # are plan_parts' return value (a task maps only over one); the whole plan goes to
        # `combine` as the XCom "plan"
        @task(execution_timeout=timedelta(minutes=30))
        def plan_parts(ti=None, data_interval_start=None, data_interval_end=None) -> list:
            from engagement import pipeline

            with failing_for_good():
                settings, _, interval = _inputs(source, data_interval_start, data_interval_end)
                plan = pipeline.plan_support_site(settings, interval)
                ti.xcom_push(key="plan", value=plan.model_dump(mode="json"))
                return [part.model_dump(mode="json") for part in plan.parts]

        @task(execution_timeout=timedelta(hours=1))
        def extract_part(part: dict, data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline
            from extract.access_log import Part

            with failing_for_good():
                settings, _, interval = _inputs(source, data_interval_start, data_interval_end)
                planned = Part.model_validate(part)
                result = pipeline.extract_support_site_part(settings, interval, planned)
                return result.model_dump(mode="json")

        # none_failed: with no file to parse (all known), no part is mapped (skipped) and
        # the batch still lands, empty
        @task(trigger_rule="none_failed", execution_timeout=timedelta(minutes=30))
        def combine(plan: dict, data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline
            from extract.access_log import Plan

            with failing_for_good():
                settings, _, interval = _inputs(source, data_interval_start, data_interval_end)
                planned = Plan.model_validate(plan)
                return pipeline.combine_support_site(settings, interval, planned).model_dump(
                    mode="json"
                )

        # a writer: a refusal is recorded in the raw warehouse (main.refusals)
        @task(
            pool=WRITER_POOL,
            priority_weight=LANDING_PRIORITY,
            retries=0,
            execution_timeout=timedelta(minutes=30),
        )
        def validate(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            with failing_for_good():
                inputs = _inputs(source, data_interval_start, data_interval_end)
                # cleared after a refusal: the batch is in quarantine, so land it again first
                return pipeline.validate(*inputs, reland=True).model_dump(mode="json")

        @task(
            pool=WRITER_POOL,
            priority_weight=LANDING_PRIORITY,
            outlets=[RAW[source]],
            execution_timeout=timedelta(minutes=30),
        )
        def load(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            with failing_for_good():
                inputs = _inputs(source, data_interval_start, data_interval_end)
                return pipeline.load_batch(*inputs).model_dump(mode="json")

        if source == "support_site":
            parts = plan_parts()
            extracted = combine(parts["plan"])
            extract_part.expand(part=parts) >> extracted
        else:
            extracted = extract()
        extracted >> validate() >> load()

    return land()


@dag(
    dag_id="engagement_mart",
    schedule=(RAW["x"] | RAW["support_site"]),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    # a failed build is a failed dbt test or model: running it again cannot make it pass
    default_args={"retries": 0, "on_failure_callback": [NOTIFY]},
    tags=["engagement", "mart"],
    doc_md="On any load of either source: builds and tests the mart with dbt, publishes it"
    " atomically, then writes the HTML report (ENGAGEMENT_REPORT_PATH).",
)
def engagement_mart():
    # past the timeout, Airflow interrupts the build: dbt is stopped, nothing is published,
    # and the next build finishes the work
    @task(pool=WRITER_POOL, outlets=[MART], execution_timeout=timedelta(hours=2))
    def build_and_publish() -> dict:
        from engagement import pipeline

        return pipeline.build(Settings.from_env()).model_dump(mode="json")

    # reads the published file read-only (no writer slot); written whole, then renamed
    @task(execution_timeout=timedelta(minutes=10))
    def write_report() -> str:
        from engagement import pipeline

        return str(pipeline.report(Settings.from_env()))

    # the mentions past their target and still unanswered, each sent once; read-only too
    @task(execution_timeout=timedelta(minutes=10))
    def notify_unanswered() -> int:
        from airflow.sdk import get_current_context

        from engagement.orchestration import notify_unanswered

        return notify_unanswered(Settings.from_env(), get_current_context())

    build_and_publish() >> [write_report(), notify_unanswered()]


engagement_ingest()
engagement_mart()
