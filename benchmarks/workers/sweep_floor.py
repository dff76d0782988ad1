"""The file-system floor of a sweep: N run directories written by a plain loop, no framework.

Per run: ``logs/<i>/{metadata,metrics,artifacts}``, ``config.yaml``, ``info.yaml`` written at start and again
at the end, and a ``time.time()`` stamp appended to ``BENCH_STAMPS`` (as the no-op apps do).

    python sweep_floor.py N PARENT
"""

import os
import sys
import time

n, parent = int(sys.argv[1]), sys.argv[2]
stamps = os.environ["BENCH_STAMPS"]
for i in range(1, n + 1):
    run_dir = os.path.join(parent, str(i))
    for sub in ("metadata", "metrics", "artifacts"):
        os.makedirs(os.path.join(run_dir, sub))
    with open(os.path.join(run_dir, "metadata", "config.yaml"), "w") as f:
        f.write(f"seed: {i - 1}\n")
    with open(os.path.join(run_dir, "metadata", "info.yaml"), "w") as f:
        f.write(f"log_id: {i}\nstatus: RUNNING\nstart_time: {time.time()}\n")
    with open(stamps, "a") as f:
        f.write(f"{time.time()!r}\n")
    with open(os.path.join(run_dir, "metadata", "info.yaml"), "w") as f:
        f.write(f"log_id: {i}\nstatus: COMPLETE\nend_time: {time.time()}\n")
