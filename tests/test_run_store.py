"""The run store: a recorded config never changes silently, one writer per run, runs appear whole, a failed
submission leaves nothing behind, orphans are reconciled, and the public run API (``mlxcore.open_run``)."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

import mlxcore
from mlxcore import store
from mlxcore.store import RunBusyError, RunStore, layout
from mlxcore.testing import wait_until

POOL = ("+mlx.use_scheduler=true", "+mlx.scheduler.name=local")


def status_rows(logs: Path) -> dict[int, dict]:
    result = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(logs), "--json"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {row["log_id"]: row for row in json.loads(result.stdout)}


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in (layout.HEARTBEAT,)}


# -- a recorded config never changes silently ----------------------------------------------------------------------
def test_a_forced_resume_runs_with_the_recorded_config(project):
    assert project.run("x=5", "opt.lr=0.5").returncode == 0
    recorded, identity = project.config(1), project.info(1)["config_identity"]
    result = project.run("+mlx.logger.forced_log_id=1")  # no overrides: the run's own are applied again
    assert result.returncode == 0, result.stderr
    assert project.config(1) == recorded and project.config(1)["x"] == 5
    info = project.info(1)
    assert info["config_identity"] == identity and info["attempt"] == 2 and info["overrides"] == ["x=5", "opt.lr=0.5"]
    assert info["history"][0]["status"] == "COMPLETE"


def test_an_override_that_changes_a_recorded_value_is_refused_and_changes_nothing(project):
    assert project.run("x=5").returncode == 0
    before = snapshot(project.logs / "1")
    result = project.run("x=7", "opt.name=adam", "+mlx.logger.forced_log_id=1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxcore: error: run 1 was recorded with another config")
    assert "x: recorded 5, now 7" in lines[0] and "opt.name: recorded 'sgd', now 'adam'" in lines[0]
    assert "+mlx.allow_config_change=true" in lines[0]
    assert snapshot(project.logs / "1") == before


def test_an_allowed_config_change_is_recorded_in_the_history(project):
    assert project.run("x=5").returncode == 0
    result = project.run("x=7", "+mlx.logger.forced_log_id=1", "+mlx.allow_config_change=true")
    assert result.returncode == 0, result.stderr
    info = project.info(1)
    assert project.config(1)["x"] == 7 and info["overrides"] == ["x=7"]
    (change,) = [event for event in info["history"] if event.get("event") == "config_changed"]
    assert change["changes"] == [{"key": "x", "recorded": 5, "new": 7}]


def test_rerun_failed_keeps_the_recorded_config_and_refuses_a_changed_base(project):
    project.write_config({"seed": 0, "x": 1, "mode": "fail_if", "fail_at": 2})
    assert project.run("x=1,2").returncode == 1
    project.write_config({"seed": 0, "x": 1, "mode": "ok", "fail_at": 2})  # the fix: but the config changes too
    result = project.run("x=1,2", "+mlx.rerun_failed=true")
    assert result.returncode == 0 and "nothing" not in result.stderr  # a new identity: not a rerun of run 2
    assert project.info(2)["status"] == "FAILED"


# -- one writer per run ------------------------------------------------------------------------------------------------
def test_a_second_writer_of_a_live_run_is_refused(project):
    proc = project.start("mode=sleep", "+mlx.logger.flush_interval=120")
    try:
        wait_until(lambda: proc.stdout.readline().strip() == "ready", what="the task to start")
        before = snapshot(project.logs / "1")
        result = project.run("mode=sleep", "+mlx.logger.forced_log_id=1")
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert "run 1 is being written by pid" in line and str(proc.pid) in line
        assert snapshot(project.logs / "1") == before
        with pytest.raises(RunBusyError, match="being written by"):
            mlxcore.open_run(project.logs, log_id=1)
        # the heartbeat is old, the flush interval long: on this host the lease's pid decides, not the heartbeat
        old = time.time() - 3600
        os.utime(project.logs / "1" / "metadata" / layout.HEARTBEAT, (old, old))
        assert status_rows(project.logs)[1]["status"] == "RUNNING"
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_a_run_killed_is_dead_and_a_resume_takes_it_over(project):
    proc = project.start("mode=sleep")
    wait_until(lambda: proc.stdout.readline().strip() == "ready", what="the task to start")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    row = status_rows(project.logs)[1]
    assert row["status"] == "DEAD" and f"pid {proc.pid}" in row["detail"]
    result = project.run("mode=sleep", "+sleep=0", "+mlx.logger.forced_log_id=1", "+mlx.allow_config_change=true")
    assert result.returncode == 0, result.stderr
    info = project.info(1)
    assert info["status"] == "COMPLETE" and info["attempt"] == 2
    assert info["history"][0]["status"] == "DEAD"
    assert any(event.get("event") == "takeover" and f"pid {proc.pid}" in event["previous_writer"]
               for event in info["history"])
    assert (project.logs / "1" / "metadata" / layout.LEASE).read_text() == ""  # released


def test_a_pid_reused_by_another_process_is_not_taken_for_the_writer(tmp_path):
    run = mlxcore.open_run(tmp_path)
    lease = run.log_dir / "metadata" / layout.LEASE
    holder = json.loads(lease.read_text())
    run.writer.lease.release()  # as if the writer had died...
    holder["start"] = holder["start"] + 1 if holder["start"] is not None else 1  # ...and its pid been reused
    lease.write_text(json.dumps(holder))
    assert store.effective_status(run.run.read_info(), run.log_dir) == "DEAD"


def test_leftover_temporary_files_are_removed_when_the_run_starts_again(tmp_path):
    run = mlxcore.open_run(tmp_path)
    run.logger.log_checkpoint({"a": 1}, log_name="ckpt")
    run.finish("INTERRUPTED")
    junk = [tmp_path / "1" / "checkpoints" / ".ckpt.pickle.abcd1234.tmp",
            tmp_path / "1" / "metadata" / ".info.yaml.x.tmp"]
    for path in junk:
        path.write_bytes(b"half")
    resumed = mlxcore.open_run(tmp_path, log_id=1)
    assert not any(path.exists() for path in junk)
    assert resumed.logger.load_checkpoint("ckpt") == {"a": 1}
    resumed.finish()


# -- runs appear whole; statuses that tell the truth ----------------------------------------------------------------
def test_a_run_directory_appears_with_its_info_and_format(tmp_path):
    run = mlxcore.open_run(tmp_path, config={"lr": 0.1})
    info = yaml.safe_load((run.log_dir / "metadata" / "info.yaml").read_text())
    assert info["status"] == "RUNNING" and info["format"] == layout.FORMAT and info["log_id"] == 1
    assert not list((tmp_path / layout.STATE_DIR / layout.STAGING_DIR).iterdir())  # nothing left in staging
    run.finish()


def test_a_directory_without_info_shows_dead_never_started(tmp_path):
    mlxcore.open_run(tmp_path).finish()
    (tmp_path / "2" / "metadata").mkdir(parents=True)  # killed before it wrote its info (an older mlxcore)
    rows = status_rows(tmp_path)
    assert rows[2]["status"] == "DEAD" and "never started" in rows[2]["detail"]
    reader = mlxcore.Reader(tmp_path)
    assert reader.filter(columns=["log_id", "status"], result_format="records") == [
        {"log_id": 1, "status": "COMPLETE"}, {"log_id": 2, "status": "DEAD"}]


def test_an_abandoned_staging_directory_is_removed_by_the_next_creation(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    staging = tmp_path / layout.STATE_DIR / layout.STAGING_DIR
    left = staging / f"{os.uname().nodename}.{dead.stdout.strip()}.deadbeef"
    (left / "metadata").mkdir(parents=True)
    code = f"import mlxcore; mlxcore.open_run({str(tmp_path)!r}).finish()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert not left.exists() and (tmp_path / "1").is_dir()


def test_status_transitions_are_checked(tmp_path):
    run, _ = RunStore(tmp_path).create(store.SUBMITTED, {})
    with pytest.raises(store.StatusError, match="cannot go from SUBMITTED to COMPLETE"):
        run.set_status(store.COMPLETE)
    with pytest.raises(store.StatusError, match="not a status a run records"):
        run.set_status(store.DEAD)
    run.set_status(store.RUNNING)
    run.set_status(store.FAILED)
    run.set_status(store.SUBMITTED)  # sent again: the failed attempt goes to history
    assert [h["status"] for h in run.read_info()["history"]] == ["FAILED"]


# -- orphans and failed submissions ----------------------------------------------------------------------------------
def _backdate_submissions(logs: Path, seconds: float) -> None:
    for record_file in logs.glob("*/metadata/scheduler.yaml"):
        record = yaml.safe_load(record_file.read_text())
        when = datetime.fromisoformat(record["submit_time"]) - timedelta(seconds=seconds)
        record["submit_time"] = when.isoformat()
        record_file.write_text(yaml.safe_dump(record))
        (record_file.parent / layout.METADATA_CACHE).unlink(missing_ok=True)


def test_runs_queued_by_a_killed_launcher_are_reconciled_and_rerun(project):
    proc = project.start("mode=sleep", "+sleep=3", "x=1,2,3,4", *POOL, "+mlx.scheduler.workers=1",
                         start_new_session=True)
    wait_until(lambda: len(project.run_ids()) == 4 and project.info(1)["status"] == "RUNNING",
               what="the pool to start its first job")
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher dies without a word...
    os.kill(project.info(1)["pid"], signal.SIGKILL)  # ...and so does the job it was running (its own session)
    proc.communicate(timeout=30)
    rows = status_rows(project.logs)
    assert [rows[i]["status"] for i in (2, 3, 4)] == ["SUBMITTED"] * 3  # just submitted: not judged yet
    _backdate_submissions(project.logs, 120)
    rows = status_rows(project.logs)
    assert rows[1]["status"] == "DEAD"
    for log_id in (2, 3, 4):
        assert rows[log_id]["status"] == "DEAD" and "never started" in rows[log_id]["detail"], rows[log_id]
    result = project.run("mode=sleep", "+sleep=3", "x=1,2,3,4", "+mlx.rerun_failed=true", *POOL,
                         "+mlx.scheduler.workers=4")
    assert result.returncode == 0, result.stderr
    assert project.run_ids() == [1, 2, 3, 4]
    assert {i: project.info(i)["status"] for i in (1, 2, 3, 4)} == {i: "COMPLETE" for i in (1, 2, 3, 4)}


REFUSING = '''
from mlxcore import hookimpl
from mlxcore.schedulers.base import JobStatus, Scheduler

class RefusingScheduler(Scheduler):
    """A scheduler whose submit command is a real command that fails (``false``)."""
    name = "refusing"
    array_index_variable = "MLXCORE_ARRAY_INDEX"

    def directives(self, submission):
        return []

    def submit_argv(self, submission):
        return ["false"]

    def parse_job_ids(self, output, submission):
        return output.split()

    def status(self, job_ids):
        return {}

    def cancel(self, job_ids):
        pass

@hookimpl
def register_schedulers(register):
    register(RefusingScheduler)
'''


def test_a_failed_submission_leaves_nothing_behind(project, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "refusing_plugin.py").write_text(textwrap.dedent(REFUSING))
    info = site / "refusing_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: refusing-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mlxcore]\nrefusing = refusing_plugin\n")
    env = {"PYTHONPATH": str(site)}
    assert project.run("x=1", "mode=fail").returncode == 1  # run 1: FAILED, to be sent again below
    before = snapshot(project.logs / "1")
    result = project.run("x=1,2,3", "+mlx.use_scheduler=true", "+mlx.scheduler.name=refusing", env=env)
    assert result.returncode == 2 and "false failed" in result.stderr
    assert project.run_ids() == [1]
    assert not list((project.logs / layout.STATE_DIR / layout.SUBMISSIONS_DIR).glob("*"))
    result = project.run("x=1", "mode=fail", "+mlx.rerun_failed=true", "+mlx.use_scheduler=true",
                         "+mlx.scheduler.name=refusing", env=env)
    assert result.returncode == 2
    assert snapshot(project.logs / "1") == before  # the run sent again got back what it had


# -- the public run API ------------------------------------------------------------------------------------------------
def test_open_run_logs_and_finishes_like_a_launched_run(tmp_path):
    with mlxcore.open_run(tmp_path, config={"lr": 0.1, "model": {"depth": 4}}) as run:
        for step in range(3):
            run.logger.log_metrics({"step": step, "loss": 1.0 / (step + 1)}, log_name="train")
        run.logger.log_checkpoint({"step": 2}, log_name="ckpt")
    with pytest.raises(ValueError, match="diverged"):
        with mlxcore.open_run(tmp_path, config={"lr": 0.2, "model": {"depth": 4}}) as run:
            raise ValueError("diverged")
    reader = mlxcore.Reader(tmp_path)
    rows = reader.filter(columns=["log_id", "status", "config.lr", "train.loss.last"], result_format="records")
    assert rows == [{"log_id": 1, "status": "COMPLETE", "config.lr": 0.1, "train.loss.last": pytest.approx(1 / 3)},
                    {"log_id": 2, "status": "FAILED", "config.lr": 0.2, "train.loss.last": None}]
    info = yaml.safe_load((tmp_path / "2" / "metadata" / "info.yaml").read_text())
    assert info["error"]["type"] == "ValueError" and info["error"]["message"] == "diverged"
    resumed = mlxcore.open_run(tmp_path, config={"lr": 0.1, "model": {"depth": 4}}, log_id=1)
    assert resumed.logger.load_checkpoint("ckpt") == {"step": 2}
    resumed.finish()
    with pytest.raises(mlxcore.ConfigError, match="model.depth: recorded 4, now 8"):
        mlxcore.open_run(tmp_path, config={"lr": 0.1, "model": {"depth": 8}}, log_id=1)


def test_config_keys_that_differ_only_by_case_are_refused_before_anything_is_written(project):
    project.write_config({"seed": 0, "n": 1, "N": 2, "mode": "ok"})
    result = project.run()
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "differ only by case" in line and "config.n" in line and "config.N" in line
    assert project.run_ids() == []


# -- the store owns the run directory --------------------------------------------------------------------------------
PACKAGE = Path(mlxcore.__file__).parent


def _imports(path: Path) -> set[str]:
    """The mlxcore modules ``path`` imports at module level (imports inside functions are lazy on purpose)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("mlxcore"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mlxcore"))
    return found


def test_the_module_graph_has_no_cycles():
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    for name in graph:  # a package's __init__ re-exporting its modules is not a cycle through them
        if modules[name].name == "__init__.py":
            graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_module_outside_the_store_spells_a_file_of_a_run():
    import re

    pattern = re.compile(r'/\s*"(metadata|metrics|checkpoints|artifacts|heartbeat|lease|cancel_requested|job_ids)"'
                         r'|"(metadata|checkpoints|artifacts)/|/metadata/|/\s*"(info|scheduler)\.yaml"')
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "store":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("#", '"', "'")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_logging_off_runs_the_task_and_writes_nothing(project):
    result = project.run("x=1,2", "mode=resume", "+epochs=2", "+mlx.use_logger=false")
    assert result.returncode == 0, result.stderr
    assert not project.logs.exists() and not (project.root / "log.stdout").exists()
    failed = project.run("mode=fail", "+mlx.use_logger=false")
    assert failed.returncode == 1 and "boom at x=1" in failed.stderr and not project.logs.exists()
    refused = project.run("+mlx.use_logger=false", "+mlx.use_scheduler=true")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "mlxcore: error: mlx.use_logger=false writes no run, so mlx.use_scheduler cannot be used with it")


def test_allocation_is_read_from_the_job_and_the_visible_gpus():
    from mlxcore.session import allocation

    assert allocation({}) == {"cpus": None, "gpus": None}
    assert allocation({"MLXCORE_CPUS": "8", "CUDA_VISIBLE_DEVICES": "2,3"}) == {"cpus": 8, "gpus": ["2", "3"]}
    assert allocation({"MLXCORE_CPUS": "", "CUDA_VISIBLE_DEVICES": ""}) == {"cpus": None, "gpus": []}
    assert allocation({"CUDA_VISIBLE_DEVICES": "-1"})["gpus"] == []


def test_cpu_and_gpu_hours_add_up_over_attempts():
    from mlxcore.store.writer import cost

    first = cost(3600.0, {"cpus": 4, "gpus": ["0"]}, [])
    assert first == {"attempt_cpu_hours": 4.0, "cpu_hours": 4.0, "attempt_gpu_hours": 1.0, "gpu_hours": 1.0}
    history = [{"attempt": 1, "attempt_cpu_hours": 4.0, "attempt_gpu_hours": 1.0}, {"event": "takeover"}]
    second = cost(1800.0, {"cpus": 4, "gpus": ["0"]}, history)
    assert (second["cpu_hours"], second["gpu_hours"], second["attempt_cpu_hours"]) == (6.0, 1.5, 2.0)
    died = [{"attempt": 1, "status": "DEAD"}]  # an attempt that died recorded nothing: the total is not known
    assert cost(1800.0, {"cpus": 4, "gpus": []}, died)["cpu_hours"] is None
    assert cost(None, {"cpus": 4}, [])["cpu_hours"] is None


def test_a_new_attempt_clears_the_job_error_of_the_one_before(tmp_path):
    """A job error (an attempt stopped at its time limit without a checkpoint) is about that attempt: a run
    started again in process, where no job script clears it, must not show FAILED for it later."""
    from mlxcore import store

    run, _ = store.RunStore(tmp_path).create(store.RUNNING, {"start_timestamp": 0}, log_id=1)
    run.set_status(store.PREEMPTED)
    run.paths.job_error_marker.write_text("mlxcore: stopped at its time limit with no checkpoint saved\n")
    assert store.reconcile(run.read_info(), run.root, None) == store.FAILED
    run.set_status(store.RUNNING)
    assert not run.paths.job_error_marker.exists()
    run.set_status(store.PREEMPTED)
    assert store.reconcile(run.read_info(), run.root, None) == store.PREEMPTED

