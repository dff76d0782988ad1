"""No-op launch: a real ``@mlxcore.launch`` script whose task does nothing, run as a subprocess (one run, one
run directory written), against a bare ``@hydra.main`` app doing nothing (goal: not slower) and ``python -c
pass``. MLXP's no-op app is timed in its venv against the same hydra app and ``python -c pass`` there.

Each app is a copy under ``benchmarks/out/launch/``; what a run wrote (``logs/``, ``outputs/``) is removed
before each call, untimed, so every call starts from the same state. The config holds one key (``seed: 0``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    MLXP_PY, PY, Figure, bench_main, clean, copy_app, interleave, median, scratch, timed_run, warm_up,
)

DEFAULT_REPEATS = 15


def _check_mlxcore_run(app: Path) -> None:
    info = (app / "logs" / "1" / "metadata" / "info.yaml").read_text()
    if "status: COMPLETE" not in info:
        raise RuntimeError(f"the mlxcore no-op run did not complete:\n{info}")


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    out = scratch("launch")
    apps = {name: copy_app(name, out) for name in ("mlxcore_noop", "hydra_noop")}
    if with_mlxp:
        apps["mlxp_noop"] = copy_app("mlxp_noop", out)
        apps["hydra_noop_mlxp"] = copy_app("hydra_noop", out / "mlxp-venv")
    candidates = {
        "python": lambda: timed_run([PY, "-c", "pass"]),
        "hydra": lambda: timed_run([PY, "main.py"], cwd=apps["hydra_noop"]),
        "mlxcore": lambda: timed_run([PY, "main.py"], cwd=apps["mlxcore_noop"]),
    }
    if with_mlxp:
        candidates["mlxp python"] = lambda: timed_run([MLXP_PY, "-c", "pass"])
        candidates["mlxp hydra"] = lambda: timed_run([MLXP_PY, "main.py"], cwd=apps["hydra_noop_mlxp"])
        candidates["mlxp"] = lambda: timed_run([MLXP_PY, "main.py"], cwd=apps["mlxp_noop"])
    where = {"hydra": "hydra_noop", "mlxcore": "mlxcore_noop", "mlxp hydra": "hydra_noop_mlxp", "mlxp": "mlxp_noop"}

    def before(name: str) -> None:
        if name in where:
            clean(apps[where[name]])

    warm_up(candidates, before)
    _check_mlxcore_run(apps["mlxcore_noop"])
    ms = {name: [t * 1000 for t in times] for name, times in interleave(candidates, repeats, before).items()}
    med = {name: median(values) for name, values in ms.items()}
    hydra_ratio = med["mlxcore"] / med["hydra"]
    figures = [
        Figure("launch", "no-op launch, 1 run (wall) vs bare @hydra.main app", "ms", med["mlxcore"], med["hydra"],
               "bare @hydra.main app", med.get("mlxp"), med.get("mlxp hydra"), goal="not slower than hydra (<= 1.00x)",
               met=hydra_ratio <= 1.0, repeats=repeats,
               note=f"worst of {repeats}: mlxcore {max(ms['mlxcore']):.0f} ms, hydra {max(ms['hydra']):.0f} ms"),
        Figure("launch", "no-op launch, 1 run (wall) vs python -c pass", "ms", med["mlxcore"], med["python"],
               "python -c pass", med.get("mlxp"), med.get("mlxp python"), repeats=repeats,
               note=f"net of python startup: mlxcore {med['mlxcore'] - med['python']:.0f} ms"
               + (f", MLXP {med['mlxp'] - med['mlxp python']:.0f} ms" if with_mlxp else "")),
        Figure("launch", "bare @hydra.main app (wall) vs python -c pass", "ms", med["hydra"], med["python"],
               "python -c pass", med.get("mlxp hydra"), med.get("mlxp python"), repeats=repeats,
               note="the reference itself", mlxp_label="the same hydra app in the MLXP venv"),
    ]
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("launch", "no-op launch", run, DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
