"""Apache Superset itself on the bi profile's bundle, without Docker: `make superset-check`.

Run by the Python of a Superset installed from PyPI beside the project (the Makefile makes
`.tools/superset`): with bi/superset/superset_config.py and a metadata database in a temporary
SUPERSET_HOME, it does what `superset-init` does (db upgrade, the admin, init, the bundle
zipped and imported with `superset import-dashboards`), the database's URI pointed at MART (a
published mart, e.g. `make demo`'s), then asks Superset's chart-data API for every chart of
the dashboard, and checks the engine Superset opens is read-only and pool-less (NullPool).
Exits non-zero on the first thing that fails."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUPERSET = REPO / "bi" / "superset"
ADMIN, PASSWORD = "admin", secrets.token_urlsafe(12)
URI = "duckdb:////data/warehouse/engagement.duckdb"  # the bundle's, in the container


def superset(*args: str, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "superset"), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"superset {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    print(f"== superset {' '.join(a for a in args if a != PASSWORD)[:80]}: ok", flush=True)


def bundle(mart: Path, out: Path) -> Path:
    """bi/superset/engagement_mart zipped as superset-init zips it, the URI at `mart`."""
    copy = out / "bundle" / "engagement_mart"
    shutil.copytree(SUPERSET / "engagement_mart", copy)
    database = copy / "databases" / "engagement_mart.yaml"
    text = database.read_text()
    assert URI in text, f"{database} no longer names {URI}"
    database.write_text(text.replace(URI, f"duckdb:///{mart}"))
    return Path(shutil.make_archive(str(out / "engagement_mart"), "zip", out / "bundle", copy.name))


def chart_payload(chart_id: int, dataset_id: int, params: dict) -> dict:
    """The chart-data request Superset's frontend sends for these charts."""
    x, grain = params.get("x_axis"), params.get("time_grain_sqla")
    axis = [x] if x else []
    if grain:
        axis = [{"timeGrain": grain, "columnType": "BASE_AXIS", "sqlExpression": x,
                 "label": x, "expressionType": "SQL"}]  # fmt: skip
    filters = [
        {"col": f["subject"], "op": f["operator"], "val": f["comparator"]}
        for f in params["adhoc_filters"]
    ]
    query = {"columns": axis + params["groupby"], "metrics": params["metrics"],
             "filters": filters, "orderby": [[params["metrics"][0], False]],
             "row_limit": 10000, "series_columns": params["groupby"]}  # fmt: skip
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": True,
            "queries": [query], "form_data": {**params, "slice_id": chart_id},
            "result_format": "json", "result_type": "full"}  # fmt: skip


def check(env: dict[str, str]) -> None:
    os.environ.update(env)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db
        from superset.models.core import Database
        from superset.models.dashboard import Dashboard

        (database,) = db.session.query(Database).all()
        (dashboard,) = db.session.query(Dashboard).all()
        charts = [(c.id, c.slice_name, c.datasource_id, json.loads(c.params))
                  for c in dashboard.slices]  # fmt: skip
        with database.get_sqla_engine() as engine, engine.connect() as con:
            pool = type(engine.pool).__name__
            (mode,) = con.exec_driver_sql("select current_setting('access_mode')").one()
        assert (pool, mode) == ("NullPool", "read_only"), (pool, mode)
        print(f"== {database.database_name}: {pool}, access_mode {mode}")
    client = app.test_client()
    login = {"username": ADMIN, "password": PASSWORD, "provider": "db", "refresh": False}
    token = client.post("/api/v1/security/login", json=login).json["access_token"]
    for chart_id, name, dataset_id, params in charts:
        response = client.post(
            "/api/v1/chart/data",
            json=chart_payload(chart_id, dataset_id, params),
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            sys.exit(f"{name}: HTTP {response.status_code} {response.get_data(as_text=True)}")
        result = response.json["result"][0]
        assert result["rowcount"] > 0, f"{name}: no rows"
        print(f"== {dashboard.dashboard_title} / {name}: {result['rowcount']} rows")


def main() -> None:
    mart = Path(sys.argv[1]).resolve()
    if not mart.is_file():
        sys.exit(f"no published mart at {mart}: run `make demo` first, or give MART=...")
    with tempfile.TemporaryDirectory(prefix="superset-check-") as home:
        env = dict(
            os.environ,
            SUPERSET_HOME=home,
            SUPERSET_CONFIG_PATH=str(SUPERSET / "superset_config.py"),
            SUPERSET_SECRET_KEY=secrets.token_urlsafe(42),
            FLASK_APP="superset",
        )
        superset("db", "upgrade", env=env)
        superset("fab", "create-admin", "--username", ADMIN, "--password", PASSWORD,
                 "--firstname", "Engagement", "--lastname", "Admin",
                 "--email", f"{ADMIN}@localhost", env=env)  # fmt: skip
        superset("init", env=env)
        archive = bundle(mart, Path(home))
        superset("import-dashboards", "--path", str(archive), "--username", ADMIN, env=env)
        check(env)
    print("superset check: ok")


if __name__ == "__main__":
    main()
