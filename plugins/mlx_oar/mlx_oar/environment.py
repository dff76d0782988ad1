"""What an OAR job knows of itself, and how it comes back after a preemption.

- **id and index**: ``OAR_JOB_ID``; ``OAR_ARRAY_INDEX`` counts from 1.
- **array protocol**: OAR's ``--array-param-file`` appends one line of a parameter file (written by the
  plugin, :func:`mlx_oar.paths.param_line`) to each array job's command, so each job gets ``RUN_DIR
  COMMAND...`` as its arguments: the job OAR stores carries what it runs, and a resubmitted job runs the same
  point (:func:`~mlxcore.schedulers.environment.arguments_array_job`).
- **restart**: OAR resubmits an idempotent job (``-t idempotent``) that exits 99 as a NEW job, with a new id:
  every attempt appends its ``OAR_JOB_ID`` to the run's job ids, which status and cancel follow. When the task's
  run ended PREEMPTED, an idempotent job exits 99 (after the 60 s OAR requires), at most ``max_resubmissions``
  times; the run is left PREEMPTED after that.
- **checkpoint signal**: the one ``--signal`` names, sent ``--checkpoint`` seconds before the walltime. A
  stop at the walltime with no checkpoint saved since the attempt began is not resubmitted (the core's job
  script: the run shows FAILED); OAR's sarko sends the signal at the time asked or up to its period (10 s)
  later, never earlier, so a stop counts as the walltime's from ``limit - grace - 15`` s of the job's time.
- **each attempt**: appends its job id to the run's job ids, exports its cores (``MLXCORE_CPUS``: the lines of
  ``$OAR_NODEFILE``, one per resource) and, when OAR resubmitted it, how the job before ended
  (``MLXCORE_STARTED_BECAUSE``, asked of OAR by :mod:`mlx_oar.attempts`): the run's history keeps, for every
  attempt, its job id, what it was given and why it started. OAR resubmits a job whose node failed at its
  launch by itself, for ever: after ``max_node_failures`` such failures the job runs the task no more and the
  run shows FAILED, saying so.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mlxcore.schedulers.base import Submission
from mlxcore.schedulers.environment import (
    CPUS_VARIABLE,
    JOB_ERROR_PATH,
    JOB_IDS_PATH,
    STARTED_BECAUSE_VARIABLE,
    JobEnvironment,
    arguments_array_job,
    record_attempt,
)
from mlxcore.store import layout

from .records import RESUBMIT_EXIT_CODE

#: OAR resubmits an idempotent job that exits 99 only when it ran longer than this (seconds)
IDEMPOTENT_MIN_RUNTIME = 60
#: how long before ``limit - grace`` a stop still counts as the walltime's (OAR starts the clock a little before
#: the job's shell does; sarko is late, never early)
TIME_LIMIT_SLACK = 15
#: the run's scheduler record as the job script spells it: the id it holds is that of the job first submitted
SCHEDULER_RECORD_PATH = f'"$run_dir/{layout.METADATA}/{layout.SCHEDULER}"'


@dataclass
class OarJobEnvironment(JobEnvironment):
    """OAR's variables and array protocol; an ``idempotent`` job exits 99 after a preemption."""

    job_id_variable: str | None = "OAR_JOB_ID"
    array_index_variable: str | None = "OAR_ARRAY_INDEX"
    array_first_index: int = 1
    checkpoint_signal: str | None = "USR2"
    #: exported by the attempt lines (OAR has no variable holding it)
    cpus_variable: str | None = CPUS_VARIABLE
    idempotent: bool = False
    max_resubmissions: int = 20
    #: a job OAR resubmitted after its node failed more often than this runs the task no more
    max_node_failures: int = 3
    #: the interpreter that asks OAR how the job before ended (:mod:`mlx_oar.attempts`): the submitting one,
    #: which has this plugin
    python: str = field(default_factory=lambda: sys.executable)

    def array_job_lines(self, args_file: Path | None) -> list[str]:
        return arguments_array_job()

    def attempt_lines(self) -> list[str]:
        """Record the attempt (its job id, its cores) and, in a job OAR resubmitted, why it started; refuse to
        run a job whose node failed more than ``max_node_failures`` times. A resubmitted job is one whose run
        has job ids already (a job before it ran the script) or whose id is not the one first submitted (the
        job before failed at its launch); OAR is asked only then."""
        limit = int(self.max_node_failures)
        failed = (f"mlxcore: the node of this OAR job failed $failures times, more than mlx.scheduler."
                  f"max_node_failures ({limit}): not run again")
        python = shlex.quote(self.python)
        return [
            f'export {CPUS_VARIABLE}="$(grep -c . "${{OAR_NODEFILE:-/dev/null}}" 2>/dev/null)"',
            "because=-; failures=0",
            # (an interpreter missing on the node is the interpreter check's to report, below)
            (f"if [ -x {python} ] && {{ [ -s {JOB_IDS_PATH} ] || ! grep -qF \"job_id: '${{OAR_JOB_ID:-}}'\" "
             f"{SCHEDULER_RECORD_PATH} 2>/dev/null; }}; then"),
            f"  read -r because failures < <({python} -m mlx_oar.attempts {JOB_IDS_PATH})",
            "fi",
            *record_attempt(str(self.job_id_variable)),
            f'if [ "${{because:--}}" != - ]; then export {STARTED_BECAUSE_VARIABLE}="$because"; fi',
            f'if [ "${{failures:-0}}" -gt {limit} ]; then',
            f'  message="{failed}"',
            f'  echo "$message" >&2; echo "$message" >{JOB_ERROR_PATH}; exit 1',
            "fi",
        ]

    def time_limit_lines(self, limit_s: int | None, grace_s: int) -> list[str]:
        if limit_s is None:
            return []
        return [f'if [ "$SECONDS" -ge {limit_s - grace_s - TIME_LIMIT_SLACK} ]; then at_time_limit=1; fi']

    def requeue_lines(self, submission: Submission) -> list[str]:
        if not self.idempotent:
            return []
        wait = IDEMPOTENT_MIN_RUNTIME + 6  # OAR's start and stop times are its own, a few seconds inside ours
        limit = int(self.max_resubmissions)
        too_many = (f"mlxcore: run preempted after {limit} resubmission(s) (mlx.scheduler.max_resubmissions): "
                    "not resubmitted")
        waiting = f"mlxcore: OAR resubmits an idempotent job only after {IDEMPOTENT_MIN_RUNTIME} s: waiting"
        resubmit = f"mlxcore: run preempted: exiting {RESUBMIT_EXIT_CODE} so that OAR resubmits idempotent job"
        return [
            # every attempt of the run added its job id to metadata/job_ids: the resubmissions so far are one less
            f'attempts=$(grep -c . {JOB_IDS_PATH} 2>/dev/null); attempts=${{attempts:-1}}',
            f'if [ "$attempts" -gt {limit} ]; then',
            f'  echo "{too_many}" >&2',
            '  exit "$code"',
            "fi",
            f'if [ "$SECONDS" -lt {wait} ]; then',
            f'  echo "{waiting} $(( {wait} - SECONDS )) s" >&2',
            f"  sleep $(( {wait} - SECONDS ))",
            "fi",
            f'echo "{resubmit} ${{OAR_JOB_ID:-}}" >&2',
            f"exit {RESUBMIT_EXIT_CODE}",
        ]
