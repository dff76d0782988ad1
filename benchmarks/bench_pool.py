"""200 no-op points through the ``local`` pool (2 workers) against the same points in one process (issue 7.5).

Why three candidates: the pool runs each point as its own process (``bash`` job script, then ``python main.py
<point> +mlx.logger.forced_log_id=<id>``), so what it costs beyond the work is process start-up plus whatever
each child redoes (imports, composition). The floor is what no pool of Python processes can avoid: 200 ``python
-c pass``, 2 at a time (``workers/spawn_floor.py``). The sequential in-process sweep (``python main.py
seed=range(0,200)``, the same app) shows what the pool costs against not using it. Goal: the pool's overhead
beyond Python start-up, ``(pool wall - floor wall) / 200``, is a few tens of ms per point (taken as <= 50 ms).

The pool runs in the foreground (``+mlx.use_scheduler=true +mlx.scheduler.name=local
+mlx.scheduler.workers=2``), so its wall time covers submission, all 200 jobs and the final summary; its state
directory is kept under ``benchmarks/out/pool`` (``MLXCORE_LOCAL_STATE``). MLXP has no local pool (its
schedulers only call sbatch, oarsub, qsub, msub or bsub), so there is no MLXP column.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    PY, WORKERS, Figure, bench_main, clean, copy_app, interleave, medians, scratch, timed_run, timed_sweep, warm_up,
)

DEFAULT_REPEATS = 4
POOL_REPEATS = 3  # ~35-70 s a call on 2 cores: fewer calls, each already an average over 200 points
POINTS = 200
WIDTH = 2
GOAL_MS = 50.0


def _check_pool_runs(app: Path) -> None:
    """Every point ran to COMPLETE through the pool (checked once, after the untimed warm-up)."""
    runs = [p for p in (app / "logs").iterdir() if p.name.isdigit()]
    bad = [p.name for p in runs if "status: COMPLETE" not in (p / "metadata" / "info.yaml").read_text()]
    if len(runs) != POINTS or bad:
        raise RuntimeError(f"pool: {len(runs)} run directories, not COMPLETE: {bad[:10]}")
    if not (runs[0] / "metadata" / "scheduler.yaml").exists():
        raise RuntimeError("pool: the runs have no scheduler.yaml: they did not go through the local scheduler")


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False, pool_repeats: int = POOL_REPEATS) -> list[Figure]:
    out = scratch("pool")
    sweep = f"seed=range(0,{POINTS})"
    pool_args = ["+mlx.use_scheduler=true", "+mlx.scheduler.name=local", f"+mlx.scheduler.workers={WIDTH}"]
    apps = {"pool": copy_app("mlxcore_noop", out / "pool"), "sequential": copy_app("mlxcore_noop", out / "seq")}
    state = {"MLXCORE_LOCAL_STATE": str(out / "state")}
    candidates = {
        "floor": lambda: {"per_run": timed_run([PY, str(WORKERS / "spawn_floor.py"), str(POINTS), str(WIDTH)])
                          * 1000 / POINTS},
        "sequential": lambda: timed_sweep([PY, "main.py", sweep], apps["sequential"], out / "stamps-seq", POINTS),
        "pool": lambda: timed_sweep([PY, "main.py", sweep, *pool_args], apps["pool"], out / "stamps-pool", POINTS,
                                    env=state),
    }

    def before(name: str) -> None:
        if name in apps:
            clean(apps[name])

    warm_up({k: v for k, v in candidates.items() if k != "pool"}, before)  # a pool call is too long to waste
    results = interleave(candidates, repeats, before, counts={"pool": pool_repeats})
    _check_pool_runs(apps["pool"])  # what the last timed pool call left
    med = medians(results)
    pool, seq, floor = med["pool"], med["sequential"], med["floor"]["per_run"]
    overhead = pool["per_run"] - floor
    n_pool = len(results["pool"])
    return [
        Figure("pool", f"local pool, {POINTS} no-op points, {WIDTH} workers: wall per point", "ms", pool["per_run"],
               floor, f"{POINTS} x python -c pass, {WIDTH} at a time", repeats=n_pool,
               note=f"total wall: pool {pool['total'] / 1000:.1f} s, floor {floor * POINTS / 1000:.1f} s; first point "
                    f"started {pool['first']:.0f} ms after the command; then one point every {pool['steady']:.0f} ms; "
                    f"MLXP has no local pool"),
        Figure("pool", "local pool: overhead per point beyond Python start-up ((pool - floor) / points)", "ms",
               overhead, goal=f"a few tens of ms (<= {GOAL_MS:.0f} ms)", met=overhead <= GOAL_MS, repeats=n_pool,
               note=f"each job occupies a worker slot for ~{overhead * WIDTH:.0f} ms more than a bare interpreter "
                    f"start ({WIDTH} slots share the wall time)"),
        Figure("pool", f"local pool vs the same {POINTS} points in one process (in-process sweep)", "ms",
               pool["per_run"], seq["per_run"], "sequential in-process sweep, per point", repeats=n_pool,
               note=f"sequential: total {seq['total'] / 1000:.2f} s, first point after {seq['first']:.0f} ms, then "
                    f"{seq['steady']:.1f} ms a point (median of {len(results['sequential'])})"),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("pool", f"local pool, {POINTS} points, {WIDTH} workers", run, DEFAULT_REPEATS, argv, options=[
        ("--pool-repeats", {"type": int, "default": POOL_REPEATS, "help": f"pool calls (default {POOL_REPEATS})"}),
    ])


if __name__ == "__main__":
    main()
