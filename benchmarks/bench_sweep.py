"""Per-run cost inside a 200-point local sweep, and the time until the first run starts.

``python main.py seed=range(0,200)`` on the no-op app, as a subprocess. Each run appends ``time.time()`` to a
stamps file, so one command gives: total wall / 200 (the per-run cost, goal <= 30 ms, startup included),
the steady per-run cost (last stamp - first stamp) / 199, and the time from spawning the command to the first
run starting. The floor is a plain loop writing the same 200 run directories (``workers/sweep_floor.py``).
MLXP runs the same command in its venv (it composes every point through hydra before the first run); with
``--hydra-multirun`` the bare hydra app's ``-m seed=range(0,200)`` is timed too (~30 s a call, off by default).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    MLXP_PY, PY, WORKERS, Figure, bench_main, clean, copy_app, interleave, medians, scratch, timed_sweep, warm_up,
)

DEFAULT_REPEATS = 7
MLXP_REPEATS = 3
POINTS = 200


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False, hydra_multirun: bool = False,
        mlxp_repeats: int = MLXP_REPEATS) -> list[Figure]:
    out = scratch("sweep")
    sweep = f"seed=range(0,{POINTS})"
    apps = {"mlxcore": copy_app("mlxcore_noop", out), "floor": out / "floor"}
    apps["floor"].mkdir()
    candidates = {
        "floor": lambda: timed_sweep([PY, str(WORKERS / "sweep_floor.py"), str(POINTS), "logs"], apps["floor"],
                                out / "stamps-floor", POINTS),
        "mlxcore": lambda: timed_sweep([PY, "main.py", sweep], apps["mlxcore"], out / "stamps-mlxcore", POINTS),
    }
    counts = {}
    if hydra_multirun:
        apps["hydra"] = copy_app("hydra_noop", out)
        candidates["hydra"] = lambda: timed_sweep([PY, "main.py", "-m", sweep], apps["hydra"], out / "stamps-hydra",
                                                  POINTS)
        counts["hydra"] = mlxp_repeats
    if with_mlxp:
        apps["mlxp"] = copy_app("mlxp_noop", out)
        candidates["mlxp"] = lambda: timed_sweep([MLXP_PY, "main.py", sweep], apps["mlxp"], out / "stamps-mlxp", POINTS)
        counts["mlxp"] = mlxp_repeats

    def before(name: str) -> None:
        clean(apps[name])

    warm_up({k: v for k, v in candidates.items() if k in ("floor", "mlxcore")}, before)
    n_dirs = len([p for p in (apps["mlxcore"] / "logs").iterdir() if p.name.isdigit()])
    if n_dirs != POINTS:
        raise RuntimeError(f"mlxcore sweep wrote {n_dirs} run directories, expected {POINTS}")
    results = interleave(candidates, repeats, before, counts)
    med = medians(results)
    mx, fl, ml, hy = med["mlxcore"], med["floor"], med.get("mlxp"), med.get("hydra")
    mlxp_note = f"; MLXP median of {len(results['mlxp'])}" if ml else ""
    figures = [
        Figure("sweep", f"per-run cost, {POINTS}-point sweep (total wall / {POINTS})", "ms", mx["per_run"],
               fl["per_run"], "plain loop writing the run dirs", ml and ml["per_run"], ml and fl["per_run"],
               goal="<= 30 ms", met=mx["per_run"] <= 30, repeats=repeats,
               note=f"total wall: mlxcore {mx['total'] / 1000:.2f} s, floor {fl['total'] / 1000:.2f} s"
               + (f", MLXP {ml['total'] / 1000:.1f} s" if ml else "") + mlxp_note),
        Figure("sweep", f"steady per-run cost, (last start - first start) / {POINTS - 1}", "ms", mx["steady"],
               fl["steady"], "plain loop writing the run dirs", ml and ml["steady"], ml and fl["steady"],
               repeats=repeats, note="excludes startup and composition done before the first run" + mlxp_note),
        Figure("sweep", f"time to first run starting, {POINTS}-point sweep", "ms", mx["first"], fl["first"],
               "plain loop writing the run dirs", ml and ml["first"], ml and fl["first"], repeats=repeats,
               note="from spawning the command to the task's first timestamp" + mlxp_note),
    ]
    if hy:
        figures.append(Figure(
            "sweep", f"per-run cost (total / {POINTS}) vs bare hydra app -m {sweep}", "ms", mx["per_run"],
            hy["per_run"], "hydra -m (BasicLauncher)", ml and ml["per_run"], hy["per_run"], repeats=repeats,
            note=f"hydra -m: first run after {hy['first']:.0f} ms, steady {hy['steady']:.1f} ms/run "
                 f"(median of {len(results['hydra'])})"))
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("sweep", f"{POINTS}-point sweep", run, DEFAULT_REPEATS, argv, options=[
        ("--hydra-multirun", {"action": "store_true", "help": "also time the bare hydra app with -m (~30 s a call)"}),
        ("--mlxp-repeats", {"type": int, "default": MLXP_REPEATS,
                            "help": f"calls of the slow candidates (default {MLXP_REPEATS})"}),
    ])


if __name__ == "__main__":
    main()
