"""``pidfile``: jobs run on this machine by ``setsid bash``, tracked by pid and exit-code files (an example)."""

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from mlxcore import store
from mlxcore.schedulers.base import JobEnvironment, JobStatus, Scheduler, Submission

#: one job ($0: its script, $1: its state files): unless cancelled, run the script, record its pid, its exit code
JOB = '[ -e "$1.cancel" ] && exit 0; bash "$0" & echo $! > "$1.pid"; wait $!; echo $? > "$1.exit"'
DETACH = 'setsid bash -c "$0" "$@" </dev/null >/dev/null 2>&1 &'  # the job outlives this process and its session


def path(job_id: str, kind: str = "") -> Path:
    root = Path(os.environ.get("PIDFILE_STATE") or Path.home() / ".cache" / "mlxcore-pidfile")
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{job_id}{kind}"


def number(job_id: str, kind: str) -> int | None:  # None: not written (yet)
    text = path(job_id, kind).read_text() if path(job_id, kind).exists() else ""
    return int(text) if text.strip().isdigit() else None


class PidfileScheduler(Scheduler):
    name = "pidfile"

    def job_environment(self) -> JobEnvironment:  # task i of an array reads line i + 1 of the argument file
        return JobEnvironment(job_id_variable="PIDFILE_JOB_ID", array_index_variable="PIDFILE_ARRAY_INDEX")

    def submit(self, submission: Submission) -> list[str]:  # no submit command: each job is started here
        ids = [os.urandom(6).hex() for _ in submission.jobs]
        for index, job_id in enumerate(ids):
            env = {**os.environ, **submission.env, "PIDFILE_JOB_ID": job_id, "PIDFILE_ARRAY_INDEX": str(index)}
            subprocess.run(["bash", "-c", DETACH, JOB, str(submission.script), str(path(job_id))], env=env, check=True)
        return ids

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        out = {}
        for job_id in job_ids:
            code, pid = number(job_id, ".exit"), number(job_id, ".pid")
            if code is not None:
                cancelled = path(job_id, ".cancel").exists()
                word = store.COMPLETE if code == 0 else store.CANCELLED if cancelled else store.FAILED
                out[job_id] = JobStatus(job_id, word, exit_code=code)
            elif pid is not None and store.process_alive(pid):
                out[job_id] = JobStatus(job_id, store.RUNNING)
        return out  # a job not started yet, or gone without an exit code, is left out: its run's record decides

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            path(job_id, ".cancel").touch()  # a job that has not started yet never will
            pid = number(job_id, ".pid")
            if pid is not None and number(job_id, ".exit") is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # the job script forwards it to the task
