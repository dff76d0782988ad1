"""The floor of the local-pool benchmark: N ``python -c pass`` processes, at most W at a time.

What any pool of Python subprocesses pays before doing anything: interpreter start-up, twice in parallel on a
2-core machine. Spawned with ``posix_spawn`` and reaped with a blocking ``os.wait`` (no polling), so the
figure is start-up alone; timed from outside, so this script's own start counts like the pool's parent does.

    python spawn_floor.py N W
"""

import os
import sys

n, width = int(sys.argv[1]), int(sys.argv[2])
argv = [sys.executable, "-c", "pass"]
started = running = 0
while started < n or running:
    while started < n and running < width:
        os.posix_spawn(sys.executable, argv, os.environ)
        started += 1
        running += 1
    _, status = os.wait()
    running -= 1
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"python -c pass exited {os.waitstatus_to_exitcode(status)}")
