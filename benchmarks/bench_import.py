"""Import time: ``python -c "import mlxcore"`` against ``python -c pass`` (and ``import mlxp`` against its own).

Also timed: ``import mlxcore; mlxcore.launch``, what a decorated script pays before ``main()`` runs (the
``launching`` module, still without hydra or omegaconf).

The two environments do not start alike: the main one runs ``.pth`` hooks at startup (the editable-install
finder, which imports pathlib and tempfile, and on this machine a sandbox CA hook importing certifi), the MLXP
venv none. So each import is also timed with ``python -S`` and ``PYTHONPATH`` set to the environment's
site-packages (no ``.pth`` processed): the same ~10 ms floor for both, the whole import cost counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import MLXP_PY, PY, REPO, Figure, bench_main, interleave, median, timed_run, warm_up

DEFAULT_REPEATS = 15


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    candidates = {
        "floor": lambda: timed_run([PY, "-c", "pass"]),
        "mlxcore": lambda: timed_run([PY, "-c", "import mlxcore"]),
        "mlxcore.launch": lambda: timed_run([PY, "-c", "import mlxcore; mlxcore.launch"]),
    }
    no_site = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])}
    candidates["floor -S"] = lambda: timed_run([PY, "-S", "-c", "pass"], env=no_site)
    candidates["mlxcore -S"] = lambda: timed_run([PY, "-S", "-c", "import mlxcore; mlxcore.launch"], env=no_site)
    if with_mlxp:
        mlxp_site = subprocess.run([MLXP_PY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        mlxp_no_site = {**os.environ, "PYTHONPATH": mlxp_site}
        candidates["mlxp floor"] = lambda: timed_run([MLXP_PY, "-c", "pass"])
        candidates["mlxp"] = lambda: timed_run([MLXP_PY, "-c", "import mlxp"])
        candidates["mlxp floor -S"] = lambda: timed_run([MLXP_PY, "-S", "-c", "pass"], env=mlxp_no_site)
        candidates["mlxp -S"] = lambda: timed_run([MLXP_PY, "-S", "-c", "import mlxp"], env=mlxp_no_site)
    warm_up(candidates)
    ms = {name: [t * 1000 for t in times] for name, times in interleave(candidates, repeats).items()}
    med = {name: median(values) for name, values in ms.items()}
    mlxp = med.get("mlxp")
    mlxp_floor = med.get("mlxp floor")
    figures = [
        Figure("import", "python -c 'import mlxcore' (wall)", "ms", med["mlxcore"], med["floor"],
               "python -c pass", mlxp, mlxp_floor, repeats=repeats,
               note=f"net of the floor: mlxcore {med['mlxcore'] - med['floor']:.1f} ms"
               + (f", MLXP {mlxp - mlxp_floor:.1f} ms" if mlxp is not None else "")),
        Figure("import", "python -c 'import mlxcore; mlxcore.launch' (wall)", "ms", med["mlxcore.launch"],
               med["floor"], "python -c pass", mlxp, mlxp_floor, repeats=repeats,
               note=f"net of the floor: {med['mlxcore.launch'] - med['floor']:.1f} ms (MLXP column: import mlxp)"),
        Figure("import", "python -S -c 'import mlxcore; mlxcore.launch' (no .pth hooks)", "ms", med["mlxcore -S"],
               med["floor -S"], "python -S -c pass", med.get("mlxp -S"), med.get("mlxp floor -S"), repeats=repeats,
               note=f"net of the floor: mlxcore {med['mlxcore -S'] - med['floor -S']:.1f} ms"
               + (f", MLXP {med['mlxp -S'] - med['mlxp floor -S']:.1f} ms" if "mlxp -S" in med else "")),
    ]
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("import", "import time", run, DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
