"""The optuna sweeper's own cost per trial (ask, tell, the journal, reading the metric, recording the state, and
launching in waves) against running the same number of points directly, as a grid (issue 17, item 6).

Candidates, each a full command over 40 points of a task that logs one value (``train.loss = x``):

- ``pool optuna``: ``x=range(0,40) +mlx.sweeper.name=optuna +mlx.sweeper.n_trials=40 +mlx.sweeper.parallel=2``
  through the local pool (2 workers): 20 waves of two trials, TPE (the default sampler) asking each;
- ``pool grid`` (its floor): ``x=range(0,40)`` through the same pool, all 40 points submitted at once;
- ``inproc optuna`` and ``inproc grid``: the same two in the launching process, which isolates what the sweeper
  itself adds per trial (no pool, no waves).

The per-trial overhead is ``(optuna wall - grid wall) / 40``; goal: <= 50 ms a trial through the pool. Through
the pool it includes what waves cost by nature: each wave waits for its slower trial, and each is one submission
(run directories made, job scripts written, two interpreters started) instead of one for all. MLXP has no search
sweeper, so there is no MLXP column.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Figure, bench_main, clean, interleave, medians, scratch, timed_sweep, warm_up

#: its section of benchmarks/RESULTS.md (``python -m benchmarks optuna_sweeper --write-results``)
SECTION = "## Optuna sweeper (mlxcore-optuna)"
DEFAULT_REPEATS = 3
TRIALS = 40
WIDTH = 2
GOAL_MS = 50.0

TASK = '''import os
import time

import mlxcore


@mlxcore.launch(config_path="configs")
def main(ctx):
    ctx.logger.log_metrics({"loss": float(ctx.config.x)}, log_name="train")
    with open(os.environ["BENCH_STAMPS"], "a") as handle:
        handle.write(f"{time.time()!r}\\n")


if __name__ == "__main__":
    main()
'''


def _app(directory: Path) -> Path:
    (directory / "configs").mkdir(parents=True, exist_ok=True)
    (directory / "configs" / "config.yaml").write_text("x: 0\n")
    (directory / "main.py").write_text(TASK)
    return directory


def _check(app: Path, optuna: bool) -> None:
    """Every point ran to COMPLETE, and the search told its study each one (checked after the last call)."""
    runs = [p for p in (app / "logs").iterdir() if p.name.isdigit()]
    bad = [p.name for p in runs if "status: COMPLETE" not in (p / "metadata" / "info.yaml").read_text()]
    told = [p.name for p in runs if "state: COMPLETE" in (p / "metadata" / "info.yaml").read_text()]
    if len(runs) != TRIALS or bad or (optuna and len(told) != TRIALS):
        raise RuntimeError(f"{app}: {len(runs)} runs, not COMPLETE: {bad[:5]}, told: {len(told)}")


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    out = scratch("optuna_sweeper")
    py = sys.executable
    points = f"x=range(0,{TRIALS})"
    search = ["+mlx.sweeper.name=optuna", "+mlx.sweeper.metric=train.loss", f"+mlx.sweeper.n_trials={TRIALS}",
              "+mlx.sweeper.seed=0"]
    pool = ["+mlx.use_scheduler=true", "+mlx.scheduler.name=local", f"+mlx.scheduler.workers={WIDTH}"]
    apps = {name: _app(out / name.replace(" ", "_")) for name in ("pool optuna", "pool grid", "inproc optuna",
                                                                   "inproc grid")}
    argv = {"pool optuna": [py, "main.py", points, *search, *pool, f"+mlx.sweeper.parallel={WIDTH}",
                            "+mlx.sweeper.poll_interval=0.05"],
            "pool grid": [py, "main.py", points, *pool],
            "inproc optuna": [py, "main.py", points, *search],
            "inproc grid": [py, "main.py", points]}
    state = {"MLXCORE_LOCAL_STATE": str(out / "state")}

    def candidate(name: str):
        return lambda: timed_sweep(argv[name], apps[name], out / f"stamps-{name.replace(' ', '_')}", TRIALS, env=state)

    candidates = {name: candidate(name) for name in argv}

    def before(name: str) -> None:
        clean(apps[name])

    warm_up(candidates, before)
    results = interleave(candidates, repeats, before)
    for name, app in apps.items():
        _check(app, "optuna" in name)
    med = medians(results)
    pool_over = (med["pool optuna"]["total"] - med["pool grid"]["total"]) / TRIALS
    inproc_over = (med["inproc optuna"]["total"] - med["inproc grid"]["total"]) / TRIALS
    n = len(results["pool optuna"])
    return [
        Figure("optuna_sweeper", f"optuna search, {TRIALS} trials, local pool ({WIDTH} workers, parallel {WIDTH}): "
               "wall per trial", "ms", med["pool optuna"]["per_run"], med["pool grid"]["per_run"],
               f"the same {TRIALS} points as a grid through the same pool", repeats=n,
               note=f"total: search {med['pool optuna']['total'] / 1000:.2f} s, grid "
                    f"{med['pool grid']['total'] / 1000:.2f} s"),
        Figure("optuna_sweeper", "optuna sweeper's overhead per trial through the pool ((search - grid) / trials)",
               "ms", pool_over, goal=f"<= {GOAL_MS:.0f} ms", met=pool_over <= GOAL_MS, repeats=n,
               note=f"includes {TRIALS // WIDTH} submissions instead of one and each wave waiting for its slower "
                    "trial"),
        Figure("optuna_sweeper", f"optuna search, {TRIALS} trials, in process: wall per trial", "ms",
               med["inproc optuna"]["per_run"], med["inproc grid"]["per_run"],
               f"the same {TRIALS} points as a grid in process", repeats=len(results["inproc optuna"]),
               note=f"the sweeper's own cost (ask, tell, journal, metric read, state recorded): {inproc_over:.1f} ms "
                    f"a trial; optuna's import is in it once"),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("optuna_sweeper", f"optuna sweeper, {TRIALS} trials vs a {TRIALS}-point grid", run,
                      DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
