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
- **checkpoint signal**: the one ``--signal`` names, sent ``--checkpoint`` seconds before the walltime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlxcore.schedulers.base import Submission
from mlxcore.schedulers.environment import JOB_IDS_PATH, JobEnvironment, arguments_array_job, record_attempt

from .records import RESUBMIT_EXIT_CODE

#: OAR resubmits an idempotent job that exits 99 only when it ran longer than this (seconds)
IDEMPOTENT_MIN_RUNTIME = 60


@dataclass
class OarJobEnvironment(JobEnvironment):
    """OAR's variables and array protocol; an ``idempotent`` job exits 99 after a preemption."""

    job_id_variable: str | None = "OAR_JOB_ID"
    array_index_variable: str | None = "OAR_ARRAY_INDEX"
    array_first_index: int = 1
    checkpoint_signal: str | None = "USR2"
    idempotent: bool = False
    max_resubmissions: int = 20

    def array_job_lines(self, args_file: Path | None) -> list[str]:
        return arguments_array_job()

    def attempt_lines(self) -> list[str]:
        return record_attempt(str(self.job_id_variable))

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
