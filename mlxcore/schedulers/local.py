"""The builtin ``local`` scheduler: this machine as a queue.

Submitting starts one detached supervisor process (:mod:`mlxcore.schedulers.local_runner`) that runs the
submission's jobs ``workers`` at a time, each in its own process group, and keeps a small state directory:
``<state>/<supervisor pid>/<index>.pid`` while a job runs, ``<index>.exit`` when it ended, ``cancel/<index>``
when a cancel was asked. Job ids are ``<supervisor pid>.<index>``. Status and cancel read and write those files:
one pass over a directory, no process started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from .. import runs
from .base import JobStatus, Scheduler, Submission


def state_root() -> Path:
    return Path(os.environ.get("MLXCORE_LOCAL_STATE", Path(tempfile.gettempdir()) / f"mlxcore-local-{os.getuid()}"))


class LocalScheduler(Scheduler):
    name = "local"
    array_index_variable = "MLXCORE_ARRAY_INDEX"
    array_first_index = 0
    job_id_variable = "MLXCORE_JOB_ID"
    extra_options: ClassVar[dict[str, Any]] = {"workers": 1}

    def directives(self, submission: Submission) -> list[str]:
        return []

    def submit_argv(self, submission: Submission) -> list[str]:
        return [sys.executable, "-m", "mlxcore.schedulers.local_runner", str(submission.script),
                str(len(submission.jobs) if submission.array else 0), str(int(self.options["workers"])), str(state_root())]

    def submit(self, submission: Submission) -> list[str]:
        state_root().mkdir(parents=True, exist_ok=True)
        log_file = submission.script.parent / "local_runner.log"
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(self.submit_argv(submission), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, close_fds=True)
        count = len(submission.jobs) if submission.array else 1
        return self.parse_job_ids(str(proc.pid), submission)[:count]

    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        pid = output.strip()
        return [f"{pid}.{i}" for i in range(len(submission.jobs))]

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        out = {}
        for job_id in job_ids:
            supervisor, _, index = job_id.partition(".")
            state = state_root() / supervisor
            exit_file, pid_file = state / f"{index}.exit", state / f"{index}.pid"
            if exit_file.exists():
                code = int(exit_file.read_text() or -1)
                cancelled = (state / "cancel" / index).exists()
                final = runs.COMPLETE if code == 0 else (runs.CANCELLED if cancelled else runs.FAILED)
                out[job_id] = JobStatus(job_id, final, exit_code=code)
            elif pid_file.exists() and runs.process_alive(int(pid_file.read_text())):
                out[job_id] = JobStatus(job_id, runs.RUNNING)
            elif supervisor.isdigit() and runs.process_alive(int(supervisor)) and state.exists():
                out[job_id] = JobStatus(job_id, runs.PENDING)
        return out

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            supervisor, _, index = job_id.partition(".")
            state = state_root() / supervisor
            if not state.exists():
                continue
            (state / "cancel").mkdir(exist_ok=True)
            (state / "cancel" / index).touch()
            pid_file = state / f"{index}.pid"
            if pid_file.exists():
                try:
                    os.killpg(int(pid_file.read_text()), signal.SIGTERM)
                except (ProcessLookupError, PermissionError, ValueError):
                    pass
