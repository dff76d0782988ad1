"""The ``oar`` scheduler: the pieces of :class:`mlxcore.schedulers.base.Scheduler` for OAR 2.5.

Everything else (run directories, the job script's body, signal forwarding, recording job ids, reconciling
statuses) is the core's. Here:

- **directives**: ``#OAR -n`` (job name), ``-O``/``-E`` into the run directory, the generic resources as one
  ``-l`` line and ``-q``, ``--checkpoint <signal_grace> --signal <n>``, then the user's options verbatim.
  Arrays cannot name a file per run directory (OAR substitutes only ``%jobid%``): their ``-O``/``-E`` are
  ``<submission>/oar/%jobid%.stdout``, made symlinks to the run's ``log.stdout`` once the ids are known.
- **submission**: ``oarsub -S ./SCRIPT`` run in the script's directory (``$PWD`` is OAR's launching
  directory), plus ``--array-param-file`` for a sweep: each array job gets ``RUN_DIR COMMAND...`` as its
  arguments (the array protocol of :mod:`mlx_oar.environment`), so the job OAR stores carries what it runs,
  and a resubmitted job runs the same point. Ids come from the ``OAR_JOB_ID=`` lines; ``OAR_JOB_ID=-5`` is a
  refusal.
- **status**: ONE ``oarstat -f -J -j ID -j ID ...`` call for any number of jobs (:mod:`mlx_oar.records`).
- **checkpoint**: OAR sends the signal ``signal_grace`` seconds before the walltime (and on ``oardel -c``);
  the job script forwards it to the task (``ctx.should_stop``), whose run ends PREEMPTED. With ``-t
  idempotent`` the job then exits 99, which makes OAR resubmit it as a new job (the job environment,
  :mod:`mlx_oar.environment`): the new job runs the same point with the same forced log id and resumes in the
  same run directory; ``metadata/job_ids`` lists every OAR job of the run. After ``max_resubmissions``
  resubmissions the run is left PREEMPTED.
- **failure classes**: TIMEOUT, PREEMPTED and NODE_FAIL from each job's events (:func:`mlx_oar.records.
  failure_class`); OAR resubmits a job whose node failed at its launch, and the new job refuses to run after
  ``max_node_failures`` of them (:mod:`mlx_oar.environment`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal as signals
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from mlxcore import store
from mlxcore.errors import ConfigError, SchedulerError, SubmissionError
from mlxcore.schedulers.base import JobStatus, Scheduler, Submission, run_command

from . import options as opts
from .environment import OarJobEnvironment
from .paths import ensure_reachable, job_name, param_line, reachable
from .records import ENDED, job_status, needs_resource_states, parse_oarstat, resubmitted_as

log = logging.getLogger(__name__)

HINT = ("the oar scheduler (plugin mlxcore-oar) needs OAR's client tools (oarsub, oarstat, oardel) on PATH: "
        "run on an OAR frontend, or install them (Debian: apt-get install oar-user)")
ROOT_REFUSED = ("OAR does not run jobs for root (nor for its own user oar): submit as an ordinary user, e.g. "
                "'runuser -u USER -- python main.py ...'; the jobs run as that user, who must be able to run this "
                "Python and write the logs directory")
#: lines oarsub prints on every submission, which say nothing about a refusal
INFORMATIONAL = re.compile(r"\[ADMISSION RULE\] (Modify resource description|Set default walltime)|"
                           r"Simple array job submission|.*Automatically redirect")
#: in an array's submission directory: the array parameter file, and the directory of OAR's own output files
PARAM_FILE = "jobs.params"
OUTPUT_DIR = "oar"


class OarScheduler(Scheduler):
    """Submit sweeps to OAR, as one array job by default (``mlx.scheduler.name: oar``)."""

    name = "oar"
    directive_prefix = "#OAR"
    required_commands = ("oarsub", "oarstat", "oardel")
    missing_commands_hint = HINT
    extra_options: ClassVar[dict[str, Any]] = {
        "signal": "USR2",  #: checkpoint signal, sent signal_grace seconds before the walltime; null: none
        "max_resubmissions": 20,  #: an idempotent run preempted after this many resubmissions stays PREEMPTED
        "max_node_failures": 3,  #: a job OAR resubmitted after its node failed more often is not run again
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.native_options = opts.native_options(self.native_options)
        self.types = opts.job_types(self.native_options)
        if isinstance(self.generic.time, bool):
            raise ConfigError(f"mlx.scheduler.time: {self.generic.time!r} is not a duration")
        self.walltime = opts.walltime(self.translate_time())
        self.resources = opts.resource_request(self.generic, self.walltime, self.native_options)
        self.signal = opts.signal_number(self.options["signal"])
        for key in ("max_resubmissions", "max_node_failures"):
            limit = self.options[key]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ConfigError(f"mlx.scheduler.{key} must be a positive integer or 0, got {limit!r}")
        if self.signal_grace < 1:
            raise ConfigError(f"mlx.scheduler.signal_grace must be a positive number of seconds, "
                              f"got {self.signal_grace}")

    # -- script ------------------------------------------------------------------------------------------
    def directives(self, submission: Submission) -> list[str]:
        jobs = submission.jobs
        name = f"mlxcore-{jobs[0].log_id}-{jobs[-1].log_id}" if submission.array else jobs[0].name
        stdout, stderr = self.output_files(submission)
        values = [f"-n {job_name(name)}", f"-O {stdout}", f"-E {stderr}", *self.resources]
        if self.signal is not None:
            values += [f"--checkpoint {self.signal_grace}", f"--signal {self.signal}"]
        values += self.native_options
        return [f"{self.directive_prefix} {value}" for value in values]

    def output_files(self, submission: Submission) -> tuple[str, str]:
        """OAR's ``-O``/``-E``: the run directory's logs (through a plain-named link when needed)."""
        if submission.array:
            base = f"{reachable(submission.script.parent)}/{OUTPUT_DIR}/%jobid%"
            return f"{base}.stdout", f"{base}.stderr"
        run_dir = reachable(submission.jobs[0].run_dir)
        return f"{run_dir}/log.stdout", f"{run_dir}/log.stderr"

    def job_environment(self) -> OarJobEnvironment:
        signal = signals.Signals(self.signal).name[3:] if self.signal is not None else None
        return OarJobEnvironment(checkpoint_signal=signal, idempotent="idempotent" in self.types,
                                 max_resubmissions=int(self.options["max_resubmissions"]),
                                 max_node_failures=int(self.options["max_node_failures"]))

    # -- submission ----------------------------------------------------------------------------------------
    def submit_argv(self, submission: Submission) -> list[str]:
        argv = ["oarsub", "-S", f"./{submission.script.name}"]
        if submission.array:
            argv += ["--array-param-file", f"./{PARAM_FILE}"]
        return argv

    def submit(self, submission: Submission) -> list[str]:
        directory = submission.script.parent
        launch = ensure_reachable(directory)  # OAR's launching directory: where ./SCRIPT is found
        if submission.array:
            (directory / OUTPUT_DIR).mkdir(exist_ok=True)  # OAR opens its -O/-E files before the script runs
            store.write_atomic(directory / PARAM_FILE, "".join(
                param_line([str(job.run_dir), *job.command]) + "\n" for job in submission.jobs))
        else:
            ensure_reachable(submission.jobs[0].run_dir)
        argv = self.submit_argv(submission)
        try:
            proc = subprocess.run(argv, cwd=launch, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, **submission.env, "PWD": str(launch)})
        except FileNotFoundError:
            raise SchedulerError(f"'oarsub' not found on PATH: {HINT}") from None
        except subprocess.TimeoutExpired:
            raise SubmissionError("oarsub did not answer within 300 s: is the OAR server up?") from None
        if proc.returncode != 0:
            raise SubmissionError(refusal(proc.returncode, proc.stdout, proc.stderr))
        ids = self.parse_job_ids(proc.stdout, submission)
        if submission.array:
            link_outputs(directory / OUTPUT_DIR, submission, ids)
        return ids

    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        ids = re.findall(r"^OAR_JOB_ID=(-?\d+)\s*$", output, re.MULTILINE)
        if any(int(i) < 0 for i in ids):
            raise SubmissionError(refusal(0, output, ""))
        if len(ids) != len(submission.jobs):
            raise SubmissionError(f"oarsub printed {len(ids)} job id(s) for {len(submission.jobs)} job(s): "
                                  f"{output.strip()!r}")
        return ids

    # -- status and cancel ---------------------------------------------------------------------------------
    def records(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """OAR's full records of these jobs, in ONE ``oarstat`` call (unknown ids are left out)."""
        wanted = [i for i in dict.fromkeys(map(str, job_ids)) if i.isdigit()]
        if not wanted:
            return {}
        argv = ["oarstat", "-f", "-J"]
        for job_id in wanted:
            argv += ["-j", job_id]
        return parse_oarstat(run_command(argv, timeout=60, hint=HINT))

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        records = self.records(job_ids)
        states = self.resource_states([r for record in records.values() for r in needs_resource_states(record)])
        return {str(i): job_status(str(i), records[str(i)], states) for i in job_ids if str(i) in records}

    def resource_states(self, resource_ids: list[str]) -> dict[str, str]:
        """``{resource id: state}`` in ONE ``oarnodes`` call, asked only about the resources of jobs killed by
        someone else than their owner (a node taken out, or an administrator's ``oardel``): OAR's record of
        such a job does not say which. ``{}`` when ``oarnodes`` cannot answer (the jobs then show CANCELLED)."""
        wanted = sorted({r for r in resource_ids if r.isdigit()}, key=int)
        if not wanted:
            return {}
        argv = ["oarnodes", "--sql", f"resource_id IN ({','.join(wanted)})", "-J"]
        try:
            output = run_command(argv, timeout=60, hint=HINT)
            found = json.loads(output) if output.strip() else {}
        except (SchedulerError, ValueError) as exc:
            log.warning("cannot ask oarnodes the state of resource(s) %s: %s", ", ".join(wanted), exc)
            return {}
        return {str(key): str(value.get("state")) for key, value in found.items() if isinstance(value, dict)}

    def cancel(self, job_ids: list[str]) -> None:
        """``oardel`` the jobs that still wait or run, and the new job of one OAR resubmitted meanwhile."""
        targets = []
        for job_id, record in self.records(job_ids).items():
            if record.get("state") not in ENDED:
                targets.append(job_id)
            elif resubmitted_as(record):
                targets.append(str(resubmitted_as(record)))
        if not targets:
            return
        try:
            proc = subprocess.run(["oardel", *targets], capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            raise SchedulerError(f"'oardel' not found on PATH: {HINT}") from None
        except subprocess.TimeoutExpired:
            raise SchedulerError("oardel did not answer within 120 s: is the OAR server up?") from None
        problems = [line.strip() for line in proc.stderr.splitlines()
                    if line.strip() and "already killed" not in line]  # ended meanwhile: nothing to cancel
        if proc.returncode != 0 and problems:
            raise SchedulerError(f"oardel failed (exit {proc.returncode}): {' | '.join(problems[-5:])}")


def refusal(code: int, stdout: str, stderr: str) -> str:
    """The error for a submission OAR refused, quoting OAR's own lines."""
    lines = [line.strip() for line in (stdout + "\n" + stderr).splitlines()
             if line.strip(" ^") and not line.startswith(("OAR_JOB_ID=", "OAR_ARRAY_ID="))]
    telling = [line for line in lines if not INFORMATIONAL.match(line)] or lines
    quoted = " | ".join(telling[:8])[:800] or "no message"
    if "root and oar users are not allowed" in quoted:
        return f"{ROOT_REFUSED} (OAR said: {quoted})"
    negative = re.search(r"^OAR_JOB_ID=(-\d+)", stdout, re.MULTILINE)
    if negative:
        return (f"OAR refused the job (OAR_JOB_ID={negative.group(1)}, oarsub exit {code}): {quoted}; check the "
                f"resource request (-l, -p, mlx.scheduler.cpus_per_task/gpus/time)")
    return f"oarsub refused the submission (exit {code}): {quoted}"


def link_outputs(directory: Path, submission: Submission, ids: list[str]) -> None:
    """``<id>.stdout``/``.stderr`` -> the run's ``log.stdout``/``log.stderr``, for the array's ``-O``/``-E``.

    A job that started before its link exists (OAR is rarely that fast) has its file created by OAR in this
    directory instead; it is left there.
    """
    for job, job_id in zip(submission.jobs, ids):
        for stream in ("stdout", "stderr"):
            link = directory / f"{job_id}.{stream}"
            if not (link.exists() or link.is_symlink()):
                try:
                    os.symlink(job.run_dir / f"log.{stream}", link)
                except FileExistsError:
                    pass
