"""The detached supervisor of the ``local`` scheduler (``detach: true``).

``python -m mlxcore.schedulers.local_runner SCRIPT COUNT WORKERS STATE_ROOT GPUS GPUS_PER_JOB`` runs
``bash SCRIPT`` once per array index ``0..COUNT-1`` (once, without an index, when COUNT is 0) through a
:class:`~mlxcore.schedulers.local_pool.LocalPool` whose state lives in ``STATE_ROOT/<own pid>/``. SIGTERM or
SIGINT stops the queue and is forwarded to the running jobs.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .local import job_variables
from .local_pool import LocalPool, PoolJob


def main(argv: list[str]) -> int:
    script, count, workers, root = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    gpus = [g for g in (argv[4] if len(argv) > 4 else "").split(",") if g]
    gpus_per_job = int(argv[5]) if len(argv) > 5 else 1
    pool = LocalPool(root / str(os.getpid()), workers, gpus, gpus_per_job)
    for index in range(max(count, 1)):
        env = job_variables(f"{os.getpid()}.{index}", index if count else None)
        pool.submit(PoolJob(str(index), ["bash", script], env))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, frame: pool.stop(s))
    pool.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
