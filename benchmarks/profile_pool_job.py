"""Where one job of the local pool spends its time: ``python -m benchmarks.profile_pool_job [--repeats N]``.

Why: bench_pool.py gives the pool's overhead per point; this splits one job into the parts a fix would target,
each a subprocess timed like the benchmarks (interleaved, medians), in the order a job pays them:

- ``python -c pass``: interpreter start-up (the pool benchmark's floor);
- ``import mlxcore``, then also ``hydra``/``omegaconf``/the override parser/``hydra.compose``: the imports a
  child makes before its task runs (it parses its point's overrides with hydra's parser);
- the child command itself, exactly as the job script runs it (one point, ``forced_log_id``);
- the same child with ``gc.freeze()`` at exit: the interpreter's final collections over hydra's objects;
- ``bash job.sh``: the child inside the job script (bash, sed, eval, the signal-forwarding wait loop).

Not a benchmark (no goal, not in ``python -m benchmarks``); it prints a table of the parts and a reading.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PY, copy_app, interleave, median, print_header, scratch, timed_run, warm_up

HYDRA_STACK = ("import mlxcore, omegaconf, hydra, hydra.compose; "
               "from hydra.core.override_parser.overrides_parser import OverridesParser")
FREEZE_AT_EXIT = ("import atexit, gc, runpy, sys; atexit.register(gc.freeze); sys.argv = sys.argv[1:]; "
                  "runpy.run_path(sys.argv[0], run_name='__main__')")


def _one_job(app: Path) -> tuple[Path, list[str]]:
    """Submit a two-point sweep through the pool once (an array job, as a 200-point sweep is); return its job
    script and the argv of its first point's child."""
    timed_run([PY, "main.py", "seed=0,1", "+mlx.use_scheduler=true", "+mlx.scheduler.name=local"], cwd=app)
    script = next((app / "logs" / ".mlxcore" / "submissions").glob("*/job.sh"))
    args = (script.parent / "jobs.args").read_text().splitlines()[0]
    command = args.split("command=(", 1)[1].rstrip(")").split()  # the no-op app's arguments hold no spaces
    return script, command


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    print_header("one local-pool job, decomposed")
    out = scratch("profile_pool_job")
    app = copy_app("mlxcore_noop", out)
    env = {**os.environ, "MLXCORE_LOCAL_STATE": str(out / "state")}
    script, child = _one_job(app)
    job_env = {**env, "MLXCORE_ARRAY_INDEX": "0", "MLXCORE_JOB_ID": "profile.0"}
    candidates = {
        "python -c pass": lambda: timed_run([PY, "-c", "pass"]),
        "+ import mlxcore": lambda: timed_run([PY, "-c", "import mlxcore"]),
        "+ import hydra stack": lambda: timed_run([PY, "-c", HYDRA_STACK]),
        "child (python main.py <point>)": lambda: timed_run(child, cwd=app, env=env),
        "child, gc.freeze() at exit": lambda: timed_run([child[0], "-c", FREEZE_AT_EXIT, *child[1:]], cwd=app, env=env),
        "bash job.sh (the pool's job)": lambda: timed_run(["bash", str(script)], cwd=app, env=job_env),
    }
    warm_up(candidates)
    med = {k: median(v) * 1000 for k, v in interleave(candidates, args.repeats).items()}
    start, mlx, stack = med["python -c pass"], med["+ import mlxcore"], med["+ import hydra stack"]
    child_ms, frozen = med["child (python main.py <point>)"], med["child, gc.freeze() at exit"]
    job = med["bash job.sh (the pool's job)"]
    parts = [
        ("interpreter start-up (the floor)", start),
        ("import mlxcore", mlx - start),
        ("import hydra, omegaconf, the override parser, hydra.compose", stack - mlx),
        ("interpreter exit: final GC over hydra's objects (removed by gc.freeze())", child_ms - frozen),
        ("the launch itself: parse, settings, plugins, compose, run, metadata", frozen - stack),
        ("bash job script around the child", job - child_ms),
    ]
    print(f"\nmedians of {args.repeats} calls each, serial (one job alone; the pool runs 2 at once):")
    for name, ms in med.items():
        print(f"  {name:34s} {ms:7.1f} ms")
    print("\none job, split:")
    for name, ms in parts:
        print(f"  {ms:7.1f} ms  {name}")
    print(f"  {job - start:7.1f} ms  beyond interpreter start-up, per job; / 2 workers = "
          f"{(job - start) / 2:.0f} ms per point of wall time")


if __name__ == "__main__":
    main()
