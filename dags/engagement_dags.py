"""Engagement mart DAGs: one extraction DAG per source, one mart build on their Assets.

Each extraction run lands, validates and loads exactly its data interval; the tasks only
call functions of `engagement.pipeline` (imported inside the tasks, so parsing stays light).
The mart builds once both sources have loaded (`&`): never on a half-updated interval, and
once per interval, not once per source. A build takes in every load since the last one.
Writers of the DuckDB warehouse share the one-slot pool `duckdb_writer`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

START = pendulum.datetime(2026, 11, 2, tz="UTC")
WRITER_POOL = "duckdb_writer"
RAW = {"x": Asset("engagement_raw_x"), "support_site": Asset("engagement_raw_support_site")}
MART = Asset("engagement_mart")


def _inputs(source: str, start, end) -> tuple:
    """The pipeline functions' arguments: settings, the source and the run's data interval."""
    from engagement.landing import Interval, Source
    from engagement.settings import Settings

    return Settings.from_env(), Source.parse(source), Interval(start, end)


def extraction_dag(source: str):
    @dag(
        dag_id=f"engagement_{source}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={
            "retries": 2,
            "retry_delay": pendulum.duration(minutes=5),
            "execution_timeout": pendulum.duration(hours=1),
        },
        tags=["engagement", "extract"],
        doc_md=f"Lands, validates and loads the `{source}` batch of each daily data interval.",
    )
    def extraction():
        @task
        def extract(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            inputs = _inputs(source, data_interval_start, data_interval_end)
            return pipeline.extract(*inputs).model_dump(mode="json")

        @task(retries=0)
        def validate(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            inputs = _inputs(source, data_interval_start, data_interval_end)
            # cleared after a refusal: the batch is in quarantine, so land it again first
            return pipeline.validate(*inputs, reland=True).model_dump(mode="json")

        @task(pool=WRITER_POOL, outlets=[RAW[source]])
        def load(data_interval_start=None, data_interval_end=None) -> dict:
            from engagement import pipeline

            inputs = _inputs(source, data_interval_start, data_interval_end)
            return pipeline.load_batch(*inputs).model_dump(mode="json")

        extract() >> validate() >> load()

    return extraction()


@dag(
    dag_id="engagement_mart",
    schedule=(RAW["x"] & RAW["support_site"]),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    # a failed build is a failed dbt test or model: running it again cannot make it pass
    default_args={"retries": 0, "execution_timeout": pendulum.duration(hours=2)},
    tags=["engagement", "mart"],
    doc_md="Builds and tests the mart with dbt, then publishes it atomically.",
)
def engagement_mart():
    @task(pool=WRITER_POOL, outlets=[MART])
    def build_and_publish() -> dict:
        from engagement import pipeline
        from engagement.settings import Settings

        return pipeline.build(Settings.from_env()).model_dump(mode="json")

    build_and_publish()


engagement_x = extraction_dag("x")
engagement_support_site = extraction_dag("support_site")
engagement_mart()
