"""The period figures as the headline and the report read them: rows of the contracted mart
`marts.agg_period_figures`, where every figure is defined (its YAML says how incomplete days
count). Nothing is computed here; the helpers below only write a figure as it is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from engagement.errors import UsageError
from engagement.warehouse.build import published_file

PERIOD_FIGURES = "agg_period_figures"

# the whole mart, for the company: the headline's and the report's cards
PERIOD_SQL = f"""
select * from marts.{PERIOD_FIGURES}
where grain = 'period' and scope = 'company'
"""


def connect(published_db: Path) -> duckdb.DuckDBPyConnection:
    """The published mart, opened read-only as a BI tool opens it."""
    return duckdb.connect(str(published_file(published_db)), read_only=True)


def dicts(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or None)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def period(con: duckdb.DuckDBPyConnection, published_db: Path) -> dict[str, Any]:
    """The whole mart's company row (PERIOD_SQL); a documented error when the mart has no
    day yet."""
    rows = dicts(con, PERIOD_SQL)
    if not rows:
        raise UsageError(
            f"the published mart at {published_db} has no day yet: load a batch with data,"
            " then engagement build"
        )
    return rows[0]


def percent(value: float | None) -> str:
    """A share as shown: one decimal of a percent, `–` when it has no denominator."""
    return "–" if value is None else f"{100 * value:.1f}%"


def count(value: int | None) -> str:
    """A count as shown, `–` when its source has no data in the period."""
    return "–" if value is None else f"{value:,}"


def ratio(value: float | None) -> str:
    """A ratio as shown: two decimals, `–` when it has no denominator."""
    return "–" if value is None else f"{value:.2f}"


def minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} min"
