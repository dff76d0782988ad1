"""One of the N processes of bench_ids.py: prepare, say ready, wait for the release, allocate one run id.

The release is the parent closing the write end of a pipe every worker is blocked reading (end of file wakes
all readers at once). Prints one JSON line: the id and the ``time.monotonic()`` at wake-up and when the id was
obtained (the clock is system-wide, so the parent compares it with the release time). Then, unless
``--exit-fd`` is -1, it blocks on a second pipe until the parent has every line: a process that already has its
id does not spend the CPU on its exit while the others are still allocating.

    python id_worker.py --impl mlxcore|mlxp|flock|floor --parent DIR --ready-fd W --go-fd R --exit-fd R2
"""

import argparse
import json
import os
import sys
import time


def load(impl):
    if impl == "mlxcore":
        from pathlib import Path

        from mlxcore.store import ids

        # the store's id allocation: the counter under its lock, then the run's directory built aside (empty
        # here) and moved into place by one rename, as every run is created
        return lambda parent: ids.create_run(Path(parent), lambda log_id, staging: None)[0]
    if impl == "mlxp":
        # MLXP's own allocator (mlxp/logger.py: _make_log_dir), imported without running mlxp/__init__.py,
        # which would load pandas in each of the processes; the allocation code is unchanged.
        import importlib.util
        import types

        spec = importlib.util.find_spec("mlxp")
        package = types.ModuleType("mlxp")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["mlxp"] = package
        from mlxp.logger import _make_log_dir

        return lambda parent: _make_log_dir(-1, parent)[0]

    if impl == "flock":
        import fcntl

        def flock(parent):  # the least a correct allocator does: lock, read and bump a counter, mkdir, unlock
            fd = os.open(os.path.join(parent, "ids.lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = int(os.pread(fd, 32, 0) or b"0")
                os.pwrite(fd, str(last + 1).encode().ljust(32), 0)
                os.mkdir(os.path.join(parent, str(last + 1)))
                return last + 1
            finally:
                os.close(fd)

        return flock

    def floor(parent):  # no coordination at all: one unique directory per process
        os.mkdir(os.path.join(parent, f"p{os.getpid()}"))
        return os.getpid()

    return floor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["mlxcore", "mlxp", "flock", "floor"], required=True)
    parser.add_argument("--parent", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--go-fd", type=int, required=True)
    parser.add_argument("--exit-fd", type=int, default=-1)
    args = parser.parse_args()
    allocate = load(args.impl)
    os.write(args.ready_fd, b"r")
    os.close(args.ready_fd)
    while os.read(args.go_fd, 1):  # blocks until the parent closes its end
        pass
    woke = time.monotonic()
    log_id = allocate(args.parent)
    done = time.monotonic()
    print(json.dumps({"id": log_id, "woke": woke, "done": done}), flush=True)
    if args.exit_fd >= 0:
        while os.read(args.exit_fd, 1):
            pass


if __name__ == "__main__":
    main()
