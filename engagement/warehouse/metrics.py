"""The mart's metrics (dbt semantic models, in the YAML of the marts they read,
dbt_project/models/marts/<model>.yml) queried with MetricFlow's `mf` on the published file,
read-only, as BI reads it."""

from __future__ import annotations

import fcntl
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
    the project's target folder, so the project is parsed first for the published file
    (dbt target `published`: the relations it names are that file's).

    That folder is the project's, shared by every data directory: one `mf` at a time writes
    and reads it (a lock beside it). The parse names the file by the profile's relative
    default (`engagement.duckdb`, the relations' catalog either way) and keeps its state
    there, so a parse made for one data directory is reused, changed files alone parsed
    again, by the next (dbt parses all again when the profile differs: ~3x the time)."""
    published = published_file(settings.published_db)
    project = settings.dbt_project_dir
    target = project / "target"
    env = dict(
        os.environ,
        DBT_PROFILES_DIR=str(project),
        DBT_TARGET="published",
        DBT_LOG_PATH=str(settings.data_dir / "metricflow" / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    env.pop("ENGAGEMENT_PUBLISHED_DB", None)  # the parse: the profile's relative default
    env.pop("DBT_PARTIAL_PARSE_FILE_PATH", None)  # a build's state (another profile)
    bin_dir = Path(sys.executable).parent
    parse = [str(bin_dir / "dbt"), "parse", "--quiet", "--vars", json.dumps(dbt_vars(settings))]
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".mf.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        parsed = subprocess.run(parse, cwd=project, env=env, capture_output=True, text=True)
        if parsed.returncode:
            said = [" ".join(line.split()) for line in (parsed.stdout + parsed.stderr).splitlines()]
            said = [line for line in said if line] or [f"exit status {parsed.returncode}"]
            raise UsageError(
                f"dbt parse of the project {project} (ENGAGEMENT_DBT_PROJECT_DIR) failed, so mf"
                f" has no semantic manifest: {' | '.join(said[-3:])}"
            )
        mf_env = dict(env, ENGAGEMENT_PUBLISHED_DB=str(published))  # mf queries the file itself
        return subprocess.run([str(bin_dir / "mf"), *args], cwd=project, env=mf_env).returncode
