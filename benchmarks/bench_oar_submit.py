"""Submission time of a 100-point sweep to the real local OAR: one array job, and one job per point.

``python main.py seed=range(0,100) +mlx.use_scheduler=true`` with the ``oar`` scheduler, timed from spawn to
exit (interpreter start, composition, 100 run directories, the scripts and the oarsub calls), once as one array
job (``--array-param-file``, the default) and once with ``array=false`` (100 ``oarsub`` calls). Each has its own
floor, measured in the same session and interleaved with it: the same number of bare ``oarsub`` calls on a
trivial script (one ``oarsub --array-param-file`` with 100 lines; a shell loop of 100 ``oarsub``). Every job
is submitted held (``--hold``), so nothing runs, and deleted (``oardel``, untimed) after each call.

Needs a running OAR (``scripts/clusters/oar-up.sh``). OAR refuses root's jobs: as root, everything is submitted
as the job user ``mlxoar`` with a Python it can run: ``$MLXCORE_OAR_PYTHON``, else the venv the OAR tests made
under ``/srv/mlxoar`` (run ``pytest plugins/mlx_oar/tests`` once). MLXP is not compared: its OAR scheduler
is one ``oarsub`` per point, which the "one job per point" floor already bounds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Figure, Unavailable, bench_main, copy_app, interleave, median, scratch

DEFAULT_REPEATS = 5
SINGLE_REPEATS = 3  #: the one-job-per-point candidates take ~100 oarsub calls each
POINTS = 100
JOB_USER = "mlxoar"
WORK_DIR = Path("/srv/mlxoar")

FLOOR_SCRIPT = "#!/bin/bash\n#OAR -n bench-floor\n#OAR -O bench.%jobid%.stdout\n#OAR -E bench.%jobid%.stderr\ntrue\n"


def oar_up() -> bool:
    if shutil.which("oarsub") is None:
        return False
    try:
        pid = int(Path("/var/run/oar-server.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def job_python() -> str:
    """A Python with mlxcore and mlx_oar that the submitting user can run."""
    if os.geteuid() != 0:
        return sys.executable
    given = os.environ.get("MLXCORE_OAR_PYTHON")
    if given:
        return given
    ready = sorted(WORK_DIR.glob(".venv-*/.ready"), key=lambda p: p.stat().st_mtime)
    if not ready:
        raise Unavailable(f"no Python for the job user {JOB_USER}: run the OAR tests once "
                          "(pytest plugins/mlx_oar/tests makes it) or set MLXCORE_OAR_PYTHON")
    return str(ready[-1].parent / "bin" / "python")


def submitted_ids(stdout: str) -> list[str]:
    return re.findall(r"^OAR_JOB_ID=(\d+)$", stdout, re.MULTILINE)


def delete(ids: list[str]) -> None:
    """oardel the held jobs (untimed), 200 ids a call."""
    for start in range(0, len(ids), 200):
        subprocess.run(["oardel", *ids[start:start + 200]], capture_output=True, timeout=300)


def run(repeats: int = DEFAULT_REPEATS, single_repeats: int = SINGLE_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    """The figures (``with_mlxp`` is accepted and ignored: see the module doc)."""
    if not oar_up():
        raise Unavailable("no OAR server running here: start one with scripts/clusters/oar-up.sh (as root)")
    python = job_python()
    root = os.geteuid() == 0
    prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", JOB_USER, "--"] if root else []
    base = (WORK_DIR / "bench-oar-submit") if root else scratch("oar_submit")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    project, floor = copy_app("mlxcore_noop", base), base / "floor"
    floor.mkdir()
    (project / "configs" / "mlx.yaml").write_text("scheduler:\n  name: oar\n  options: ['--hold']\n")
    (floor / "job.sh").write_text(FLOOR_SCRIPT)
    (floor / "job.sh").chmod(0o755)
    (floor / "params").write_text("".join(f"seed={i}\n" for i in range(POINTS)))
    if root:
        for path in [base, *base.rglob("*")]:
            shutil.chown(path, JOB_USER, JOB_USER)

    to_delete: list[str] = []

    def timed(argv: list[str], cwd: Path) -> float:
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PWD": str(cwd)})
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        ids = submitted_ids(proc.stdout) if cwd == floor else [
            str(yaml.safe_load(p.read_text())["job_id"]) for p in (project / "logs").glob("[0-9]*/metadata/scheduler.yaml")]
        if len(ids) != POINTS:
            raise RuntimeError(f"{argv} submitted {len(ids)} jobs, expected {POINTS}")
        to_delete.extend(ids)
        return elapsed

    sweep = [*prefix, python, "main.py", f"seed=range(0,{POINTS})", "+mlx.use_scheduler=true"]
    loop = f"for i in $(seq {POINTS}); do oarsub --hold -S ./job.sh || exit 1; done"
    candidates = {
        "array": lambda: timed(sweep, project),
        "floor array": lambda: timed([*prefix, "oarsub", "--hold", "-S", "./job.sh", "--array-param-file", "./params"], floor),
        "single": lambda: timed([*sweep, "+mlx.scheduler.array=false"], project),
        "floor single": lambda: timed([*prefix, "bash", "-c", loop], floor),
    }

    def before(name: str) -> None:
        delete(to_delete)
        to_delete.clear()
        shutil.rmtree(project / "logs", ignore_errors=True)

    try:
        before("")
        candidates["array"]()  # warm-up: page cache, .pyc files
        results = interleave(candidates, repeats, before,
                             counts={"single": single_repeats, "floor single": single_repeats})
    finally:
        before("")
    med = {name: median(values) for name, values in results.items()}
    n_single = len(results["single"])
    return [
        Figure("oar_submit", f"{POINTS}-point sweep submitted as one OAR array job", "s", med["array"],
               med["floor array"], "one bare oarsub --array-param-file", repeats=repeats,
               note=f"per point {med['array'] * 1000 / POINTS:.1f} ms; includes the interpreter start, composition "
                    f"and {POINTS} run directories; one job per point takes {med['single'] / med['array']:.1f}x longer"),
        Figure("oar_submit", f"{POINTS}-point sweep submitted as {POINTS} OAR jobs (array=false)", "s",
               med["single"], med["floor single"], f"{POINTS} bare oarsub calls", repeats=n_single,
               note=f"per point {med['single'] * 1000 / POINTS:.0f} ms (median of {n_single})"),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("oar_submit", f"{POINTS}-point sweep submitted to OAR", run, DEFAULT_REPEATS, argv, options=[
        ("--single-repeats", {"type": int, "default": SINGLE_REPEATS,
                              "help": f"calls of the one-job-per-point candidates (default {SINGLE_REPEATS})"}),
    ])


if __name__ == "__main__":
    main()
