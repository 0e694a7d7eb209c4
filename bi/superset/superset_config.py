"""Superset's settings for the `bi` profile (read from /app/pythonpath, on the image's
PYTHONPATH). Secrets come from the environment (.env), never from this file."""

import os

# signs sessions and encrypts the connections' secrets in the metadata database: set in .env
SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY", "")
if not SECRET_KEY:  # compose passes it empty when .env lacks it: the other profiles need none
    raise SystemExit("superset: set SUPERSET_SECRET_KEY in .env (profile bi)")

# Superset's own metadata (users, the database entry, datasets, charts, the dashboard): SQLite
# in the superset-home volume. One Superset serves this mart; everything in it is re-imported
# from the repository's bundle by superset-init, so there is nothing to back up or to share
# with Airflow's PostgreSQL, and the lean image needs no PostgreSQL driver.
SUPERSET_HOME = os.environ.get("SUPERSET_HOME", "/app/superset_home")  # the image sets it
SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME}/superset.db"
