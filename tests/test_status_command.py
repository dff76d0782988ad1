"""``mlxcore status`` on real runs: states, the config keys that vary, metric values, durations, filters, --watch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from mlxcore.testing import wait_until


def status(project, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "status", str(project.logs), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def header_and_rows(output: str) -> tuple[list[str], list[list[str]]]:
    lines = output.splitlines()
    return lines[0].split(), [line.split() for line in lines[2:] if line.strip() and "run(s):" not in line]


def test_the_table_shows_varying_keys_metrics_and_durations(project):
    assert project.run("x=1,2", "opt.name=sgd,adam").returncode == 0
    result = status(project, "--metric", "setup.x", "--metric", "end.done.count")
    assert result.returncode == 0, result.stderr
    header, rows = header_and_rows(result.stdout)
    assert header[:2] == ["id", "status"]
    assert "x" in header and "opt.name" in header  # they vary across the runs
    assert "opt.lr" not in header and "seed" not in header and "mode" not in header  # the same everywhere
    assert "setup.x.last" in header and "end.done.count" in header and "duration" in header
    assert [row[:2] for row in rows] == [["1", "COMPLETE"], ["2", "COMPLETE"], ["3", "COMPLETE"], ["4", "COMPLETE"]]
    x = header.index("setup.x.last")
    assert sorted(row[x] for row in rows) == ["1", "1", "2", "2"]
    assert all(row[header.index("duration")].endswith("s") for row in rows)
    assert result.stdout.rstrip().endswith("4 run(s): 4 COMPLETE")


def test_ids_and_filter_strings_select_runs(project):
    assert project.run("x=1,2,3", "mode=fail_if", "+fail_at=2").returncode == 1
    result = status(project, "1-3", "config.x >= 2")
    assert result.returncode == 0, result.stderr
    _, rows = header_and_rows(result.stdout)
    assert [row[:2] for row in rows] == [["2", "FAILED"], ["3", "COMPLETE"]]
    assert "ValueError: boom at x=2" in result.stdout
    only_failed = status(project, "--status", "FAILED", "--json")
    assert [row["log_id"] for row in json.loads(only_failed.stdout)] == [2]
    combined = status(project, "config.x >= 2", "--filter", "info.status == 'COMPLETE'", "--json")
    assert [row["log_id"] for row in json.loads(combined.stdout)] == [3]


def test_a_bad_metric_or_filter_is_one_line_naming_the_choices(project):
    assert project.run().returncode == 0
    result = status(project, "--metric", "setup.seed_sen")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "setup.seed_seen.last" in result.stderr
    result = status(project, "config.y == 1")
    assert result.returncode == 2 and "config.x" in result.stderr and "Traceback" not in result.stderr


def test_a_running_run_shows_its_time_so_far_and_watch_follows_it_to_the_end(project, tmp_path):
    env = {"MLXCORE_LOCAL_STATE": str(tmp_path / "pool")}
    submitted = project.run("x=1,2", "mode=sleep", "+sleep=3", "+mlx.use_scheduler=true",
                            "+mlx.scheduler.detach=true", "+mlx.scheduler.workers=1", env=env)
    assert submitted.returncode == 0, submitted.stderr

    def running() -> dict | None:
        info = project.info(1)
        return info if info["status"] == "RUNNING" else None

    start = wait_until(running, timeout=30, what="run 1 to start")["start_timestamp"]
    before = time.time()
    result = status(project, env=env)
    after = time.time()
    header, rows = header_and_rows(result.stdout)
    assert [row[:2] for row in rows] == [["1", "RUNNING"], ["2", "PENDING"]]
    so_far = float(rows[0][header.index("duration")].rstrip("s"))  # its time so far, when the command ran
    assert before - start - 0.06 <= so_far <= after - start + 0.06  # shown to 0.1 s
    watched = status(project, "--watch", "--interval", "0.3", env=env)  # not a terminal: a table per change
    assert watched.returncode == 0, watched.stderr
    tables = [t for t in watched.stdout.split("\n\n") if t.strip()]
    assert len(tables) >= 2
    assert tables[-1].rstrip().endswith("2 run(s): 2 COMPLETE")


def test_summary_totals_each_sweep_by_status(project):
    """Two launches, one of them with failures: one group per sweep and status, GPU-hours from what each run was
    given, CPU-hours not known outside a job."""
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert project.run("x=1,2,3", env=env).returncode == 0
    assert project.run("x=4,5", "mode=fail", env=env).returncode != 0
    result = status(project, "--summary", "--json")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert [(g["status"], g["runs"]) for g in groups] == [("COMPLETE", 3), ("FAILED", 2)]
    assert len({g["sweep"] for g in groups}) == 2 and "x=1,2,3" in groups[0]["command"]
    infos = [project.info(i) for i in project.run_ids()]
    assert len({info["sweep"] for info in infos[:3]}) == 1  # the runs of one launch share it
    assert groups[0]["gpu_hours"] == sum(info["gpu_hours"] for info in infos[:3]) > 0
    assert groups[0]["elapsed_s"] == sum(info["duration_s"] for info in infos[:3])
    assert groups[0]["cpu_hours"] is None and groups[0]["known"]["cpu_hours"] == 0
    table = status(project, "--summary").stdout
    assert "5 run(s) in 2 sweep(s)" in table and "gpu-hours" in table and "x=4,5" in table, table


def test_watch_backs_off_while_nothing_changes_and_comes_back_after_a_change(capsys):
    """The waits grow by half while the runs stay as they were (up to 30 s) and start again after a change."""
    from types import SimpleNamespace

    from mlxcore.cli.status_command import _watch

    frames = [["RUNNING"]] * 10 + [["COMPLETE"]]
    frames[5] = ["PENDING"]  # a change in the middle
    seen = iter(frames)

    def render():
        statuses = next(seen)
        return [SimpleNamespace(log_id=1, status=s) for s in statuses], " ".join(statuses)

    waits: list[float] = []
    _watch(render, 2.0, sleep=waits.append)
    assert waits[:5] == [2.0, 3.0, 4.5, 6.75, 10.125] and waits[5] == 2.0  # reset by the change
    assert waits[6] == 2.0 and waits[7] == 3.0 and len(waits) == 10
    long = []
    many = iter([["RUNNING"]] * 30 + [["COMPLETE"]])
    _watch(lambda: ([SimpleNamespace(log_id=1, status=s) for s in next(many)], ""), 2.0, sleep=long.append)
    assert max(long) == 30.0
