"""The mart's metrics (dbt semantic models, in the YAML of the marts they read,
dbt_project/models/marts/<model>.yml) queried with MetricFlow's `mf` on the published file,
read-only, as BI reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engagement.errors import UsageError
from engagement.settings import Settings
from engagement.warehouse.build import dbt_vars, published_file


def mf(settings: Settings, args: list[str]) -> int:
    """Run `mf ARGS` (e.g. `query --metrics response_rate --group-by metric_time__month`)
    against the published mart; returns mf's exit code. mf reads the semantic manifest of
    the project's target folder, so the project is parsed first against the published file
    (dbt target `published`: the relations it names are that file's)."""
    published = published_file(settings.published_db)
    project = settings.dbt_project_dir
    env = dict(
        os.environ,
        DBT_PROFILES_DIR=str(project),
        DBT_TARGET="published",
        ENGAGEMENT_PUBLISHED_DB=str(published),
        DBT_LOG_PATH=str(settings.data_dir / "metricflow" / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    bin_dir = Path(sys.executable).parent
    parse = [str(bin_dir / "dbt"), "parse", "--quiet", "--vars", json.dumps(dbt_vars(settings))]
    parsed = subprocess.run(parse, cwd=project, env=env, capture_output=True, text=True)
    if parsed.returncode:
        said = [" ".join(line.split()) for line in (parsed.stdout + parsed.stderr).splitlines()]
        said = [line for line in said if line] or [f"exit status {parsed.returncode}"]
        raise UsageError(
            f"dbt parse of the project {project} (ENGAGEMENT_DBT_PROJECT_DIR) failed, so mf has"
            f" no semantic manifest: {' | '.join(said[-3:])}"
        )
    return subprocess.run([str(bin_dir / "mf"), *args], cwd=project, env=env).returncode
