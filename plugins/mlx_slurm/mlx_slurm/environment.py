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

from dataclasses import dataclass

from mlxcore.schedulers.base import Submission
from mlxcore.schedulers.environment import JobEnvironment


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
