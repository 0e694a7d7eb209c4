"""`dbt` as a build runs it: dbt's command line, with Python's garbage collector collecting
less often while dbt starts. dbt creates about a million objects as it imports (its
dataclass serialisers are generated code) and collects none of them; the default
thresholds ran the collector through all of them again and again. Measured: a build with
nothing selected 2.55 s → 2.1 s.

The build that starts it names itself in `ENGAGEMENT_DBT_PARENT` (its process id): dbt
dies with it (the kernel's parent-death signal, set here rather than in a `preexec_fn`, so
no Python code runs between fork and exec, where a Ctrl-C to the group would print a
traceback of the half-made child to the build's terminal).

A test hook: with `ENGAGEMENT_DBT_STOP_AT` set to the name of a dbt event (e.g.
`MainReportVersion`, dbt started; `LogModelResult`, a model written), dbt stops itself
(SIGSTOP) at the first such event, so a test can kill or time out a build at that point
rather than after a guessed sleep. Unset (always, outside tests), dbt runs as it is."""

import ctypes
import gc
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

gc.set_threshold(100_000, 50, 100)
# Ctrl-C, and the build's stop (engagement/warehouse/build.py `_stop`), stop dbt as
# KeyboardInterrupt, even when the build started with SIGINT ignored: a background job of a
# script does, its children inherit it, and Python leaves an ignored SIGINT ignored (dbt
# would run on until killed after DBT_STOP_GRACE)
signal.signal(signal.SIGINT, signal.default_int_handler)


def die_with_parent(parent: int) -> None:
    """SIGKILL from the kernel when `parent` dies; at once if it died already."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect (we were re-parented)
        os._exit(1)


if parent := os.environ.get("ENGAGEMENT_DBT_PARENT"):
    die_with_parent(int(parent))

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
