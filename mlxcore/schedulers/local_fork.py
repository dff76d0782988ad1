"""Forked pool jobs: a sweep point run by a fork of the launching process instead of a new interpreter.

The foreground ``local`` pool is started by the very process that has the task in memory, hydra imported and
the plugins loaded. Starting a fresh ``python main.py <point>`` per point pays all of that again (about 200 ms
of imports per point on a small machine); a fork pays a few milliseconds. The child does what the shared job
script would do — new session, stdin from ``/dev/null``, output appended to the run's ``log.stdout`` and
``log.stderr``, ``cd`` into the work directory, the job's environment — then runs the point in process and
exits with its code. Signals reach the task directly (it is the session leader), so a stop, a cancel or a
Ctrl-C forwarded by the pool is handled exactly as in a job script.

Detached pools, version-managed code (which must run from its snapshot) and ``mlxcore sub`` jobs keep the
script path: only a point of the launch that is running can be forked.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path


class ForkedJob:
    """The part of :class:`subprocess.Popen` the pool uses (``pid``, ``poll()``), for a forked child."""

    def __init__(self, target: Callable[[], int], env: dict[str, str], run_dir: Path | None) -> None:
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here may be written twice by the child
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                code = _child(target, env, run_dir)
            finally:
                os._exit(code)  # never back into the parent's code, whatever happened

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _child(target: Callable[[], int], env: dict[str, str], run_dir: Path | None) -> int:
    """In the child: become a job, run ``target``, return the exit code (never raises, never returns twice)."""
    code = 1
    try:
        os.setsid()
        for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # a live progress display may have replaced sys.stdout/err in the parent: write to the real ones
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        if run_dir is not None:
            for fd, name in ((1, "log.stdout"), (2, "log.stderr")):
                out = os.open(run_dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
                os.dup2(out, fd)
                os.close(out)
        os.environ.update(env)
        code = target()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child must end here, whatever happened
        traceback.print_exc()
        code = 130 if isinstance(sys.exc_info()[1], KeyboardInterrupt) else 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
    return code
