"""What a SLURM job knows of itself, and how it comes back after a preemption.

A job reads its id from ``SLURM_JOB_ID`` and its array index from ``SLURM_ARRAY_TASK_ID`` (from 0); the core's
argument file gives each array task its run directory and command. SLURM sends ``--signal=B:<signal>@grace``
to the batch shell, which forwards it to the task (checkpoint now). When the task's run ended PREEMPTED, the
job requeues itself: ``scontrol requeue $SLURM_JOB_ID``, or ``J_i`` for an array task, because the last task of
an array runs under the array's own id, and requeueing that id requeues every task of the array. The requeued
job keeps its id, so no attempt needs recording: it re-runs the same point with the same forced log id and
resumes in the same run directory.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, dataclass, field

from mlxcore.schedulers.base import Submission
from mlxcore.schedulers.environment import JOB_ERROR_PATH, STARTED_BECAUSE_VARIABLE, JobEnvironment

from .retry import KILLED, RetryPolicy


@dataclass
class SlurmJobEnvironment(JobEnvironment):
    """SLURM's variables; with ``requeue``, a preempted job requeues itself at most ``max_requeues`` times."""

    job_id_variable: str | None = "SLURM_JOB_ID"
    array_index_variable: str | None = "SLURM_ARRAY_TASK_ID"
    array_first_index: int = 0
    checkpoint_signal: str | None = "USR1"
    cpus_variable: str | None = "SLURM_CPUS_ON_NODE"
    requeue: bool = True
    max_requeues: int = 20
    #: SLURM requeues a ``--requeue`` job whose node failed; after this many node failures it is not run again
    max_node_failures: int = 3
    #: which failed attempts the job sends again, and with what memory (:mod:`mlx_slurm.retry`)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def attempt_lines(self) -> list[str]:
        """On a restart, ask accounting how the attempts before ended (``NODE_FAIL``, ``PREEMPTED``, ...): the
        run records the last one (``started_because``), and a job whose node failed more than
        ``max_node_failures`` times is not run again (SLURM itself requeues a ``--requeue`` job whose node
        failed). Without accounting, more than ``max_requeues`` restarts stop it."""
        limit, restarts = int(self.max_node_failures), int(self.max_requeues)
        failed = ("mlxcore: the node of this job failed $failures times, more than mlx.scheduler.max_node_failures "
                  f"({limit}): not run again")
        restarted = (f"mlxcore: this job was restarted $SLURM_RESTART_COUNT times, more than mlx.scheduler."
                     f"max_requeues ({restarts}): not run again")
        return [
            'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then',
            '  acct_id=${SLURM_ARRAY_TASK_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}',
            # every attempt's end in order, the running one (the last line) left out
            '  ends=$(sacct -n -P -D -X -j "${acct_id:-$SLURM_JOB_ID}" -o State 2>/dev/null | sed \'$d\' \\',
            '    | cut -d" " -f1)',
            f'  export {STARTED_BECAUSE_VARIABLE}="$(echo "$ends" | tail -n 1)"',
            '  failures=$(echo "$ends" | grep -c \'^NODE_FAIL$\')',
            f'  if [ "$failures" -gt {limit} ]; then message="{failed}"',
            f'  elif [ -z "$ends" ] && [ "$SLURM_RESTART_COUNT" -gt {restarts} ]; then message="{restarted}"',
            '  else message=""; fi',
            f'  if [ -n "$message" ]; then echo "$message" >&2; echo "$message" >{JOB_ERROR_PATH}; exit 1; fi',
            "fi",
        ]

    def requeue_lines(self, submission: Submission) -> list[str]:
        if not self.requeue:
            return []
        limit = int(self.max_requeues)
        return [
            'requeue_id=${SLURM_ARRAY_TASK_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}',
            'requeue_id=${requeue_id:-$SLURM_JOB_ID}',
            f'if [ "${{SLURM_RESTART_COUNT:-0}}" -lt {limit} ]; then',
            '  echo "mlxcore: run preempted: requeueing SLURM job $requeue_id" >&2',
            '  scontrol requeue "$requeue_id" || echo "mlxcore: scontrol requeue $requeue_id failed" >&2',
            "else",
            f'  echo "mlxcore: run preempted {limit} times already (mlx.scheduler.max_requeues): not requeued" >&2',
            "fi",
        ]

    def failure_lines(self, submission: Submission) -> list[str]:
        """A task killed by the kernel for its memory (exit 137), or, when asked, one that failed, is sent
        again by :mod:`mlx_slurm.retry`, run with the interpreter that submitted the job."""
        if not self.retry.active:
            return []
        policy = json.dumps(asdict(self.retry), sort_keys=True)
        command = shlex.join([sys.executable, "-m", "mlx_slurm.retry", policy, str(submission.script)])
        condition = "true" if self.retry.failed else f'[ "$code" -eq {KILLED} ]'
        return [f'if {condition}; then',
                f'  {command} "$run_dir" "$code" || echo "mlxcore: could not resubmit the failed attempt" >&2',
                "fi"]
