"""Packing (``mlx.scheduler.pack``): K points per job, run through a local pool inside the job.

The pack files are written by the real :func:`~mlxcore.schedulers.submission.submit_jobs`, through a scheduler
that holds its jobs (``held``: it runs nothing, and answers RUNNING for every job it was given), and the pack
runner runs as the job would run it: ``python -m mlxcore.schedulers.pack <pack file>``, in a real subprocess,
on real tasks. The SLURM plugin's tests run packs on a real cluster (``test_slurm_pack.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from mlxcore import hookimpl, store
from mlxcore.errors import ConfigError
from mlxcore.schedulers.base import JobEnvironment, JobSpec, JobStatus, Scheduler, Submission
from mlxcore.schedulers.local import LocalScheduler
from mlxcore.schedulers.pack import PACK_FILE, PACKS_DIR, size_workers
from mlxcore.schedulers.submission import cancel_runs, point_groups, submit_jobs
from mlxcore.store import RunStore, layout
from mlxcore.testing import wait_until

#: a task that logs what it was given, then: ``ok`` ends; ``fail`` raises; ``kill`` SIGKILLs itself; ``hold``
#: waits for a stop signal (it checkpoints; a resumed attempt finishes at once) or for ``go-<x>`` in its work
#: directory, whichever first
APP = '''
import os, time
import mlxcore

@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    state = ctx.logger.load_checkpoint("ckpt", default={"attempts": 0})
    state["attempts"] += 1
    ctx.logger.log_metrics({"x": cfg.x, "attempt": state["attempts"], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                            "cpus": os.environ.get("MLXCORE_CPUS"), "t0": time.time()}, log_name="start")
    print(f"ready {cfg.x}", flush=True)
    if cfg.mode == "fail":
        raise ValueError(f"failing on purpose at x={cfg.x}")
    if cfg.mode == "kill":  # as the out-of-memory killer would: no word recorded
        os.kill(os.getpid(), 9)
    if cfg.mode == "hold" and state["attempts"] == 1:
        deadline = time.time() + 60
        while not ctx.should_stop and not os.path.exists(f"go-{cfg.x}") and time.time() < deadline:
            time.sleep(0.02)
        if ctx.should_stop:
            if cfg.get("save", True):
                ctx.logger.log_checkpoint(state, log_name="ckpt")
            return
    time.sleep(cfg.sleep)
    ctx.logger.log_metrics({"t1": time.time()}, log_name="end")

if __name__ == "__main__":
    main()
'''


class HeldScheduler(Scheduler):
    """Takes jobs and runs none of them (the tests run each pack themselves); every job it took RUNS."""

    name = "held"
    max_array_size = None
    cancelled: ClassVar[list[list[str]]] = []

    def job_environment(self) -> JobEnvironment:
        return JobEnvironment(job_id_variable="HELD_JOB_ID", array_index_variable="HELD_INDEX")

    def submit(self, submission: Submission) -> list[str]:
        return [f"held-{job.log_id}" for job in submission.jobs]

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        return {job_id: JobStatus(job_id, store.RUNNING) for job_id in job_ids}

    def cancel(self, job_ids: list[str]) -> None:
        HeldScheduler.cancelled.append(list(job_ids))


class HeldPlugin:
    @hookimpl
    def register_schedulers(self, register):
        register(HeldScheduler)


@pytest.fixture
def held(fresh_plugins):
    fresh_plugins.set_plugin_manager(fresh_plugins.new_plugin_manager(extra=(("held", HeldPlugin()),)))
    HeldScheduler.cancelled.clear()
    return HeldScheduler


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "pack project"  # a space, on purpose
    (root / "configs").mkdir(parents=True)
    (root / "main.py").write_text(textwrap.dedent(APP))
    (root / "configs" / "config.yaml").write_text("x: 0\nmode: ok\nsleep: 0\n")
    return root


def submit(work: Path, points: list[str], pack: int = 3, **options) -> list[Path]:
    """SUBMITTED runs for ``points`` (each a list of overrides), packed ``pack`` at a time; their run dirs."""
    logs = work / "logs"
    runs = RunStore(logs)
    jobs = []
    for overrides in points:
        run, _ = runs.create(store.SUBMITTED, {"overrides": overrides.split()})
        command = [sys.executable, str(work / "main.py"), *overrides.split(), f"+mlx.logger.forced_log_id={run.log_id}"]
        jobs.append(JobSpec(run.log_id, run.root, command, work, name=f"t-{run.log_id}"))
    submit_jobs(HeldScheduler(pack=pack, **options), jobs, logs)
    return [job.run_dir for job in jobs]


def pack_files(work: Path) -> list[Path]:
    return sorted((work / "logs" / layout.STATE_DIR).glob(f"submissions/*/{PACKS_DIR}/*/{PACK_FILE}"),
                  key=lambda p: int(p.parent.name.split("-")[0]))


def start_pack(pack_file: Path, cpus: int = 2, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "MLXCORE_CPUS")}
    environ.update({"MLXCORE_CPUS": str(cpus), "MLXCORE_SCHEDULER": "held", "MLXCORE_JOB_ID": "held-1", **env})
    return subprocess.Popen([sys.executable, "-m", "mlxcore.schedulers.pack", str(pack_file)], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_pack(pack_file: Path, cpus: int = 2, **env: str) -> tuple[int, str]:
    proc = start_pack(pack_file, cpus, **env)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def info(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "metadata" / "info.yaml").read_text())


def rows(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / "metrics" / f"{name}.json"
    return [yaml.safe_load(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- options and grouping ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, "3", 2.5, True])
def test_a_bad_pack_is_refused_in_one_line(value):
    with pytest.raises(ConfigError, match=r"^mlx\.scheduler\.pack must be a positive integer, got") as caught:
        HeldScheduler(pack=value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"^mlx\.scheduler\.pack_cpus must be a positive integer"):
        HeldScheduler(pack=2, pack_cpus=value)


def test_the_local_pool_refuses_pack_and_accepts_the_default():
    with pytest.raises(ConfigError, match=r"^mlx\.scheduler\.pack shares a cluster job.*local scheduler runs each"):
        LocalScheduler(pack=4)
    assert LocalScheduler(pack=1).pack == 1 and HeldScheduler().pack == 1


def test_consecutive_points_are_packed_k_at_a_time_into_arrays_split_at_the_max_array_size(tmp_path):
    jobs = [JobSpec(i, tmp_path / str(i), ["true"], tmp_path, f"j{i}") for i in range(1, 11)]
    scheduler = HeldScheduler(pack=3)
    scheduler.max_array_size = 2  # two packs (6 points) per array
    assert [[j.log_id for j in group] for group in point_groups(jobs, scheduler)] == [
        [1, 2, 3, 4, 5, 6], [7, 8, 9, 10]]
    assert [len(g) for g in point_groups(jobs, HeldScheduler(pack=3, array=False))] == [3, 3, 3, 1]
    assert [len(g) for g in point_groups(jobs, HeldScheduler())] == [10]  # no packing: one array, as before
    assert [HeldScheduler(pack=k).jobs_for(10) for k in (1, 3, 10, 100)] == [10, 4, 1, 1]  # what the cluster counts


def test_each_point_records_its_pack_job_and_directory(work, held):
    run_dirs = submit(work, [f"x={x}" for x in range(1, 8)], pack=3)
    files = pack_files(work)
    assert [f.parent.name for f in files] == ["1-3", "4-6", "7-7"]  # 7 points: 3 jobs, one array
    for index, run_dir in enumerate(run_dirs):
        record = yaml.safe_load((run_dir / "metadata" / "scheduler.yaml").read_text())
        pack_dir = files[index // 3].parent
        assert record["pack"] == str(pack_dir) and record["job_id"] == f"held-{index // 3 * 3 + 1}"
        assert record["array"] is True and Path(record["script"]).parent == pack_dir.parent.parent
    script = Path(record["script"]).read_text()
    assert "-m mlxcore.schedulers.pack" in (pack_dir.parent.parent / "jobs.args").read_text()
    assert 'exec >>"$run_dir/log.stdout"' in script  # the job's own output goes to its pack directory


# -- the runner ----------------------------------------------------------------------------------------------------
def test_a_pack_runs_each_point_in_its_own_run_and_a_second_run_skips_the_ended_ones(work, held):
    run_dirs = submit(work, ["x=1", "x=2 mode=fail", "x=3", "x=4 mode=kill"], pack=4)
    code, err = run_pack(pack_files(work)[0])
    assert code == 0, err  # a failed point is the point's business: the pack itself went well
    assert [info(r)["status"] for r in run_dirs] == [store.COMPLETE, store.FAILED, store.COMPLETE, store.FAILED], err
    killed = info(run_dirs[3])
    assert killed["exit_code"] == 137
    assert "was killed by SIGKILL before it recorded an end" in killed["error"]["message"]
    for x, run_dir in enumerate(run_dirs, 1):
        assert f"ready {x}" in (run_dir / "log.stdout").read_text()  # each point writes into its own run
        assert info(run_dir)["scheduler"] == {"name": "held", "job_id": "held-1"}
    assert "failing on purpose at x=2" in (run_dirs[1] / "log.stderr").read_text()
    assert "4 point(s) to run" in err

    code, err = run_pack(pack_files(work)[0])  # a requeued pack: nothing is left to run
    assert code == 0 and "0 point(s) to run, 4 already ended" in err, err
    for run_dir in run_dirs:  # one attempt each (the killed one had no time to write its metrics)
        assert len(rows(run_dir, "start")) <= 1 and not info(run_dir).get("history")
        assert (run_dir / "log.stdout").read_text().count("ready") == 1


def test_workers_follow_the_allocation_s_cpus_and_split_its_gpus(work, held):
    assert size_workers(5, 1, {"MLXCORE_CPUS": "2"}) == (2, [], 1)
    assert size_workers(5, 2, {"MLXCORE_CPUS": "8"}) == (4, [], 1)
    assert size_workers(3, 1, {"MLXCORE_CPUS": "16"}) == (3, [], 1)  # never more than the points
    assert size_workers(3, 4, {"MLXCORE_CPUS": "2"}) == (1, [], 1)  # at least one
    assert size_workers(2, 1, {"MLXCORE_CPUS": "8", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}) == (2, ["0", "1", "2", "3"], 2)
    assert size_workers(4, 1, {"MLXCORE_CPUS": "8", "CUDA_VISIBLE_DEVICES": "3,5"}) == (2, ["3", "5"], 1)

    run_dirs = submit(work, ["x=1 sleep=1.5", "x=2 sleep=1.5"], pack=2)
    code, err = run_pack(pack_files(work)[0], cpus=4, CUDA_VISIBLE_DEVICES="3,5")
    assert code == 0, err
    starts = [rows(r, "start")[0] for r in run_dirs]
    assert sorted(s["cuda"] for s in starts) == ["3", "5"] and {s["cpus"] for s in starts} == {"2"}
    ends = [rows(r, "end")[0]["t1"] for r in run_dirs]
    assert max(s["t0"] for s in starts) < min(ends)  # two workers: the points ran at the same time

    run_dirs = submit(work, ["x=3 sleep=0.5", "x=4 sleep=0.5"], pack=2)
    code, err = run_pack(pack_files(work)[-1], cpus=1)
    assert code == 0 and "1 worker(s)" in err, err
    first, second = sorted((rows(r, "start")[0]["t0"], rows(r, "end")[0]["t1"]) for r in run_dirs)
    assert first[1] <= second[0]  # one CPU: one point after the other
    assert {rows(r, "start")[0]["cuda"] for r in run_dirs} == {None}


def test_a_stopped_pack_checkpoints_its_points_and_asks_for_a_requeue_of_the_unfinished_ones(work, held):
    run_dirs = submit(work, ["x=1 mode=hold", "x=2 mode=hold", "x=3"])
    pack_file = pack_files(work)[0]
    proc = start_pack(pack_file, cpus=2)
    for x in (1, 2):
        wait_until(lambda x=x: f"ready {x}" in (run_dirs[x - 1] / "log.stdout").read_text(errors="replace")
                   if (run_dirs[x - 1] / "log.stdout").exists() else False, timeout=60, what=f"point {x} to start")
    proc.send_signal(signal.SIGUSR1)  # the scheduler's "checkpoint now", as the job script forwards it
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == store.PREEMPTED_EXIT_CODE, err
    assert [info(r)["status"] for r in run_dirs] == [store.PREEMPTED, store.PREEMPTED, store.SUBMITTED]
    marker = pack_file.parent / layout.METADATA / layout.PREEMPTED_MARKER
    assert marker.read_text().strip() == layout.CHECKPOINTED  # what the job script requeues on

    code, err = run_pack(pack_file, cpus=2)  # the requeued job: only the unfinished points, each in its own run
    assert code == 0, err
    assert not marker.exists()
    assert [info(r)["status"] for r in run_dirs] == [store.COMPLETE] * 3, err
    for run_dir in run_dirs[:2]:
        assert [row["attempt"] for row in rows(run_dir, "start")] == [1, 2]  # resumed from its checkpoint
        assert [h["status"] for h in info(run_dir)["history"]] == [store.PREEMPTED]
    assert len(rows(run_dirs[2], "start")) == 1 and not info(run_dirs[2]).get("history")


def test_a_pack_stopped_before_it_advanced_says_so_in_its_marker(work, held):
    run_dirs = submit(work, ["x=1 mode=hold +save=false", "x=2"], pack=2)
    proc = start_pack(pack_files(work)[0], cpus=1)
    wait_until(lambda: (run_dirs[0] / "log.stdout").exists() and "ready 1" in (run_dirs[0] / "log.stdout").read_text(),
               timeout=60, what="point 1 to start")
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == store.PREEMPTED_EXIT_CODE, err
    assert [info(r)["status"] for r in run_dirs] == [store.PREEMPTED, store.SUBMITTED]
    # at a time limit the job script would not requeue this job: it would only reach the limit again
    marker = pack_files(work)[0].parent / layout.METADATA / layout.PREEMPTED_MARKER
    assert marker.read_text().strip() == "no checkpoint"


def test_an_interrupted_pack_leaves_its_points_to_run_again_and_exits_with_the_signal(work, held):
    run_dirs = submit(work, ["x=1 mode=hold", "x=2"], pack=2)
    proc = start_pack(pack_files(work)[0], cpus=1)
    wait_until(lambda: (run_dirs[0] / "log.stdout").exists() and "ready 1" in (run_dirs[0] / "log.stdout").read_text(),
               timeout=60, what="point 1 to start")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not (pack_files(work)[0].parent / layout.METADATA / layout.PREEMPTED_MARKER).exists()
    assert [info(r)["status"] for r in run_dirs] == [store.INTERRUPTED, store.SUBMITTED]


def test_cancelling_some_points_of_a_running_pack_stops_only_those_and_status_shows_who_waits(work, held):
    from mlxcore.schedulers.observe import observe

    run_dirs = submit(work, ["x=1 mode=hold", "x=2 mode=hold", "x=3"])
    proc = start_pack(pack_files(work)[0], cpus=1)
    wait_until(lambda: (run_dirs[0] / "log.stdout").exists() and "ready 1" in (run_dirs[0] / "log.stdout").read_text(),
               timeout=60, what="point 1 to start")
    states = {s.log_id: s for s in observe(work / "logs")}
    assert [states[i].status for i in (1, 2, 3)] == [store.RUNNING, store.PENDING, store.PENDING]
    assert "waiting for a worker of its pack" in states[2].detail

    assert cancel_runs(HeldScheduler(), [run_dirs[0], run_dirs[2]]) == ["held-1"]
    assert HeldScheduler.cancelled == []  # point 2 is left: the job goes on, its runner stops the marked points
    assert {s.log_id: s.status for s in observe(work / "logs")}[3] == store.CANCELLED
    wait_until(lambda: (run_dirs[1] / "log.stdout").exists(), timeout=60, what="point 2 to start")
    (work / "go-2").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [info(r)["status"] for r in run_dirs] == [store.CANCELLED, store.COMPLETE, store.CANCELLED], err
    assert not (run_dirs[2] / "log.stdout").exists() or "ready" not in (run_dirs[2] / "log.stdout").read_text()
    assert "never started" in info(run_dirs[2])["cancel_reason"]


def test_a_pack_whose_points_are_all_cancelled_is_cancelled_as_a_job(work, held):
    run_dirs = submit(work, ["x=1", "x=2", "x=3", "x=4"], pack=2)
    assert cancel_runs(HeldScheduler(), run_dirs[:3]) == ["held-1", "held-3"]
    assert HeldScheduler.cancelled == [["held-1"]]  # the second pack still has point 4 to run
    code, err = run_pack(pack_files(work)[1])
    assert code == 0, err
    assert [info(r)["status"] for r in run_dirs[2:]] == [store.CANCELLED, store.COMPLETE]


# -- end to end, through a real job script ---------------------------------------------------------------------
@pytest.fixture
def pidfile(tmp_path: Path) -> dict[str, str]:
    """The environment in which a launch finds the example ``pidfile`` scheduler (jobs run by ``setsid bash``
    on this machine, through the shared job script), as in ``test_example_scheduler.py``."""
    import re

    example = Path(__file__).parents[1] / "examples" / "third_party_scheduler"
    text = (example / "pyproject.toml").read_text()  # a .dist-info declaring its entry point, as pip would write
    name, version = (re.search(rf'^{key} = "([^"]+)"', text, re.M).group(1) for key in ("name", "version"))
    points = re.search(r"^\[project\.entry-points\.mlxcore\]\n((?:[^\[\n].*\n?)*)", text, re.M).group(1)
    site = tmp_path / "site"
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[mlxcore]\n" + points.replace('"', ""))
    paths = [str(example), str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths), "PIDFILE_STATE": str(tmp_path / "pidfile state")}


def test_a_packed_sweep_launched_on_a_scheduler_with_job_scripts_completes_every_point(project, pidfile):
    import json

    result = project.run("x=1,2,3,4,5", "+mlx.use_scheduler=true", "+mlx.scheduler.name=pidfile",
                         "+mlx.scheduler.pack=2", env=pidfile)
    assert result.returncode == 0, result.stderr

    def statuses() -> dict[int, dict] | None:
        out = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(project.logs), "--json"],
                             capture_output=True, text=True, env={**os.environ, **pidfile}, check=True).stdout
        rows = {row["log_id"]: row for row in json.loads(out)}
        return rows if all(row["status"] == store.COMPLETE for row in rows.values()) else None

    rows = wait_until(statuses, timeout=90, interval=0.3, what="the packed sweep to complete")
    assert sorted(rows) == [1, 2, 3, 4, 5] == project.run_ids()
    jobs = [rows[i]["job_id"] for i in range(1, 6)]
    assert jobs[0] == jobs[1] and jobs[2] == jobs[3] and len(set(jobs)) == 3  # 5 points: 3 jobs
    for log_id in range(1, 6):
        assert project.info(log_id)["scheduler"]["name"] == "pidfile"
        assert project.info(log_id)["overrides"][0] == f"x={log_id}"
        assert rows[log_id]["run_dir"] == str(project.logs / str(log_id))
