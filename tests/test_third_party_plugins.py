"""A reader and a logger from another distribution, found through a real ``mlxcore`` entry point, serve every
command: runs written by the third-party logger are read by the third-party reader in ``status``, ``query``
(filter and SQL), ``plot`` and ``cancel --filter``, in new processes, as a user's installed plugin would be.

The distribution is a package plus a ``.dist-info`` directory (``entry_points.txt``) on ``PYTHONPATH``: what
``pip install`` leaves, found by ``importlib.metadata`` the same way, without installing anything."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = '''
import os
from pathlib import Path

from mlxcore import hookimpl
from mlxcore.loggers.base import RunLogger
from mlxcore.reader.engine import DuckDBReader


def trace(line):
    with open(os.environ["THIRD_PARTY_TRACE"], "a") as handle:
        handle.write(line + "\\n")


class TracingReader(DuckDBReader):
    name = "tracing"

    def filter(self, *args, **kwargs):
        trace("reader.filter")
        return super().filter(*args, **kwargs)

    def sql(self, *args, **kwargs):
        trace("reader.sql")
        return super().sql(*args, **kwargs)

    def curves(self, *args, **kwargs):
        trace("reader.curves")
        return super().curves(*args, **kwargs)


class TracingLogger(RunLogger):
    name = "tracing"

    def on_metrics(self, metrics, log_name):
        trace(f"logger.on_metrics {log_name}")


@hookimpl
def register_readers(register):
    register(TracingReader)


@hookimpl
def register_loggers(register):
    register(TracingLogger)
'''

WRITE = '''
import mlxcore
for seed in range(3):
    with mlxcore.open_run("logs", {"seed": seed, "lr": 0.1}, mlx={"logger": {"name": "tracing"},
                                                                "reader": {"name": "tracing"}}) as run:
        for step in range(4):
            run.logger.log_metrics({"step": step, "loss": 1.0 / (step + 1 + seed)}, log_name="train")
'''


@pytest.fixture
def third_party(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    (site / "thirdparty_mlx").mkdir(parents=True)
    (site / "thirdparty_mlx" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    info = site / "thirdparty_mlx-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-mlx\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mlxcore]\ntracing = thirdparty_mlx\n")
    trace = tmp_path / "trace.txt"
    paths = [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "THIRD_PARTY_TRACE": str(trace),
            "MLXCORE_STRICT_PLUGINS": "1"}


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


def traced(env: dict[str, str]) -> list[str]:
    path = Path(env["THIRD_PARTY_TRACE"])
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def test_a_third_party_reader_and_logger_serve_every_command(third_party, tmp_path):
    env = third_party
    listing = run(env, tmp_path, "-m", "mlxcore", "plugins").stdout
    assert "tracing" in listing and "thirdparty-mlx" in listing
    run(env, tmp_path, "-c", WRITE)
    assert traced(env) == ["logger.on_metrics train"] * 12
    logs = str(tmp_path / "logs")
    # the third-party logger's runs are read at full speed: a first index takes their summaries, leaves the rows
    summaries = run(env, tmp_path, "-c", "from mlxcore.reader.engine import DuckDBReader as R; "
                    f"print(R({logs!r}).catalog.load_shape()['pending'])").stdout
    assert summaries.strip() == "{'train': 3}"

    status = run(env, tmp_path, "-m", "mlxcore", "status", logs, "--metric", "train.loss").stdout
    assert "3 run(s): 3 COMPLETE" in status and traced(env) == ["reader.filter"]

    query = run(env, tmp_path, "-m", "mlxcore", "query", logs, "config.seed >= 1", "--format", "csv").stdout
    assert len(query.strip().splitlines()) == 3 and traced(env) == ["reader.filter"]

    sql = run(env, tmp_path, "-m", "mlxcore", "query", logs, "--sql", "SELECT count(*) AS n FROM train").stdout
    assert "12" in sql and traced(env) == ["reader.sql"]

    run(env, tmp_path, "-m", "mlxcore", "plot", logs, "--metric", "train.loss", "--x", "step", "-o", "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0 and traced(env) == ["reader.curves"]

    cancel = run(env, tmp_path, "-m", "mlxcore", "cancel", logs, "--filter", "config.seed == 0")
    assert traced(env) == ["reader.filter"], cancel.stdout + cancel.stderr



TASK = '''
import time
import mlxcore

@mlxcore.launch(config_path="./configs")
def main(ctx):
    ctx.logger.log_metrics({"step": 0, "loss": 1.0 / (1 + ctx.config.seed)}, log_name="train")
    if ctx.config.mode == "sleep":
        time.sleep(300)

if __name__ == "__main__":
    main()
'''


def test_a_third_party_scheduler_logger_and_reader_serve_sub_status_and_cancel(third_party, tmp_path):
    """``mlxcore sub`` submits through the example scheduler package (its own distribution); its jobs log through
    the third-party logger; ``status`` reads them with the third-party reader; ``cancel`` ends a job through the
    scheduler's own cancel."""
    from mlxcore import store
    from mlxcore.testing import wait_until

    example = Path(__file__).parents[1] / "examples" / "third_party_scheduler"
    info = tmp_path / "site" / "mlxcore_pidfile-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlxcore-pidfile\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mlxcore]\npidfile = mlx_pidfile\n")
    env = {**third_party, "PYTHONPATH": os.pathsep.join([str(example), third_party["PYTHONPATH"]]),
           "PIDFILE_STATE": str(tmp_path / "pidfile"),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    (tmp_path / "configs").mkdir()
    (tmp_path / "main.py").write_text(TASK)
    (tmp_path / "configs" / "config.yaml").write_text("seed: 0\nmode: ok\n")
    (tmp_path / "configs" / "mlx.yaml").write_text("logger:\n  name: tracing\nreader:\n  name: tracing\n")
    (tmp_path / "job.sh").write_text("#!/bin/bash\npython main.py seed=1,2\npython main.py seed=9 mode=sleep\n")
    logs = tmp_path / "logs"
    submitted = run(env, tmp_path, "-m", "mlxcore", "sub", "job.sh", "--scheduler", "pidfile", "--logs", str(logs))
    assert "3" in submitted.stdout, submitted.stdout

    def statuses() -> dict[str, str]:
        return {d.name: (store.open_run_dir(d).read_info() or {}).get("status", "") for d in logs.iterdir()
                if d.name.isdigit()}

    def traces() -> int:  # read without consuming: the third run records RUNNING before its row is logged
        path = Path(env["THIRD_PARTY_TRACE"])
        return len(path.read_text().splitlines()) if path.exists() else 0

    wait_until(lambda: statuses() == {"1": "COMPLETE", "2": "COMPLETE", "3": "RUNNING"} and traces() >= 3,
               timeout=60, what="two runs to complete and the third to run and log its row")
    assert sorted(traced(env)) == ["logger.on_metrics train"] * 3
    status = run(env, tmp_path, "-m", "mlxcore", "status", str(logs)).stdout
    assert "2 COMPLETE" in status and "1 RUNNING" in status and traced(env) == ["reader.filter"], status
    pid = (store.open_run_dir(logs / "3").read_info() or {})["pid"]
    run(env, tmp_path, "-m", "mlxcore", "cancel", str(logs), "--filter", "config.seed == 9")
    assert traced(env) == ["reader.filter"]
    wait_until(lambda: not store.process_alive(pid), timeout=30, what="the cancelled task to end")
    wait_until(lambda: statuses()["3"] == "CANCELLED", timeout=30, what="run 3 to be CANCELLED")
