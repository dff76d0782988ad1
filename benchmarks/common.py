"""Timing helpers shared by the benchmarks: interleaved repeats, medians, subprocess timing, a machine header.

Every figure is the median over repeats of a candidate and of a floor measured in the same session, the two
interleaved round by round (the machine is shared and noisy: a slow minute slows both, not one).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
OUT = ROOT / "out"
APPS = ROOT / "apps"
WORKERS = ROOT / "workers"
#: the interpreter running the benchmarks (a real binary: pyenv's ``python`` shim costs ~100 ms a start)
PY = sys.executable
MLXP_VENV = ROOT / ".venv-mlxp"
MLXP_PY = str(MLXP_VENV / "bin" / "python")


#: The benchmarks time what a user's machine does, with bytecode cached. This sandbox exports
#: PYTHONDONTWRITEBYTECODE=1, and an editable install has no .pyc of its own: every process would recompile
#: mlxcore from source (~10-25 ms a start, charged to mlxcore alone since site-packages came with their .pyc).
#: So the variable is dropped for everything the benchmarks start, and the cache goes to benchmarks/out/pycache
#: (PYTHONPYCACHEPREFIX) rather than into the source tree; the first, untimed call of each candidate fills it.
BYTECODE_NOTE = ("bytecode cached in benchmarks/out/pycache (PYTHONPYCACHEPREFIX)"
                 + ("; the environment's PYTHONDONTWRITEBYTECODE=1 was dropped for the processes timed"
                    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None else ""))
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(OUT / "pycache"))


class Unavailable(Exception):
    """Raised by a benchmark's ``run`` when what it measures is missing here (no cluster, no PyPI): the suite
    reports the reason and goes on; a benchmark that crashes is reported as a failure instead."""


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def scratch(name: str, fresh: bool = True) -> Path:
    """``benchmarks/out/<name>``, emptied when ``fresh``."""
    path = OUT / name
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_app(app: str, dest_parent: Path) -> Path:
    """A fresh copy of ``benchmarks/apps/<app>`` under ``dest_parent`` (the apps write their logs next to them)."""
    dest = dest_parent / app
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(APPS / app, dest)
    return dest


def clean(directory: Path, names: Sequence[str] = ("logs", "outputs", "multirun")) -> None:
    """Remove what a previous repeat wrote, so that each repeat starts from the same state (untimed)."""
    for name in names:
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in ("multirun.yaml", "user_choices.yaml"):
        (directory / name).unlink(missing_ok=True)


def _tail(stderr: bytes) -> str:
    return stderr.decode(errors="replace")[-2000:]


def timed_run(argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one subprocess, from spawn to exit; raises with its stderr when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{_tail(proc.stderr)}")
    return elapsed


def timed_sweep(argv: Sequence[str], cwd: Path, stamps: Path, points: int,
                env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one sweep command whose task appends ``time.time()`` to ``$BENCH_STAMPS``; check it ran ``points``
    tasks; return, in ms: ``total`` wall, ``per_run`` (total / points), ``first`` (spawn to first task) and
    ``steady`` ((last task - first task) / (points - 1): the throughput once started)."""
    stamps.unlink(missing_ok=True)
    env = {**os.environ, **(env or {}), "BENCH_STAMPS": str(stamps)}
    spawned = time.time()
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{_tail(proc.stderr)}")
    times = sorted(float(line) for line in stamps.read_text().split())
    if len(times) != points:
        raise RuntimeError(f"{' '.join(argv)}: {len(times)} tasks ran, expected {points}")
    return {
        "total": total * 1000,
        "per_run": total * 1000 / points,
        "first": (times[0] - spawned) * 1000,
        "steady": (times[-1] - times[0]) * 1000 / (points - 1),
    }


def medians(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per candidate, the median of each key over its calls (for candidates returning dicts of figures)."""
    return {name: {key: median([r[key] for r in rs]) for key in rs[0]} for name, rs in results.items() if rs}


def interleave(candidates: dict[str, Callable[[], Any]], repeats: int,
               before: Callable[[str], None] | None = None,
               counts: dict[str, int] | None = None) -> dict[str, list[Any]]:
    """Run every candidate once per round, ``repeats`` rounds, rotating the order each round.

    ``before(name)`` runs untimed ahead of each call (cleaning a scratch directory, for instance).
    ``counts`` gives slow candidates fewer calls (``min(count, repeats)``), spread evenly over the rounds.
    """
    names = list(candidates)
    counts = counts or {}
    results: dict[str, list[Any]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            c = min(counts.get(name, repeats), repeats)
            if (round_index + 1) * c // repeats == round_index * c // repeats:
                continue
            if before is not None:
                before(name)
            results[name].append(candidates[name]())
    return results


def warm_up(candidates: dict[str, Callable[[], Any]], before: Callable[[str], None] | None = None) -> None:
    """One untimed call of each (page cache, .pyc files)."""
    for name, candidate in candidates.items():
        if before is not None:
            before(name)
        candidate()


@dataclasses.dataclass
class Figure:
    """One line of the results table. Values are medians, in ``unit``; lower is better."""

    bench: str
    metric: str
    unit: str
    value: float  #: mlxcore
    floor: float | None = None
    floor_label: str = ""
    mlxp: float | None = None
    mlxp_floor: float | None = None  #: the same floor measured with MLXP's interpreter/venv
    goal: str = ""
    met: bool | None = None
    repeats: int = 0
    note: str = ""
    mlxp_label: str = "MLXP"  #: what the MLXP columns hold, when not MLXP itself

    @property
    def ratio(self) -> float | None:
        return self.value / self.floor if self.floor else None

    @property
    def mlxp_ratio(self) -> float | None:
        return self.mlxp / self.mlxp_floor if self.mlxp is not None and self.mlxp_floor else None

    @property
    def mlxp_over_mlxcore(self) -> float | None:
        return self.mlxp / self.value if self.mlxp is not None and self.value else None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_figures(figures: Sequence[Figure], file: Any = None) -> None:
    file = file or sys.stdout
    for f in figures:
        goal = f"  goal {f.goal}: {'MET' if f.met else 'MISSED'}" if f.goal and f.met is not None else ""
        print(f"[{f.bench}] {f.metric}: {fmt(f.value, f.unit)} (median of {f.repeats})", file=file)
        if f.floor is not None:
            print(f"    floor {f.floor_label}: {fmt(f.floor, f.unit)} -> ratio {fmt_ratio(f.ratio)}{goal}", file=file)
        elif goal:
            print(f"   {goal}", file=file)
        if f.mlxp is not None:
            own = f", its floor {fmt(f.mlxp_floor, f.unit)} -> {fmt_ratio(f.mlxp_ratio)}" if f.mlxp_floor else ""
            print(f"    {f.mlxp_label}: {fmt(f.mlxp, f.unit)}{own}; {f.mlxp_label}/mlxcore "
                  f"{fmt_ratio(f.mlxp_over_mlxcore)}", file=file)
        if f.note:
            print(f"    note: {f.note}", file=file)
    file.flush()


def save_figures(name: str, figures: Sequence[Figure], extra: dict[str, Any] | None = None) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    payload = {"header": machine_header(), "figures": [dataclasses.asdict(f) for f in figures], **(extra or {})}
    path.write_text(json.dumps(payload, indent=1))
    return path


def load_figures(name: str) -> tuple[dict[str, Any], list[Figure]]:
    """The header and figures ``save_figures(name, ...)`` wrote last."""
    data = json.loads((OUT / f"{name}.json").read_text())
    return data["header"], [Figure(**f) for f in data["figures"]]


def _command_output(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, cwd=REPO).stdout.strip()
    except OSError:
        return "?"


def machine_header() -> dict[str, Any]:
    """Date, machine, interpreter and library versions, as recorded next to the figures."""
    mem = next((line for line in _command_output(["free", "-h"]).splitlines() if line.startswith("Mem:")), "?")
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": _command_output(["nproc"]),
        "memory": mem.split()[1] if mem != "?" else "?",
        "cpu": _cpu_model(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": PY,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "mlxcore_commit": _command_output(["git", "rev-parse", "--short", "HEAD"]) or "?",
        "packages": package_versions(),
        "bytecode": BYTECODE_NOTE,
    }
    return info


def package_versions() -> dict[str, str]:
    """mlxcore and each of its declared dependencies, as installed in this interpreter."""
    import re
    from importlib import metadata

    out = {"mlxcore": metadata.version("mlxcore")}
    for requirement in metadata.requires("mlxcore") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def print_header(title: str) -> None:
    h = machine_header()
    print(f"== {title} == {h['date']} | nproc {h['nproc']} | RAM {h['memory']} | {h['cpu']} | Python {h['python']} "
          f"| load {h['loadavg']} | mlxcore {h['mlxcore_commit']}", flush=True)


def bench_main(name: str, title: str, run: Callable[..., list[Figure]], default_repeats: int,
               argv: Sequence[str] | None = None, options: Sequence[tuple[str, dict[str, Any]]] = ()) -> list[Figure]:
    """The command line every ``bench_*.py`` shares: ``--repeats N``, ``--no-mlxp``, plus its own ``options``
    (``(flag, argparse keywords)``; each is passed to ``run`` by its dest)."""
    import argparse

    from benchmarks import mlxp_env

    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--repeats", type=int, default=default_repeats, help=f"rounds (default {default_repeats})")
    parser.add_argument("--no-mlxp", action="store_true", help="leave MLXP out (no venv created, no MLXP columns)")
    for flag, keywords in options:
        parser.add_argument(flag, **keywords)
    args = vars(parser.parse_args(argv))
    repeats, no_mlxp = args.pop("repeats"), args.pop("no_mlxp")
    with_mlxp = not no_mlxp and mlxp_env.ensure()
    print_header(title + (f" + MLXP {mlxp_env.version()}" if with_mlxp else ""))
    figures = run(repeats=repeats, with_mlxp=with_mlxp, **args)
    print_figures(figures)
    print(f"saved {save_figures(name, figures).relative_to(REPO)}")
    return figures
