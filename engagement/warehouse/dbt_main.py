"""`dbt` as a build runs it: dbt's command line, with Python's garbage collector collecting
less often while dbt starts. dbt creates about a million objects as it imports (its
dataclass serialisers are generated code) and collects none of them; the default
thresholds ran the collector through all of them again and again. Measured: a build with
nothing selected 2.55 s → 2.1 s.

A test hook: with `ENGAGEMENT_DBT_STOP_AT` set to the name of a dbt event (e.g.
`MainReportVersion`, dbt started; `LogModelResult`, a model written), dbt stops itself
(SIGSTOP) at the first such event, so a test can kill or time out a build at that point
rather than after a guessed sleep. Unset (always, outside tests), dbt runs as it is."""

import gc
import os
import signal
import sys

gc.set_threshold(100_000, 50, 100)
# Ctrl-C, and the build's stop (engagement/warehouse/build.py `_stop`), stop dbt as
# KeyboardInterrupt, even when the build started with SIGINT ignored: a background job of a
# script does, its children inherit it, and Python leaves an ignored SIGINT ignored (dbt
# would run on until killed after DBT_STOP_GRACE)
signal.signal(signal.SIGINT, signal.default_int_handler)

from dbt.cli.main import cli  # noqa: E402  (imported after the thresholds are set)


def stop_at(event: str):
    """A dbt event callback that stops this process at the first `event`, once."""
    pending = [event]

    def callback(message) -> None:
        if pending and message.info.name == pending[0]:
            pending.clear()
            os.kill(os.getpid(), signal.SIGSTOP)

    return callback


if __name__ == "__main__":
    sys.argv[0] = "dbt"
    event = os.environ.get("ENGAGEMENT_DBT_STOP_AT")
    sys.exit(cli(obj={"callbacks": [stop_at(event)]} if event else None))
