"""The files logger: ids, statuses under signals, metric rows, streams (real files, real processes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlxcore import store
from mlxcore.errors import ConfigError
from mlxcore.session import RunSession, open_run
from mlxcore.settings import LoggerSettings
from mlxcore.testing import wait_until


def _new_run(parent: Path, log_id: int | None = None) -> int:
    """Create a SUBMITTED run through the store; its id."""
    run, _ = store.RunStore(parent).create(store.SUBMITTED, {}, log_id=log_id)
    return run.log_id


def _allocate(parent: str, barrier, queue) -> None:
    barrier.wait()
    queue.put(_new_run(Path(parent)))


def test_64_processes_starting_together_get_64_distinct_ids(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(64), ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(str(tmp_path), barrier, queue)) for _ in range(64)]
    for proc in procs:
        proc.start()
    ids = sorted(queue.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    assert ids == list(range(1, 65))
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == ids


def test_ids_are_never_reused_after_deletion(tmp_path):
    for _ in range(3):
        _new_run(tmp_path)
    shutil.rmtree(tmp_path / "3")
    shutil.rmtree(tmp_path / "2")
    assert _new_run(tmp_path) == 4


def test_counter_starts_after_existing_runs_and_skips_forced_ids(tmp_path):
    (tmp_path / "7").mkdir()  # a directory made by another tool
    assert _new_run(tmp_path) == 8
    assert _new_run(tmp_path, 12) == 12
    assert _new_run(tmp_path) == 13


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + proc.stderr.read()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_flushes_rows_marks_interrupted_and_exits_non_zero(project, signum, code):
    proc = project.start("mode=sleep", "x=1,2")  # a sweep: the second point must not start
    _wait_ready(proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == code
    info = project.info(1)
    assert info["status"] == "INTERRUPTED" and info["signal"] == signal.Signals(signum).name
    rows = (project.logs / "1" / "metrics" / "train.json").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [0, 1, 2, 3, 4]  # buffered rows were flushed
    assert project.run_ids() == [1]


def test_a_killed_run_is_seen_as_dead(project):
    proc = project.start("mode=sleep")
    _wait_ready(proc)
    proc.kill()
    proc.wait(timeout=10)
    info = project.info(1)
    assert info["status"] == "RUNNING"
    assert store.effective_status(info, project.logs / "1") == store.DEAD


def test_a_run_that_wrote_its_final_status_after_we_read_it_is_not_dead(tmp_path):
    # info read while the run said RUNNING; the run then wrote PREEMPTED and exited before the pid check
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    info = {"status": "RUNNING", "hostname": socket.gethostname(), "pid": proc.pid, "heartbeat_interval": 10}
    (tmp_path / "metadata").mkdir()
    store.write_yaml(tmp_path / "metadata" / "info.yaml", {**info, "status": store.PREEMPTED})
    assert store.effective_status(info, tmp_path) == store.PREEMPTED
    store.write_yaml(tmp_path / "metadata" / "info.yaml", info)
    assert store.effective_status(info, tmp_path) == store.DEAD


def test_a_stale_heartbeat_from_another_host_is_dead(tmp_path):
    info = {"status": "RUNNING", "hostname": "elsewhere", "pid": 1, "heartbeat_interval": 10}
    (tmp_path / "metadata").mkdir()
    beat = tmp_path / "metadata" / store.HEARTBEAT
    beat.touch()
    assert store.effective_status(info, tmp_path) == store.RUNNING
    old = time.time() - 120
    os.utime(beat, (old, old))
    assert store.effective_status(info, tmp_path) == store.DEAD


def test_stop_signal_lets_the_task_checkpoint_and_marks_preempted(project):
    proc = project.start("mode=stop", "x=1,2")
    _wait_ready(proc)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=30) == 3
    info = project.info(1)
    assert info["status"] == "PREEMPTED" and info["stop_signal"] == "SIGUSR1"
    assert (project.logs / "1" / "checkpoints" / "ckpt.pickle").exists()
    assert project.run_ids() == [1]  # the rest of the sweep is not started


def test_importing_installs_no_signal_handler_and_no_exit_hook():
    code = ("import atexit, logging, signal; before = atexit._ncallbacks(); import mlxcore, mlxcore.launching; "
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL,"
            " atexit._ncallbacks() == before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]


class _Logged:
    """A run opened outside a launch (``mlxcore.open_run``): its logger's methods, and ``finish``."""

    def __init__(self, run: RunSession) -> None:
        self.run = run

    def __getattr__(self, name: str):
        return getattr(self.run.logger, name)

    def finish(self, status: str) -> str:
        return self.run.finish(status)


def _logger(tmp_path: Path, **kw) -> _Logged:
    return _Logged(open_run(tmp_path, mlx={"logger": kw}))


def test_numpy_values_nan_and_inf_are_written_and_readable_by_duckdb(tmp_path):
    np = pytest.importorskip("numpy")
    duckdb = pytest.importorskip("duckdb")
    logger = _logger(tmp_path)
    logger.log_metrics({"a": np.float32(0.5), "b": np.int64(3), "c": np.array(2.0), "nan": float("nan"),
                        "inf": float("inf"), "v": np.arange(3)}, "m")
    logger.finish("COMPLETE")
    path = tmp_path / "1" / "metrics" / "m.json"
    row = duckdb.sql(f"select * from read_json('{path}')").fetchall()[0]
    assert row[:3] == (0.5, 3, 2.0) and row[3] != row[3] and row[4] == float("inf") and row[5] == [0, 1, 2]


def test_an_unserialisable_value_names_the_key_and_writes_nothing(tmp_path):
    logger = _logger(tmp_path)
    logger.log_metrics({"ok": 1}, "m")
    with pytest.raises(TypeError, match="'bad'"):
        logger.log_metrics({"fine": 2, "bad": object()}, "m")
    logger.log_metrics({"ok": 3}, "m")
    logger.finish("COMPLETE")
    assert (tmp_path / "1" / "metrics" / "m.json").read_text() == '{"ok": 1}\n{"ok": 3}\n'


def test_rows_reach_the_file_within_the_flush_interval(tmp_path):
    logger = _logger(tmp_path, flush_interval=0.2)
    logger.log_metrics({"step": 1}, "m")
    path = tmp_path / "1" / "metrics" / "m.json"
    wait_until(path.read_text, timeout=5, what="the flush thread to write the row")
    assert path.read_text() == '{"step": 1}\n'
    logger.finish("COMPLETE")


def test_large_buffers_are_written_as_whole_lines(tmp_path):
    logger = _logger(tmp_path)
    for i in range(20000):
        logger.log_metrics({"i": i, "pad": "x" * (i % 50)}, "m")
    logger.finish("COMPLETE")
    lines = (tmp_path / "1" / "metrics" / "m.json").read_text().splitlines()
    assert [json.loads(line)["i"] for line in lines] == list(range(20000))


def test_bad_stream_names_are_refused(tmp_path):
    logger = _logger(tmp_path)
    for name in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ConfigError, match="invalid log_name"):
            logger.log_metrics({"a": 1}, name)
    logger.finish("COMPLETE")


def test_streams_are_teed_to_files(project):
    result = project.run("mode=print", "+mlx.logger.log_streams_to_file=true")
    assert result.returncode == 0, result.stderr
    assert "to stdout" in result.stdout  # still on the terminal
    out = (project.logs / "1" / "log.stdout").read_text()
    assert "to stdout" in out and "from a child process" in out
    assert "to stderr" in (project.logs / "1" / "log.stderr").read_text()


def test_files_get_the_permissions_the_umask_allows(project):
    # mkstemp alone would make every metadata file and checkpoint 0600: unreadable by colleagues on a cluster
    result = subprocess.run(project.command("mode=resume", "+epochs=1"), cwd=project.root, capture_output=True,
                            text=True, timeout=120, preexec_fn=lambda: os.umask(0o027))
    assert result.returncode == 0, result.stderr
    run = project.logs / "1"
    for path in (run / "metadata" / "info.yaml", run / "metadata" / "config.yaml", run / "checkpoints" / "ckpt.pickle"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
