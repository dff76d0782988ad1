"""The reader on runs launched for real (subprocesses of a real task): incremental refresh, resumed, interrupted,
killed and submitted runs, a torn metric line left by a crash, and a read-only logs directory."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mlxcore
from mlxcore import store
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import backdate, write_run

TASK = '''
import math, time
import mlxcore

@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    for epoch in range(cfg.epochs):
        ctx.logger.log_metrics({"epoch": epoch, "loss": math.exp(-cfg.lr * epoch) + 0.01 * cfg.seed}, log_name="train")
    ctx.logger.flush()
    if cfg.sleep:
        print("ready", flush=True)
        time.sleep(cfg.sleep)  # not a wait: the run stays RUNNING (or its job busy) until the test is done with it

if __name__ == "__main__":
    main()
'''


class Task:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "configs").mkdir(parents=True)
        (root / "configs" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "lr": 0.1, "epochs": 4, "sleep": 0}))
        (root / "main.py").write_text(TASK)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def run(self, *args: str) -> None:
        result = subprocess.run([sys.executable, "main.py", *args], cwd=self.root, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "main.py", "sleep=60", *args], cwd=self.root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == "ready"
        return proc


@pytest.fixture
def task(tmp_path: Path) -> Task:
    return Task(tmp_path / "project")


def test_reopening_rereads_only_the_runs_that_changed_or_appeared(task):
    task.run("lr=0.1,0.5", "seed=1,2")  # runs 1-4
    backdate(task.logs)
    first = DuckDBReader(task.logs)
    assert first.last_refresh.rebuilt and first.last_refresh.changed == [1, 2, 3, 4]
    assert DuckDBReader(task.logs).last_refresh.changed == []

    task.run("lr=0.9", "seed=3")                                     # a new run: 5
    task.run("lr=0.1", "seed=1", "epochs=6", "+mlx.logger.forced_log_id=1",  # run 1 resumed: metadata and rows
             "+mlx.allow_config_change=true")
    shutil.rmtree(task.logs / "2")                                    # run 2 deleted
    again = DuckDBReader(task.logs)
    stats = again.last_refresh
    assert (stats.changed, stats.removed, stats.rebuilt) == ([1, 5], [2], False)
    df = again.filter(columns=["log_id", "config.lr", "config.epochs", "train.loss.count", "info.attempt"])
    assert df["log_id"].tolist() == [1, 3, 4, 5]
    assert df.set_index("log_id").loc[1].tolist() == [0.1, 6, 4 + 6, 2]  # the first attempt's rows are kept too
    assert df.set_index("log_id").loc[5, "config.lr"] == 0.9


def test_interrupted_killed_and_submitted_runs_have_their_status(task):
    interrupted = task.start("seed=1")
    interrupted.send_signal(signal.SIGINT)
    interrupted.wait(timeout=30)
    killed = task.start("seed=2")
    submitted = write_run(task.logs, {"seed": 3, "lr": 0.2}, status=store.SUBMITTED)
    backdate(task.logs)
    reader = DuckDBReader(task.logs)
    status = {r["log_id"]: r["status"] for r in reader.filter(columns=["log_id", "status"], result_format="records")}
    assert status == {1: "INTERRUPTED", 2: "RUNNING", submitted: "SUBMITTED"}
    assert reader.filter("config.seed == 3", columns=["config.lr", "train.loss.count"], result_format="records") == [
        {"config.lr": 0.2, "train.loss.count": None}]  # visible, with its config, before it starts

    killed.kill()  # SIGKILL: nothing is written; the file still says RUNNING
    killed.wait(timeout=30)
    assert yaml.safe_load((task.logs / "2" / "metadata" / "info.yaml").read_text())["status"] == "RUNNING"
    reader.refresh()
    assert reader.last_refresh.changed == [] and reader.last_refresh.status_changed == [2]
    row = reader.filter("log_id == 2", columns=["status", "info.status", "train.loss.count"]).iloc[0].tolist()
    assert row == ["DEAD", "DEAD", 4]
    assert reader.filter("info.status == 'RUNNING'").empty


def test_a_run_waiting_in_a_scheduler_shows_its_job_id_and_submit_time(task, tmp_path):
    env = {**os.environ, "MLXCORE_LOCAL_STATE": str(tmp_path / "pool")}
    result = subprocess.run([sys.executable, "main.py", "seed=1,2", "sleep=30", "+mlx.use_scheduler=true",
                             "+mlx.scheduler.detach=true", "+mlx.scheduler.workers=1"], cwd=task.root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    try:
        columns = ["log_id", "status", "info.scheduler.name", "info.scheduler.job_id", "info.scheduler.submit_time"]
        rows = DuckDBReader(task.logs).filter(columns=columns, result_format="records")
        waiting = [r for r in rows if r["status"] == "SUBMITTED"]
        assert waiting, rows  # one worker: the second point waits while the first sleeps
        for row in rows:
            recorded = yaml.safe_load((task.logs / str(row["log_id"]) / "metadata" / "scheduler.yaml").read_text())
            assert row["info.scheduler.name"] == "local"
            assert row["info.scheduler.job_id"] == recorded["job_id"]
            assert row["info.scheduler.submit_time"] == recorded["submit_time"]
    finally:
        subprocess.run([sys.executable, "-m", "mlxcore", "cancel", str(task.logs), "--all"], env=env,
                       capture_output=True, timeout=60)


def test_a_torn_line_left_by_a_crash_is_skipped_and_cut_when_the_run_resumes(task, caplog):
    task.run("epochs=3")
    train = task.logs / "1" / "metrics" / "train.json"
    data = train.read_bytes()
    train.write_bytes(data[:-10])  # the process died in the middle of writing its last line
    with caplog.at_level("WARNING", logger="mlxcore.reader"):
        reader = DuckDBReader(task.logs)
    assert reader.last_refresh.skipped_lines == {(1, "train"): 1}
    assert "skipped 1 unreadable metric line(s): run 1 metrics/train.json (1)" in caplog.text
    assert reader.skipped_lines().values.tolist() == [[1, "train", 1]]
    assert reader.metrics("train", keys=["epoch"])["epoch"].tolist() == [0, 1]
    reader.close()
    # the resumed run's writer cuts the torn line first: its own rows start on a line of their own
    task.run("epochs=5", "+mlx.logger.forced_log_id=1", "+mlx.allow_config_change=true")
    assert train.read_bytes().startswith(data[: data.rindex(b"\n", 0, len(data) - 10) + 1])
    reader = DuckDBReader(task.logs)
    assert reader.last_refresh.skipped_lines == {}
    rows = reader.metrics("train", keys=["epoch"])
    assert rows["epoch"].tolist() == [0, 1, 0, 1, 2, 3, 4]
    assert reader.filter(columns=["train.epoch.last", "train.epoch.count"]).values.tolist() == [[4, 7]]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


READ_ONLY_SCRIPT = '''
import json, os, sys
from mlxcore.reader.engine import DuckDBReader
reader = DuckDBReader(sys.argv[1])
df = reader.filter("config.lr > 0.2", columns=["log_id", "train.loss.last"])
print(json.dumps({"catalog": str(reader.catalog.path), "ids": df["log_id"].tolist(),
                  "writable": os.access(sys.argv[1], os.W_OK)}))
'''


def test_a_read_only_logs_directory_gets_its_catalog_in_the_user_cache(task, tmp_path):
    task.run("lr=0.1,0.5")
    digest = _tree_digest(task.logs)
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    argv = [sys.executable, "-c", READ_ONLY_SCRIPT, str(task.logs)]
    if os.geteuid() == 0:  # root writes through permissions: mount the logs read-only in a private namespace
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare(1): cannot make a read-only logs directory")
        logs = str(task.logs)
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        argv = ["unshare", "--mount", "sh", "-c", script, logs, *argv]
    else:
        for directory, _, _ in os.walk(task.logs):
            os.chmod(directory, 0o555)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    if os.geteuid() != 0:
        for directory, _, _ in os.walk(task.logs):
            os.chmod(directory, 0o755)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["writable"] is False and out["ids"] == [2]
    assert Path(out["catalog"]).is_relative_to(cache / "mlxcore" / "catalogs") and Path(out["catalog"]).exists()
    assert not (task.logs / store.STATE_DIR / "catalog.duckdb").exists()
    assert _tree_digest(task.logs) == digest


def test_a_damaged_catalog_is_rebuilt_and_the_default_reader_comes_from_the_settings(task):
    task.run("lr=0.1,0.5")
    reader = mlxcore.Reader(task.logs)
    assert type(reader) is DuckDBReader and reader.catalog.path == task.logs / ".mlxcore" / "catalog.duckdb"
    reader.catalog.path.write_bytes(b"this is not a DuckDB file" * 100)
    again = mlxcore.Reader(task.logs)
    assert again.last_refresh.rebuilt and again.filter()["log_id"].tolist() == [1, 2]
    with pytest.raises(mlxcore.UnknownChoiceError, match="unknown reader 'sqlite'.*valid: duckdb"):
        mlxcore.Reader(task.logs, reader="sqlite")
    with pytest.raises(mlxcore.QueryError, match="does not exist"):
        mlxcore.Reader(task.root / "nowhere")


REFRESH_SCRIPT = """
import sys
from mlxcore.reader.engine import DuckDBReader
print(len(DuckDBReader(sys.argv[1]).last_refresh.changed))
"""


def test_processes_refreshing_at_once_load_each_run_once(tmp_path):
    from mlxcore.reader.synthetic import build_corpus

    logs = tmp_path / "logs"
    build_corpus(logs, 120, 5)
    DuckDBReader(logs)
    build_corpus(logs, 60, 5)  # new runs, seen by every process below as new
    procs = [subprocess.Popen([sys.executable, "-c", REFRESH_SCRIPT, str(logs)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    assert all(proc.wait(timeout=120) == 0 for proc in procs)
    reader = DuckDBReader(logs)
    counts = reader.sql("SELECT count(*) AS n, count(DISTINCT (log_id, _row)) AS d, count(DISTINCT log_id) AS r "
                        "FROM train", result_format="records")
    assert counts == [{"n": 180 * 5, "d": 180 * 5, "r": 180}]
    assert reader.sql('SELECT max("train.loss.count") AS m FROM runs')["m"].tolist() == [5]


def test_a_finished_run_edited_by_hand_is_read_again_from_its_yaml(tmp_path):
    """The JSON copy of the metadata (mlxcore.metadata_cache) is used only for the exact bytes it was made from."""
    logs = tmp_path / "logs"
    first = write_run(logs, {"seed": 1, "lr": 0.1}, {"train": [{"loss": 1.0}]})
    second = write_run(logs, {"seed": 2, "lr": 0.2}, {"train": [{"loss": 2.0}]})
    copy = json.loads((logs / str(first) / "metadata" / ".cache.json").read_text())["files"]
    assert copy["config.yaml"]["data"] == {"seed": 1, "lr": 0.1} and copy["info.yaml"]["data"]["status"] == "COMPLETE"
    backdate(logs)
    reader = DuckDBReader(logs)
    assert reader.filter(columns=["config.lr"])["config.lr"].tolist() == [0.1, 0.2]

    config = logs / str(first) / "metadata" / "config.yaml"
    # saved by an editor (which writes a new file and renames it): the copy still says 0.1
    _replace(config, config.read_text().replace("lr: 0.1", "lr: 0.5"))
    _replace(logs / str(second) / "metadata" / ".cache.json", "{not json")
    backdate(logs)
    reader.refresh()
    assert reader.last_refresh.changed == [first, second]
    assert reader.filter(columns=["config.lr", "status"]).values.tolist() == [[0.5, "COMPLETE"], [0.2, "COMPLETE"]]


def _replace(path: Path, text: str) -> None:
    Path(f"{path}.new").write_text(text)
    os.replace(f"{path}.new", path)


def test_data_json_would_change_is_not_copied(tmp_path):
    logs = tmp_path / "logs"
    log_id = write_run(logs, {"seed": 1, "table": {1: "one"}, "when": datetime.date(2026, 1, 2)})
    copy = json.loads((logs / str(log_id) / "metadata" / ".cache.json").read_text())["files"]
    assert "config.yaml" not in copy and "info.yaml" in copy
    row = DuckDBReader(logs).filter(columns=["config.table.1", "config.when"], result_format="records")
    assert row == [{"config.table.1": "one", "config.when": "2026-01-02"}]


def test_a_run_changed_within_the_racy_window_is_read_again_until_it_settles(tmp_path):
    """A write landing in the same timestamp tick as a scan would leave the same mtime: a run whose metadata is
    younger than the racy window is never trusted, and is re-read until it is older."""
    logs = tmp_path / "logs"
    log_id = write_run(logs, {"seed": 1})
    reader = DuckDBReader(logs, catalog=tmp_path / "catalog.duckdb")
    assert reader.last_refresh.changed == [log_id]
    assert reader.refresh().changed == [log_id]  # still young: read again
    backdate(logs)
    assert reader.refresh().changed == [log_id]  # settled now, read once more with a stamp it can trust
    assert reader.refresh().changed == []


def test_a_refresh_that_fails_halfway_leaves_the_previous_catalog_and_no_thread(tmp_path, monkeypatch):
    """The reader thread fails on one run's metadata while DuckDB loads the metric files: the transaction is
    rolled back, the thread ends, and the next refresh loads the runs as if nothing had happened."""
    import threading

    from mlxcore.reader import scan

    logs = tmp_path / "logs"
    first = write_run(logs, {"seed": 1}, {"train": [{"loss": 1.0}]})
    backdate(logs)
    reader = DuckDBReader(logs)
    added = [write_run(logs, {"seed": s}, {"train": [{"loss": float(s)}] * 3}) for s in range(2, 6)]
    backdate(logs)
    real = scan.read_run

    def failing(log_id: int, run_dir: str, loader=None):
        if log_id == added[2]:
            raise OSError("disk on fire")
        return real(log_id, run_dir, loader)

    monkeypatch.setattr(scan, "read_run", failing)
    with pytest.raises(OSError, match="disk on fire"):
        reader.refresh()
    assert not [t for t in threading.enumerate() if t.name.startswith("mlxcore-catalog")]
    monkeypatch.setattr(scan, "read_run", real)
    stale = DuckDBReader(logs, refresh=False)
    assert stale.filter(columns=["log_id"])["log_id"].tolist() == [first]  # rolled back
    assert DuckDBReader(logs).last_refresh.changed == added
    assert reader.refresh().changed == [] and reader.sql("SELECT count(*) AS n FROM train")["n"][0] == 13


def test_runs_lists_the_runs_in_order_after_any_refresh(tmp_path):
    logs = tmp_path / "logs"
    ids = [write_run(logs, {"seed": s}, {"train": [{"loss": 1.0}]}) for s in range(4)]
    backdate(logs)
    reader = DuckDBReader(logs)
    ids.append(write_run(logs, {"seed": 9}, {"train": [{"loss": 1.0}]}))  # a new run: appended
    backdate(logs)
    assert reader.refresh().changed == [ids[4]]
    assert reader.sql("SELECT log_id FROM runs")["log_id"].tolist() == ids
    _replace(logs / str(ids[1]) / "metadata" / "config.yaml", "seed: 1\nlr: 0.3\n")  # an older run changed
    backdate(logs)
    assert reader.refresh().changed == [ids[1]]
    assert reader.sql("SELECT log_id FROM runs")["log_id"].tolist() == ids
    assert reader.sql(f'SELECT "config.lr" AS lr FROM runs WHERE log_id = {ids[1]}')["lr"].tolist() == [0.3]


def test_a_warm_reopen_reads_no_file_of_any_run(tmp_path, monkeypatch):
    """With nothing changed, opening a reader stats each run's metadata/ directory and reads nothing else."""
    from mlxcore.reader import metrics, scan, workers

    logs = tmp_path / "logs"
    for s in range(5):
        write_run(logs, {"seed": s}, {"train": [{"loss": 1.0}]})
    backdate(logs)
    DuckDBReader(logs)

    def forbidden(*args, **kwargs):
        raise AssertionError("a warm reopen read a run's files")

    for module, name in ((scan, "read_run"), (scan, "metric_files"), (scan, "signature"), (metrics, "read_batches"),
                         (workers, "read_batches")):
        monkeypatch.setattr(module, name, forbidden)
    reader = DuckDBReader(logs)
    assert reader.last_refresh.changed == [] and len(reader.filter()) == 5
