"""A 10,000-point sweep submitted to the real local SLURM, and ``mlxcore status`` over its 10,000 runs (issue 16).

``python main.py seed=range(0,10000) +mlx.use_scheduler=true`` with the ``slurm`` scheduler, timed from spawn to
exit, against the floor of the same number of bare ``sbatch --array`` calls (10,000 points need
ceil(10,000 / MaxArraySize) arrays: 10 at SLURM's default 1001), measured in the same session and interleaved
with it. Then ``mlxcore status LOGS --json`` over those runs, against a bare ``squeue`` of the same jobs.

The SLURM commands the two mlxcore processes run are counted: a directory of wrappers (``sbatch``, ``squeue``,
``sacct``, ...) put first on their PATH appends the command's name to a file, then ``exec``\\ s the real one.
Goals: the sweep in at most 10 ``sbatch`` calls and 10 s; the status in at most 2 s with exactly one ``squeue``
and at most one ``sacct``.

A third candidate is the file-system floor: a plain Python loop (interpreter start included) that makes the
same directories and files mlxcore's runs hold (per run a staging directory, ``metadata/`` and five small files
renamed into place, an array task's link, and the two files the submission record adds afterwards) with no
YAML, no composition and no SLURM. On this machine's ext4 (no journal) creating an inode costs from 15 us to
over 0.5 ms depending on how many inodes were freed in the last minutes (the kernel's ``recently_deleted``
scan), so that floor says how much of the 10 s the disk alone takes in the same minute.

With ``MLXBENCH_BASELINE=DIR`` (a directory holding another ``mlxcore`` package, e.g. ``git archive HEAD mlxcore
| tar -x -C DIR``), the same sweep is also timed with that mlxcore first on ``PYTHONPATH`` (the plugins stay the
installed ones), interleaved with the others: a before/after comparison in the same minutes.

Every job is submitted held (``--hold``) with the job name ``mlxbench10k-<pid>`` and cancelled by that name
(untimed) after each call and at the end. Each repeat writes into a new logs directory and all are removed at
the end only: removing 10,000 runs just before the next repeat would slow its inode allocations (see above).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PY, Figure, Unavailable, bench_main, interleave, median, scratch

DEFAULT_REPEATS = 3
POINTS = 10_000
SECTION = "## SLURM submission"
JOB_NAME = f"mlxbench10k-{os.getpid()}"
#: another mlxcore to compare with (see the module doc)
BASELINE = os.environ.get("MLXBENCH_BASELINE")
COUNTED = ("sbatch", "squeue", "sacct", "scontrol", "sacctmgr", "scancel")

TASK = """import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    pass


if __name__ == "__main__":
    main()
"""

CONFIG = "seed: 0\nnum_epoch: 10\noptimizer:\n  name: sgd\n  lr: 0.01\nmodel:\n  depth: 4\n  width: 128\n"

FS_FLOOR = r"""
import os, sys
logs, points = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{logs}/.mlxcore/staging"); os.makedirs(f"{logs}/.mlxcore/submissions/tasks")
def new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666); os.write(fd, data); os.close(fd)
for i in range(1, points + 1):
    staging = f"{logs}/.mlxcore/staging/{i}"
    os.mkdir(staging); os.mkdir(f"{staging}/metadata")
    for name in ("config.yaml", "mlx.yaml", "info.yaml", ".cache.json"):
        new(f"{staging}/metadata/{name}", b"x" * 600)
    os.rename(staging, f"{logs}/{i}")
for i in range(1, points + 1):
    os.symlink(f"{logs}/{i}", f"{logs}/.mlxcore/submissions/tasks/{i}")
for i in range(1, points + 1):
    for name in ("scheduler.yaml", ".cache.scheduler.json"):
        new(f"{logs}/{i}/metadata/.{name}.tmp", b"x" * 300)
        os.rename(f"{logs}/{i}/metadata/.{name}.tmp", f"{logs}/{i}/metadata/{name}")
"""


def run_checked(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800,
                          env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def cancel_ours() -> None:
    """Cancel every job this benchmark submitted (by job name), and wait until none is left pending."""
    subprocess.run(["scancel", f"--name={JOB_NAME}"], capture_output=True, timeout=120)
    deadline = time.time() + 120
    while time.time() < deadline:
        left = subprocess.run(["squeue", "-h", f"--name={JOB_NAME}", "-t", "PENDING,RUNNING"],
                              capture_output=True, text=True, timeout=60).stdout
        if not left.strip():
            return
        time.sleep(0.5)


def queued() -> int:
    out = subprocess.run(["squeue", "-h", "-r", f"--name={JOB_NAME}", "-t", "PENDING", "-o", "%i"],
                         capture_output=True, text=True, timeout=120).stdout
    return len(out.split())


def max_array_size() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(found.group(1)) if found else 1001


def counting_wrappers(directory: Path, calls: Path) -> None:
    """``directory/<command>`` for each SLURM command: append its name to ``calls``, then exec the real one."""
    directory.mkdir(parents=True)
    for name in COUNTED:
        real = shutil.which(name)
        if real is None:
            continue
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\necho {name} >> "{calls}"\nexec {real} "$@"\n')
        wrapper.chmod(0o755)


def counted(calls: Path) -> dict[str, int]:
    names = calls.read_text().split() if calls.exists() else []
    return {name: names.count(name) for name in COUNTED}


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    """The figures (``with_mlxp`` is accepted and ignored: MLXP submits one job per point, see bench_slurm_submit)."""
    from mlx_slurm.scheduler import cluster_answers

    if not cluster_answers():
        raise Unavailable("no SLURM answers here: start one with scripts/clusters/slurm-up.sh (as root)")
    base = scratch("slurm_10k")
    project, runs, floor = base / "project", base / "runs", base / "floor"
    (project / "configs").mkdir(parents=True)
    runs.mkdir()
    floor.mkdir()
    (project / "main.py").write_text(TASK)
    (project / "configs" / "config.yaml").write_text(CONFIG)
    (project / "configs" / "mlx.yaml").write_text(
        f"scheduler:\n  name: slurm\n  options: ['--hold', '--job-name={JOB_NAME}']\n")
    calls = base / "calls"
    counting_wrappers(base / "bin", calls)
    env = {**os.environ, "PATH": f"{base / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    arrays = math.ceil(POINTS / max_array_size())
    per_array = math.ceil(POINTS / arrays)
    bare = ["sbatch", "--parsable", "--hold", f"--job-name={JOB_NAME}", "-o", "/dev/null"]
    bare_loop = " ".join(bare) + f" --array=0-{per_array - 1} --wrap true >/dev/null || exit 1"
    squeue = ["squeue", "-h", "-r", "-t", "all", f"--name={JOB_NAME}", "-o", "%i %T %r"]
    sacct = ["sacct", "-n", "-P", f"--name={JOB_NAME}", "-S", "now-1hours", "-o", "JobID,State,ExitCode,AllocTRES"]
    serial = iter(range(10**6))

    def sweep() -> dict[str, float]:
        logs = runs / f"logs-{next(serial)}"
        calls.unlink(missing_ok=True)
        figures = {"submit": run_checked([PY, "main.py", f"seed=range(0,{POINTS})", "+mlx.use_scheduler=true",
                                          f"+mlx.logger.parent_log_dir={logs}"], project, env)}
        figures["sbatch"] = counted(calls)["sbatch"]
        if queued() != POINTS:
            raise RuntimeError(f"{queued()} jobs queued, expected {POINTS}")
        calls.unlink(missing_ok=True)
        figures["status"] = run_checked([PY, "-m", "mlxcore", "status", str(logs), "--json"], project, env)
        asked = counted(calls)
        figures["squeue"], figures["sacct"] = asked["squeue"], asked["sacct"]
        figures["bare squeue"] = run_checked(squeue, project)
        # the same runs once their jobs ended (cancelled: the same word for every job, in seconds, with nothing
        # run on this 2-core machine): squeue still knows them (MinJobAge), and sacct is asked about them all
        cancel_ours()
        calls.unlink(missing_ok=True)
        figures["status ended"] = run_checked([PY, "-m", "mlxcore", "status", str(logs), "--json"], project, env)
        asked = counted(calls)
        figures["squeue ended"], figures["sacct ended"] = asked["squeue"], asked["sacct"]
        figures["bare squeue and sacct"] = run_checked(
            ["bash", "-c", f"{shlex.join(squeue)} >/dev/null && {shlex.join(sacct)} >/dev/null"], project)
        return figures

    def baseline() -> dict[str, float]:
        logs = runs / f"logs-{next(serial)}"
        calls.unlink(missing_ok=True)
        figures = {"submit": run_checked([PY, "main.py", f"seed=range(0,{POINTS})", "+mlx.use_scheduler=true",
                                          f"+mlx.logger.parent_log_dir={logs}"], project,
                                         {**env, "PYTHONPATH": str(BASELINE)})}
        figures["sbatch"] = counted(calls)["sbatch"]
        if queued() != POINTS:
            raise RuntimeError(f"baseline: {queued()} jobs queued, expected {POINTS}")
        return figures

    def fs_floor() -> dict[str, float]:
        return {"submit": run_checked([PY, "-c", FS_FLOOR, str(floor / f"logs-{next(serial)}"), str(POINTS)],
                                      floor)}

    candidates = {
        "sweep": sweep,
        "floor": lambda: {"submit": run_checked(["bash", "-c", f"for i in $(seq {arrays}); do {bare_loop}; done"],
                                                floor)},
        "fs floor": fs_floor,
        **({"baseline": baseline} if BASELINE else {}),
    }
    try:
        cancel_ours()  # then a warm-up of 1,000 points, untimed: .pyc files, page cache
        run_checked([PY, "main.py", "seed=range(0,1000)", "+mlx.use_scheduler=true",
                     f"+mlx.logger.parent_log_dir={runs / 'warm-up'}"], project, env)
        cancel_ours()
        results = interleave(candidates, repeats, lambda name: cancel_ours())
    finally:
        cancel_ours()
        shutil.rmtree(runs, ignore_errors=True)
        shutil.rmtree(floor, ignore_errors=True)
    med = {name: {key: median([r[key] for r in values]) for key in values[0]} for name, values in results.items()}
    got, bare_floor, fs = med["sweep"], med["floor"]["submit"], med["fs floor"]["submit"]
    sbatch_calls = max(r["sbatch"] for r in results["sweep"])
    squeue_calls = {r["squeue"] for r in results["sweep"]}
    sacct_calls = max(r["sacct"] for r in results["sweep"])
    spread = ", ".join(f"{r['submit']:.2f}" for r in results["sweep"])
    submit_met = got["submit"] <= 10 and sbatch_calls <= 10
    status_met = got["status"] <= 2 and squeue_calls == {1} and sacct_calls <= 1
    ended_calls = {(r["squeue ended"], r["sacct ended"]) for r in results["sweep"]}
    ended_met = got["status ended"] <= 2 and ended_calls == {(1, 1)}
    before = [] if not BASELINE else [
        Figure("slurm_10k", f"{POINTS:,}-point sweep: this mlxcore vs the baseline", "s", got["submit"],
               med["baseline"]["submit"], f"baseline mlxcore ({Path(BASELINE).name})", repeats=repeats,
               note=f"baseline: {med['baseline']['submit'] * 1000 / POINTS:.2f} ms per point, "
                    f"{max(r['sbatch'] for r in results['baseline'])} sbatch call(s)"),
    ]
    return [
        Figure("slurm_10k", f"{POINTS:,}-point sweep submitted as SLURM arrays", "s", got["submit"], bare_floor,
               f"{arrays} bare sbatch --array calls", goal="<= 10 s and <= 10 sbatch calls", met=submit_met,
               repeats=repeats,
               note=f"{got['submit'] * 1000 / POINTS:.2f} ms per point, all included (each call: {spread} s); "
                    f"{sbatch_calls} sbatch call(s) "
                    f"({arrays} arrays, MaxArraySize {max_array_size()}); the file-system floor (the same "
                    f"directories and files by a plain loop) took {fs:.2f} s in the same rounds: mlxcore "
                    f"{got['submit'] / fs:.2f}x that"),
        Figure("slurm_10k", f"{POINTS:,}-point sweep vs the file-system floor", "s", got["submit"], fs,
               "plain loop making the same directories and files", repeats=repeats,
               note="the floor: python -c of a loop of mkdir, os.open and rename, interpreter start included"),
        Figure("slurm_10k", f"mlxcore status of {POINTS:,} runs", "s", got["status"], got["bare squeue"],
               "bare squeue of the same jobs", goal="<= 2 s, one squeue, at most one sacct", met=status_met,
               repeats=repeats,
               note=f"squeue calls per status: {sorted(squeue_calls)}, sacct calls: at most {sacct_calls} (sacct is "
                    "asked only about jobs that ended or left the queue: these are all held)"),
        Figure("slurm_10k", f"mlxcore status of {POINTS:,} runs whose jobs ended", "s", got["status ended"],
               got["bare squeue and sacct"], "bare squeue and sacct of the same jobs",
               goal="<= 2 s, one squeue, one sacct", met=ended_met, repeats=repeats,
               note=f"(squeue, sacct) calls per status: {sorted(ended_calls)}; the jobs were cancelled while held, "
                    "so every one is final and sacct is asked about all of them in one call"),
        *before,
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("slurm_10k", f"{POINTS:,}-point sweep submitted to SLURM", run, DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
