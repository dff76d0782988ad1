"""Exactly once under concurrency: many processes opening and refreshing one catalog at the same moment end
with exactly one copy of each run and each row, whether the catalog is built, rebuilt or brought up to date."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlxcore.reader.synthetic import backdate, write_run

RUNS = 1000
ROWS = 5
OPENERS = 16

WORKER = r"""
import json, sys
from pathlib import Path
logs = Path(sys.argv[1])
import mlxcore
print("ready", flush=True)
sys.stdin.readline()  # blocks until the test writes the go, to all workers at once
reader = mlxcore.Reader(logs)
runs = int(reader.sql("SELECT count(*) AS n FROM runs").n[0])
distinct = int(reader.sql("SELECT count(DISTINCT log_id) AS n FROM runs").n[0])
rows = int(reader.sql("SELECT count(*) AS n FROM train").n[0])
print(json.dumps({"runs": runs, "distinct": distinct, "rows": rows}))
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("corpus") / "logs"
    for n in range(RUNS):
        write_run(logs, {"seed": n % 7, "lr": [0.1, 0.01][n % 2]}, {"train": [{"step": s, "loss": 1 / (s + 1 + n)}
                                                                         for s in range(ROWS)]})
    backdate(logs)
    return logs


def _open_all_at_once(logs: Path) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(logs)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(OPENERS)]
    try:
        for proc in procs:  # every process has imported mlxcore and waits
            assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=60)[1][-2000:]
    finally:
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("summaries", [True, False], ids=["logger-summaries", "files-parsed"])
def test_sixteen_processes_opening_at_once_see_each_row_exactly_once(corpus, tmp_path, summaries):
    logs = tmp_path / "logs"
    shutil.copytree(corpus, logs, symlinks=True)
    if not summaries:  # as if every run had been killed before closing its streams: each file is parsed
        for path in logs.glob("*/metrics/.summaries.json"):
            path.unlink()
    backdate(logs)
    expected = {"runs": RUNS, "distinct": RUNS, "rows": RUNS * ROWS}
    for _ in range(2):  # a first build, then a rebuild from scratch, each by 16 processes at once
        for path in (logs / ".mlxcore").glob("catalog.duckdb*"):
            path.unlink()
        assert _open_all_at_once(logs) == [expected] * OPENERS
    # new runs appear, and 16 processes bring the catalog up to date at once
    for n in range(20):
        write_run(logs, {"seed": 100 + n, "lr": 0.5}, {"train": [{"step": s, "loss": 0.5} for s in range(ROWS)]})
    backdate(logs)
    expected = {"runs": RUNS + 20, "distinct": RUNS + 20, "rows": (RUNS + 20) * ROWS}
    assert _open_all_at_once(logs) == [expected] * OPENERS
