"""Limits on queries: a timeout, a memory limit, Ctrl-C within a second, and a long query that blocks no one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlxcore
from mlxcore.reader.synthetic import backdate, write_run
from mlxcore.testing import wait_until

FOREVER = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"


def reads_catalog(pid: int, logs: Path) -> bool:
    """Whether process ``pid`` has the catalog of ``logs`` attached read-only, as while a query runs: DuckDB then
    holds a read lock on the file (seen in Linux's ``/proc/locks``)."""
    try:
        inode = (logs / ".mlxcore" / "catalog.duckdb").stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # "1: POSIX  ADVISORY  READ 1234 fe:00:5678 0 EOF" ("1: -> ..." for a waiter)
        if fields[1] != "->" and fields[3:5] == ["READ", str(pid)] and fields[5].endswith(f":{inode}"):
            return True
    return False


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by each thread of ``pid`` but its main one, by thread id (Linux ``/proc``)."""
    used = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        if task.name != str(pid):
            with contextlib.suppress(FileNotFoundError):  # a thread that has just ended
                fields = (task / "stat").read_text().rpartition(")")[2].split()
                used[task.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def wait_for_query(proc: subprocess.Popen, logs: Path) -> None:
    """Wait until ``proc`` runs its query: the catalog attached for reading (a refresh is over), then 0.1 s of CPU
    spent off the main thread (the query runs in a thread of its own; the attach alone may be one that lingers
    after an earlier call, and is let go before the query attaches again)."""
    wait_until(lambda: proc.poll() is not None or reads_catalog(proc.pid, logs), timeout=60,
               what="the catalog to be opened for the query")
    before = thread_cpu(proc.pid) if proc.poll() is None else {}
    wait_until(lambda: proc.poll() is not None or any(cpu - before.get(tid, 0.0) >= 0.1
                                                      for tid, cpu in thread_cpu(proc.pid).items()),
               timeout=60, what="the query to run")


@pytest.fixture
def logs(tmp_path):
    logs = tmp_path / "logs"
    for n in range(3):
        write_run(logs, {"seed": n}, {"train": [{"loss": 1.0 / (n + 1)}]})
    backdate(logs)
    return logs


def test_a_query_that_runs_forever_stops_at_the_timeout(logs):
    reader = mlxcore.Reader(logs, timeout=1)
    started = time.monotonic()
    with pytest.raises(mlxcore.QueryError, match=r"stopped after 1 s \(the timeout\)"):
        reader.sql(FOREVER)
    assert time.monotonic() - started < 5
    assert len(reader.filter()) == 3  # the reader still works


@pytest.mark.parametrize("result_format", ["pandas", "records"])
def test_a_result_larger_than_the_memory_limit_stops_with_a_clear_error(logs, result_format):
    reader = mlxcore.Reader(logs, memory_limit="64MB")
    with pytest.raises(mlxcore.QueryError, match=r"larger than the memory limit \(64.0 MiB\)"):
        reader.sql("SELECT * FROM range(1000000000)", result_format=result_format)
    with pytest.raises(mlxcore.QueryError, match=r"needs more memory than the limit \(64.0 MiB\)"):
        reader.sql("SELECT list(range) FROM range(1000000000)")
    assert reader.sql("SELECT count(*) AS n FROM range(1000000)").n[0] == 1_000_000  # a big count is no result


@pytest.mark.parametrize("bad, message", [({"timeout": 0}, "positive number of seconds"),
                                          ({"timeout": "soon"}, "give a number of seconds"),
                                          ({"memory_limit": "lots"}, "give a size such as 2GB"),
                                          ({"memory_limit": "1KB"}, "below 16MB")])
def test_bad_limits_are_refused(logs, bad, message):
    with pytest.raises(mlxcore.QueryError, match=message):
        mlxcore.Reader(logs, **bad)


def test_the_command_line_takes_the_limits(logs):
    result = subprocess.run([sys.executable, "-m", "mlxcore", "query", str(logs), "--sql", FOREVER, "--timeout", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        "mlxcore: error: query stopped after 1 s (the timeout)")
    result = subprocess.run([sys.executable, "-m", "mlxcore", "query", str(logs), "--sql",
                             "SELECT * FROM range(100000000)", "--memory-limit", "32MB"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "larger than the memory limit (32.0 MiB)" in result.stderr


def test_ctrl_c_stops_a_running_query_within_a_second(logs):
    proc = subprocess.Popen([sys.executable, "-m", "mlxcore", "query", str(logs), "--sql", FOREVER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_query(proc, logs)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()  # does nothing once it has ended; else it would run forever
    assert time.monotonic() - sent < 1.0
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "mlxcore: interrupted", err


def test_a_long_query_blocks_no_other_reader(logs, caplog):
    code = (f"import mlxcore; r = mlxcore.Reader({str(logs)!r}, timeout=30); print('go', flush=True); "
            f"r.sql({FOREVER!r})")
    long = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert long.stdout.readline().strip() == "go"
        wait_for_query(long, logs)  # the query holds the catalog open for reading
        started = time.monotonic()
        assert len(mlxcore.Reader(logs).filter()) == 3  # nothing to index: answered at once
        assert time.monotonic() - started < 3
        write_run(logs, {"seed": 9}, {"train": [{"loss": 0.1}]})  # something to index: it cannot write now
        backdate(logs)
        started = time.monotonic()
        with caplog.at_level("WARNING", logger="mlxcore"):
            reader = mlxcore.Reader(logs)
        assert time.monotonic() - started < 15
        assert reader.last_refresh.stale and "answering from it as of its last refresh (1 run(s)" in caplog.text
        assert len(reader.filter()) == 3  # the catalog as it was
    finally:
        long.send_signal(signal.SIGINT)
        long.communicate(timeout=30)
    reader.refresh()  # the long query is gone: the new run is indexed
    assert len(reader.filter()) == 4 and not reader.last_refresh.stale
