"""No-op mlxcore task: benchmarks/bench_launch.py, bench_sweep.py and bench_pool.py time it from the command line.

When BENCH_STAMPS names a file, each run appends ``time.time()`` to it (the sweep's time to first run).
"""

import os
import time

import mlxcore


@mlxcore.launch(config_path="configs")
def main(ctx):
    stamps = os.environ.get("BENCH_STAMPS")
    if stamps:
        with open(stamps, "a") as handle:
            handle.write(f"{time.time()!r}\n")


if __name__ == "__main__":
    main()
