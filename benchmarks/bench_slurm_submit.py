"""Submission of a 1,000-point sweep to the real local SLURM: one array job against one ``sbatch`` per point.

``python main.py seed=range(0,1000) +mlx.use_scheduler=true`` with the ``slurm`` scheduler, timed from spawn to
exit (interpreter start, composition of 1,000 points, 1,000 run directories with their metadata, the job script,
the argument file, ``sbatch``), once as one array job (the default) and once with ``array=false`` (1,000 job
scripts, 1,000 ``sbatch`` calls). Floors, measured in the same session and interleaved with them: one bare
``sbatch --array=0-999 --wrap true``, and a shell loop of 1,000 bare ``sbatch --wrap true``.

Also timed, after each submission: ``mlxcore status`` of the 1,000 runs (every info file read, ONE ``squeue``),
against a bare ``squeue`` of the same jobs.

Every job is submitted held (``--hold``), so nothing runs on this 2-core machine, and carries the job name
``mlxbench-<pid>``, by which it is cancelled (untimed) after each call and at the end, whatever happens. Needs a
running SLURM (``scripts/clusters/slurm-up.sh``). MLXP is not compared: its SLURM path is one ``sbatch`` per point
after executing the whole script (~158 ms a job, mlxp-facts.md), which the per-point floor already bounds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PY, Figure, Unavailable, bench_main, interleave, median, scratch

DEFAULT_REPEATS = 3
POINTS = 1000
SECTION = "## SLURM submission"
JOB_NAME = f"mlxbench-{os.getpid()}"

TASK = """import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    pass


if __name__ == "__main__":
    main()
"""


def cancel_ours() -> None:
    """Cancel every job this benchmark submitted (one call, by job name), and wait until none is pending."""
    subprocess.run(["scancel", f"--name={JOB_NAME}"], capture_output=True, timeout=120)
    deadline = time.time() + 60
    while time.time() < deadline:
        left = subprocess.run(["squeue", "-h", f"--name={JOB_NAME}", "-t", "PENDING,RUNNING"],
                              capture_output=True, text=True, timeout=60).stdout
        if not left.strip():
            return
        time.sleep(0.2)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def queued() -> int:
    """How many of our jobs (array tasks counted one by one) SLURM holds."""
    out = subprocess.run(["squeue", "-h", "-r", f"--name={JOB_NAME}", "-t", "PENDING", "-o", "%i"],
                         capture_output=True, text=True, timeout=60).stdout
    return len(out.split())


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    """The figures (``with_mlxp`` is accepted and ignored: see the module doc)."""
    from mlx_slurm.scheduler import cluster_answers

    if not cluster_answers():
        raise Unavailable("no SLURM answers here: start one with scripts/clusters/slurm-up.sh (as root)")
    base = scratch("slurm_submit")
    project, floor = base / "project", base / "floor"
    (project / "configs").mkdir(parents=True)
    floor.mkdir()
    (project / "main.py").write_text(TASK)
    (project / "configs" / "config.yaml").write_text("seed: 0\n")
    (project / "configs" / "mlx.yaml").write_text(
        f"scheduler:\n  name: slurm\n  options: ['--hold', '--job-name={JOB_NAME}']\n")
    logs = project / "logs"
    sweep = [PY, "main.py", f"seed=range(0,{POINTS})", "+mlx.use_scheduler=true"]
    bare = ["sbatch", "--parsable", "--hold", f"--job-name={JOB_NAME}", "-o", "/dev/null", "--wrap", "true"]
    loop = " ".join(bare[:-1]) + " true"
    status = [PY, "-m", "mlxcore", "status", str(logs), "--json"]
    squeue = ["squeue", "-h", "-r", "-t", "all", f"--name={JOB_NAME}", "-o", "%i %T %r"]

    def submit(argv: list[str], cwd: Path, then_status: bool = False) -> dict[str, float]:
        figures = {"submit": timed(argv, cwd)}
        if queued() != POINTS:
            raise RuntimeError(f"{argv}: {queued()} jobs queued, expected {POINTS}")
        if then_status:
            figures["status"] = timed(status, project)
            figures["squeue"] = timed(squeue, project)
        return figures

    candidates = {
        "array": lambda: submit(sweep, project, then_status=True),
        "floor array": lambda: submit([*bare[:-2], f"--array=0-{POINTS - 1}", "--wrap", "true"], floor),
        "single": lambda: submit([*sweep, "+mlx.scheduler.array=false"], project, then_status=True),
        "floor single": lambda: submit(["bash", "-c", f"for i in $(seq {POINTS}); do {loop} >/dev/null || exit 1; done"],
                                       floor),
    }

    trash = base / "trash"
    trash.mkdir()
    moved = iter(range(10**6))

    def before(name: str) -> None:
        """Cancel, and move the runs of the last call aside: removing them now would slow the next call's file
        creations (on this machine's ext4 without a journal, the inodes freed in the last minute make every
        allocation scan them; see bench_slurm_10k.py). They are removed at the end."""
        cancel_ours()
        if logs.exists():
            logs.rename(trash / str(next(moved)))

    try:
        before("")
        candidates["array"]()  # warm-up: page cache, .pyc files
        results = interleave(candidates, repeats, before)
    finally:
        before("")
        shutil.rmtree(trash, ignore_errors=True)
    med = {name: {key: median([r[key] for r in values]) for key in values[0]} for name, values in results.items()}
    array, single = med["array"], med["single"]
    return [
        Figure("slurm_submit", f"{POINTS:,}-point sweep submitted as one SLURM array job", "s", array["submit"],
               med["floor array"]["submit"], "one bare sbatch --array", goal="<= 5 s", met=array["submit"] <= 5,
               repeats=repeats,
               note=f"{array['submit'] * 1000 / POINTS:.1f} ms per point, all included (interpreter start, composition, "
                    f"{POINTS:,} run directories); one sbatch per point takes {single['submit'] / array['submit']:.1f}x as "
                    f"long, and {POINTS:,} bare sbatch calls {med['floor single']['submit'] / array['submit']:.1f}x"),
        Figure("slurm_submit", f"{POINTS:,}-point sweep submitted as {POINTS:,} SLURM jobs (array=false)", "s",
               single["submit"], med["floor single"]["submit"], f"{POINTS:,} bare sbatch calls", repeats=repeats,
               note=f"{single['submit'] * 1000 / POINTS:.1f} ms per point"),
        Figure("slurm_submit", f"mlxcore status of {POINTS:,} runs in one array", "s", array["status"],
               array["squeue"], "bare squeue of the same jobs", repeats=repeats,
               note="reads every run's info and scheduler record; one squeue call"),
        Figure("slurm_submit", f"mlxcore status of {POINTS:,} runs, one job each", "s", single["status"],
               single["squeue"], "bare squeue of the same jobs", repeats=repeats,
               note="one squeue call with 1,000 job ids"),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("slurm_submit", f"{POINTS:,}-point sweep submitted to SLURM", run, DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
