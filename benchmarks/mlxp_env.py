"""MLXP (PyPI ``mlxp``) in its own venv, ``benchmarks/.venv-mlxp``, created on demand.

Why a separate venv: MLXP pins its own hydra/omegaconf and pulls pandas; installed next to mlxcore it would
change what mlxcore is measured with. The venv is git-ignored, so a fresh checkout has none: the benchmarks
create it themselves (``python -m venv`` + ``pip install mlxp``) and, when PyPI cannot be reached, say
"MLXP unavailable" and leave the MLXP columns empty instead of failing.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.common import MLXP_PY, MLXP_VENV, PY

#: what ``pip install`` is given (unpinned, as the brief asks: the version measured is recorded with the figures)
MLXP_REQUIREMENT = "mlxp"
#: pip's own defaults (15 s x 5 retries per request) make an offline machine wait minutes before saying so
PIP_NETWORK = ["--timeout", "15", "--retries", "1", "--disable-pip-version-check", "-q"]


def importable() -> bool:
    """True when the venv exists and ``mlxp`` is importable from it (found, not imported: ~20 ms)."""
    if not Path(MLXP_PY).exists():
        return False
    probe = subprocess.run([MLXP_PY, "-c", "import importlib.util as u, sys; sys.exit(not u.find_spec('mlxp'))"],
                           capture_output=True)
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def ensure() -> bool:
    """Make sure MLXP can be measured; create the venv and install it when missing. Never raises.

    Prints one line when it has to install, and ``MLXP unavailable: <why>`` when it cannot.
    """
    if importable():
        return True
    print(f"MLXP: creating {MLXP_VENV.name} (python -m venv + pip install {MLXP_REQUIREMENT}) ...", flush=True)
    try:
        if not Path(MLXP_PY).exists():
            shutil.rmtree(MLXP_VENV, ignore_errors=True)  # a half-made venv without its interpreter
            subprocess.run([PY, "-m", "venv", str(MLXP_VENV)], check=True, capture_output=True, timeout=300)
        pip = subprocess.run([MLXP_PY, "-m", "pip", "install", *PIP_NETWORK, MLXP_REQUIREMENT],
                             capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"MLXP unavailable: could not create {MLXP_VENV} ({exc})", flush=True)
        return False
    if pip.returncode != 0:
        last = (pip.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(f"MLXP unavailable: pip install {MLXP_REQUIREMENT} failed (PyPI unreachable?): {last}", flush=True)
        return False
    if not importable():
        print("MLXP unavailable: installed, but `import mlxp` cannot find it", flush=True)
        return False
    print(f"MLXP {version()} installed", flush=True)
    return True


@functools.lru_cache(maxsize=None)
def version() -> str:
    out = subprocess.run([MLXP_PY, "-c", "import importlib.metadata as m; print(m.version('mlxp'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


@functools.lru_cache(maxsize=None)
def package_versions() -> dict[str, str]:
    """Versions of MLXP and of the libraries it shares with mlxcore, as installed in its venv."""
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            "for name in ('mlxp', 'hydra-core', 'omegaconf', 'PyYAML', 'pandas', 'dill'):\n"
            "    try: out[name] = m.version(name)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    out = subprocess.run([MLXP_PY, "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


if __name__ == "__main__":
    sys.exit(0 if ensure() else 1)
