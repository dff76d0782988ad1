"""``mlxcore query``: table, CSV and JSON output of filters and SQL, one-line errors, a progress bar only on a
terminal, and imports that stay light (no pandas in the command, nothing heavy in ``import mlxcore``)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from mlxcore.reader.synthetic import backdate, build_corpus, write_run


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("cli") / "logs"
    build_corpus(logs, 6, 4)
    write_run(logs, {"seed": 9, "optimizer": {"name": 'adam, "quoted"'}}, {"train": [{"epoch": 0, "loss": math.nan}]})
    return logs


def query(logs: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "query", str(logs), *args], capture_output=True,
                          text=True, timeout=120)


def test_csv_has_a_header_and_one_row_a_run(logs):
    result = query(logs, "config.optimizer.lr <= 1e-2", "--columns", "log_id,config.optimizer.lr,train.loss.last",
                   "--format", "csv")
    assert result.returncode == 0 and result.stderr == ""
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["log_id", "config.optimizer.lr", "train.loss.last"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("1", "0.001"), ("2", "0.01"), ("4", "0.001"), ("5", "0.01")]
    quoted = query(logs, "config.seed == 9", "--columns", "config.optimizer.name,config.optimizer.lr",
                   "--format", "csv")
    assert list(csv.reader(io.StringIO(quoted.stdout))) == [["config.optimizer.name", "config.optimizer.lr"],
                                                            ['adam, "quoted"', ""]]


def test_json_is_a_list_of_records_with_nulls(logs):
    result = query(logs, "--sql", 'SELECT log_id, "train.loss.last" AS last, "config.model.depth" AS depth '
                   "FROM runs WHERE log_id >= 6 ORDER BY log_id", "--format", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(r["log_id"], r["depth"]) for r in records] == [(6, 4), (7, None)]
    assert records[1]["last"] is None and isinstance(records[0]["last"], float)  # NaN is not JSON: null


def test_timestamps_with_a_time_zone_come_out(logs):
    result = query(logs, "--sql", "SELECT TIMESTAMPTZ '2026-01-02 03:04:05+00' AS t, now() IS NOT NULL AS ok",
                   "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["ok"] is True and row["t"].startswith("2026-01-02")


def test_the_table_shows_the_default_columns_aligned(logs):
    result = query(logs, "config.optimizer.lr == 0.001 & config.model.depth == 2")
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:2] == ["log_id", "status"] and "config.optimizer.lr" in header and "train.loss.last" in header
    assert "info.hostname" not in header and "train.loss.min" not in header
    assert set(lines[1]) == {"-", " "} and len(lines) == 3 and lines[2].split()[:2] == ["1", "COMPLETE"]
    everything = query(logs, "log_id == 1", "--columns", "*").stdout.splitlines()[0].split()
    assert "info.hostname" in everything and "train.loss.min" in everything


@pytest.mark.parametrize(("args", "message"), [
    (["config.seedd == 1"], "unknown column 'config.seedd' in filter (did you mean 'config.seed'"),
    (["--sql", "DELETE FROM runs"], "refused SQL: DELETE statements are not allowed"),
    (["--sql", "SELECT * FROM read_csv('/etc/passwd')"], "table function read_csv() is not allowed"),
    (["config.seed == 1", "--sql", "SELECT 1"], "give either a filter"),
    (["--columns", "config.sed"], "unknown column 'config.sed' in columns"),
])
def test_errors_are_one_line_and_exit_2(logs, args, message):
    result = query(logs, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("mlxcore: error: ") and message in result.stderr and result.stderr.count("\n") == 1


def test_a_missing_logs_directory_is_an_error(tmp_path):
    result = query(tmp_path / "nowhere", "--format", "csv")
    assert result.returncode == 2 and "does not exist or is not a directory" in result.stderr


def _run_on_a_terminal(argv: list[str]) -> tuple[str, bytes]:
    """Run ``argv`` with stderr on a pseudo-terminal; returns (stdout, what the terminal received). The terminal
    says what it is (TERM): CI runs with TERM unset or ``dumb``, and a dumb terminal gets no progress bar."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "TERM": "xterm-256color"})
    os.close(slave)
    received = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    os.close(master)
    return out, received


def test_indexing_many_runs_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    logs = tmp_path / "logs"
    build_corpus(logs, 210, 2)
    backdate(logs)  # else the runs, written within the last two seconds, would be re-read each time
    argv = [sys.executable, "-m", "mlxcore", "query", str(logs), "--sql",
            "SELECT count(DISTINCT log_id) AS n FROM train", "--format", "csv"]
    out, terminal = _run_on_a_terminal(argv)
    assert out == "n\n210\n"
    # the runs closed their streams: the refresh reads the logger's summaries, the query loads the rows
    assert b"reading run metadata" in terminal and b"loading metric rows" in terminal
    assert b"loading metric files" not in terminal
    (logs / ".mlxcore" / "catalog.duckdb").unlink()
    for summaries in logs.glob("*/metrics/.summaries.json"):  # as if the runs had been killed: files parsed
        summaries.unlink()
    out, terminal = _run_on_a_terminal(argv)
    assert out == "n\n210\n" and b"loading metric files" in terminal
    (logs / ".mlxcore" / "catalog.duckdb").unlink()
    piped = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert piped.stdout == "n\n210\n" and piped.stderr == ""
    out, terminal = _run_on_a_terminal(argv)  # nothing to index: no bar
    assert out == "n\n210\n" and terminal == b""


def test_imports_stay_light(logs):
    heavy = ("duckdb", "pandas", "sqlglot", "numpy", "hydra", "omegaconf", "matplotlib")
    code = f"import sys, mlxcore; mlxcore.Reader; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    code = ("import sys\nfrom mlxcore.cli import main\n"
            f"sys.argv = ['mlxcore', 'query', {str(logs)!r}, 'log_id == 1', '--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'hydra', 'omegaconf') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
