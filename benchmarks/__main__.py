"""Run the benchmarks: ``python -m benchmarks [NAME ...] [--no-mlxp] [--quick] [--list] [--write-results]``.

Every ``benchmarks/bench_<name>.py`` is a benchmark, found by that pattern, so suites written by others plug in
without an edit here; ``NAME`` selects some (``python -m benchmarks import sweep``; ``core``: the core suite),
none means all. A module plugs in by defining ``run(repeats=..., with_mlxp=...) -> list[Figure]`` (keywords
it does not accept are not passed), ``DEFAULT_REPEATS`` and optionally ``SECTION`` (its ``## ...`` heading in
RESULTS.md); ``run`` may raise ``common.Unavailable`` to be reported as skipped. A module with only a ``main()``
is run as a subprocess.

Each benchmark prints its figures as it finishes, then one table comes at the end; ``benchmarks/out/`` keeps
the JSON of each and ``summary.md``. ``--write-results`` rewrites, in RESULTS.md, the sections of the benchmarks
run (see results.py). Exit code 1 when a benchmark crashed; a missed goal is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shlex
import subprocess
import sys
import time
import traceback
from types import ModuleType

from benchmarks import mlxp_env, results
from benchmarks.common import (
    OUT, PY, REPO, ROOT, Figure, Unavailable, load_figures, machine_header, print_figures, print_header, save_figures,
)

#: the core suite, in the order it runs (cheap and independent first); other bench_*.py follow by name
CORE = ("import", "launch", "sweep", "pool", "log_metrics", "ids")
CORE_SECTION = "## Core"
#: RESULTS.md headings of the suites others write (a module's own SECTION wins)
SECTIONS = {"reader": "## Reader", "slurm_submit": "## SLURM submission", "oar_submit": "## OAR submission"}


def discover() -> list[str]:
    """Names of ``benchmarks/bench_*.py``: the core ones in CORE order, then the others alphabetically."""
    names = sorted(p.stem[len("bench_"):] for p in ROOT.glob("bench_*.py"))
    return [n for n in CORE if n in names] + [n for n in names if n not in CORE]


def section_of(name: str, module: ModuleType | None) -> str:
    if module is not None and isinstance(getattr(module, "SECTION", None), str):
        return module.SECTION
    return CORE_SECTION if name in CORE else SECTIONS.get(name, f"## {name}")


def run_one(name: str, module: ModuleType, quick: bool, with_mlxp: bool, started: float) -> list[Figure]:
    """Run one benchmark module; its figures (raises Unavailable, or whatever it raised)."""
    if not hasattr(module, "run"):  # a main()-only script: run it as its own process, read what it saved
        subprocess.run([PY, "-m", f"benchmarks.bench_{name}"], cwd=REPO, check=True)
        saved = OUT / f"{name}.json"
        return load_figures(name)[1] if saved.exists() and saved.stat().st_mtime >= started else []
    repeats = getattr(module, "DEFAULT_REPEATS", 5)
    offered = {"repeats": max(3, repeats // 3) if quick else repeats, "with_mlxp": with_mlxp}
    params = inspect.signature(module.run).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    got = module.run(**{k: v for k, v in offered.items() if takes_all or k in params})
    figures = [f if isinstance(f, Figure) else Figure(**f) for f in (got or [])]
    print_figures(figures)
    save_figures(name, figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="mlxcore's benchmarks")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, or core ({' '.join(CORE)}); default all: {' '.join(available)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks found and exit")
    parser.add_argument("--no-mlxp", action="store_true", help="leave MLXP out (no venv created, no MLXP columns)")
    parser.add_argument("--quick", action="store_true", help="a third of the repeats (a smoke run; noisier)")
    parser.add_argument("--write-results", action="store_true", help="rewrite their sections of benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(f"{n:14s} benchmarks/bench_{n}.py" for n in available))
        return 0
    names = [n.removeprefix("bench_").removesuffix(".py") for n in args.names] or available
    core = [c for c in CORE if c in available]
    names = list(dict.fromkeys(m for n in names for m in (core if n == "core" else [n])))
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; found: {', '.join(available)}")

    with_mlxp = not args.no_mlxp and mlxp_env.ensure()
    header = machine_header()
    print_header("mlxcore benchmarks" + (f" + MLXP {mlxp_env.version()}" if with_mlxp else "") + f": {' '.join(names)}")
    started_wall, started = time.time(), time.perf_counter()
    fresh: dict[str, list[Figure]] = {}
    modules: dict[str, ModuleType | None] = {}
    outcome: dict[str, str] = {}
    for name in names:
        t0 = time.perf_counter()
        print(f"\n-- {name} (benchmarks/bench_{name}.py)", flush=True)
        try:
            modules[name] = module = importlib.import_module(f"benchmarks.bench_{name}")
            fresh[name] = run_one(name, module, args.quick, with_mlxp, started_wall)
            outcome[name] = f"ok, {time.perf_counter() - t0:.0f} s"
        except Unavailable as exc:
            outcome[name] = f"skipped: {exc}"
        except Exception:  # one crashing benchmark must not cost the others' figures
            traceback.print_exc()
            modules.setdefault(name, None)
            outcome[name] = "FAILED (traceback above)"
        print(f"   ({name}: {outcome[name]})", flush=True)
    elapsed = time.perf_counter() - started

    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    mlxp = mlxp_env.package_versions() if with_mlxp else None
    by_section: dict[str, list[str]] = {}
    for name in available:  # every benchmark of a touched section, so that a partial run keeps the others' rows
        module = modules.get(name)
        by_section.setdefault(section_of(name, module), []).append(name)
    touched = list(dict.fromkeys(section_of(n, modules.get(n)) for n in fresh))
    rows = {title: results.section_rows(by_section[title], fresh) for title in touched}
    texts = {title: results.section_text(title, rows[title], header, command, elapsed, mlxp) for title in touched}
    for title in touched:
        goals = results.goals_line([f for f, _ in rows[title]])
        print(f"\n{title}\n\n{results.markdown_table(rows[title])}\n\n{goals}")
    print()
    print("\n".join(f"{n}: {o}" for n, o in outcome.items()))
    print(f"total {elapsed:.0f} s")
    save_figures("summary", [f for figs in fresh.values() for f in figs], {"elapsed_s": elapsed, "outcome": outcome})
    (OUT / "summary.md").write_text("\n".join(texts.values()))
    if args.write_results:
        for title, text in texts.items():
            results.write_section(title, text)
        print(f"rewrote {', '.join(texts) or 'no section'} in {results.RESULTS.relative_to(REPO)}")
    return 1 if any(o.startswith("FAILED") for o in outcome.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
