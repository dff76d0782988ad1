"""The detached supervisor behind the ``local`` scheduler.

``python -m mlxcore.schedulers.local_runner SCRIPT COUNT WORKERS STATE_ROOT`` runs ``bash SCRIPT`` once per
array index ``0..COUNT-1`` (or once, without an index, when COUNT is 0), at most WORKERS at a time, each in its
own process group, and records ``<index>.pid`` and ``<index>.exit`` under ``STATE_ROOT/<own pid>/``. A job
whose ``cancel/<index>`` file appears before it starts is skipped. SIGTERM to the supervisor stops the queue and
forwards SIGTERM to running jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    script, count, workers, root = argv[0], int(argv[1]), max(1, int(argv[2])), Path(argv[3])
    state = root / str(os.getpid())
    (state / "cancel").mkdir(parents=True, exist_ok=True)
    queue = list(range(count)) if count else [0]
    running: dict[int, subprocess.Popen] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in running.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while (queue and not stopping) or running:
        while queue and not stopping and len(running) < workers:
            index = queue.pop(0)
            if (state / "cancel" / str(index)).exists():
                (state / f"{index}.exit").write_text("143")
                continue
            env = dict(os.environ, MLXCORE_JOB_ID=f"{os.getpid()}.{index}")
            if count:
                env["MLXCORE_ARRAY_INDEX"] = str(index)
            proc = subprocess.Popen(["bash", script], env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            running[index] = proc
            (state / f"{index}.pid").write_text(str(proc.pid))
        for index, proc in list(running.items()):
            code = proc.poll()
            if code is not None:
                (state / f"{index}.exit").write_text(str(code if code >= 0 else 128 - code))
                (state / f"{index}.pid").unlink(missing_ok=True)
                del running[index]
        time.sleep(0.02)
    for index in queue:  # stopped: queued jobs never ran
        (state / f"{index}.exit").write_text("143")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
