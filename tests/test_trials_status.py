"""Search trials and the PRUNED status across the tools: ``mlxcore status`` shows PRUNED runs and one line per
study naming its best trial (minimize and maximize), ``rerun_failed`` leaves PRUNED points alone,
``skip_completed`` does not count them as done, ``cancel`` finds nothing to cancel in them, and the report does not
list them as failures.

The trials are real runs: a small seeded random search (``testsearch``, below) registered for the test through
a fresh plugin manager and launched in this process through the core's :class:`~mlxcore.sweepers.runner
.TrialRunner`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import mlxcore
from mlxcore import hookimpl
from mlxcore.launching import main_entry
from mlxcore.overrides import INTERVAL
from mlxcore.reader.trials import RUNNING, UNRECORDED, studies, trial_rows
from mlxcore.schedulers.observe import observe
from mlxcore.sweepers.base import Sweeper, TrialPoint

OPTIONS = {"n_trials": 8, "seed": 0, "study": "main", "metric": "train.loss", "direction": "minimize"}


class RandomSearch(Sweeper):
    """A seeded random search: intervals sampled uniformly, choices cycled (trial i takes choice i mod n), one
    trial at a time; each trial's state and objective (``last``) recorded like a search plugin records them."""

    name = "testsearch"

    def __init__(self, options: dict) -> None:
        self.options = {**OPTIONS, **options}

    @classmethod
    def from_settings(cls, options: dict) -> RandomSearch:
        return cls(options)

    def sweep(self, plan, runner) -> int:
        grid, dims = plan.search()
        rng = random.Random(self.options["seed"])
        metric = self.options["metric"]
        failed = False
        for number in range(self.options["n_trials"]):
            params = {d.key: rng.uniform(d.low, d.high) if d.form == INTERVAL else d.choices[number % len(d.choices)]
                      for d in dims}
            record = {"sweeper": self.name, "study": self.options["study"], "storage": "/nowhere/journal.log",
                      "number": number, "trial_id": number + 1, "params": params, "metric": metric,
                      "reduce": "last", "direction": self.options["direction"]}
            point = TrialPoint([*grid.fixed, *(d.override(params[d.key]) for d in dims)], record)
            for result in runner.run([point]):
                state = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED"}.get(result.status, "FAIL")
                value = runner.objective(result, metric, "last") if state != "FAIL" else None
                runner.record(result, state=state, value=value)
                failed = failed or state == "FAIL"
        return 1 if failed else 0


class SweeperPlugin:
    """Registers ``testsearch``, as an installed plugin would."""

    @hookimpl
    def register_sweepers(self, register):
        register(RandomSearch)


def task(ctx) -> None:
    """depth 1 and 2 complete; depth 3 logs a (too) good value and is pruned; depth 4 logs one and fails."""
    cfg = ctx.config
    for step in range(3):
        loss = (cfg.lr - 0.3) ** 2 + 0.1 * cfg.depth + 0.01 * step
        if cfg.depth >= 3:  # better than any finished trial: must never be the best
            loss = -1.0
        ctx.logger.log_metrics({"loss": loss, "acc": 1 - loss, "step": step}, log_name="train")
        if cfg.depth == 3:
            raise mlxcore.TrialPruned(f"hopeless at step {step}")
    if cfg.depth == 4:
        raise ValueError("boom")


def expected_loss(config: dict) -> float:
    return (config["lr"] - 0.3) ** 2 + 0.1 * config["depth"] + 0.02


def make_launcher(tmp_path: Path, plugins) -> Any:
    """``launch(*overrides)``: the task, launched in this process with the ``testsearch`` sweeper known (``plugins``:
    the ``fresh_plugins`` fixture, which restores the process's plugin manager afterwards)."""
    plugins.set_plugin_manager(plugins.new_plugin_manager(load_entry_points=False,
                                                          extra=(("test_sweeper", SweeperPlugin()),)))
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "lr": 0.1, "depth": 1}))
    logs = tmp_path / "logs"

    def run(*overrides: str) -> int:
        return main_entry(task, configs, None, [*overrides, f"+mlx.logger.parent_log_dir={logs}"])

    run.logs = logs  # type: ignore[attr-defined]
    return run


@pytest.fixture
def launch(tmp_path, fresh_plugins):
    return make_launcher(tmp_path, fresh_plugins)


def search(launch, **options) -> int:
    return launch("lr=interval(0,1)", "depth=choice(1,2,3,4)", "+mlx.sweeper.name=testsearch",
                  *(f"+mlx.sweeper.{k}={v}" for k, v in options.items()))


def info(logs: Path, log_id: int) -> dict:
    return yaml.safe_load((logs / str(log_id) / "metadata" / "info.yaml").read_text())


def config(logs: Path, log_id: int) -> dict:
    return yaml.safe_load((logs / str(log_id) / "metadata" / "config.yaml").read_text())


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ})


def expected_line(logs: Path, ids: range, study: str, metric: str, maximize: bool) -> str:
    """The status line of a study, computed from the runs' configs (not from what the sweeper recorded)."""
    done = [(log_id, config(logs, log_id)) for log_id in ids if config(logs, log_id)["depth"] <= 2]
    scored = [(1 - expected_loss(c) if maximize else expected_loss(c), log_id, c) for log_id, c in done]
    value, log_id, best = (max if maximize else min)(scored, key=lambda s: s[0])
    number = info(logs, log_id)["trial"]["number"]
    direction = "maximize" if maximize else "minimize"
    return (f"study {study} (testsearch): 8 trials: 4 COMPLETE, 2 PRUNED, 2 FAIL, 0 running; best trial {number} "
            f"(run {log_id}): {metric}.last={value:.6g} ({direction}) with lr={best['lr']:.6g}, depth={best['depth']}")


def test_status_names_each_studys_best_trial_for_minimize_and_maximize(launch):
    assert search(launch, seed=3) == 1  # two trials failed
    assert search(launch, seed=4, study="acc", metric="train.acc", direction="maximize") == 1
    logs = launch.logs
    statuses = [info(logs, i)["status"] for i in range(1, 17)]
    assert statuses == ["COMPLETE", "COMPLETE", "PRUNED", "FAILED"] * 4
    result = cli("status", str(logs))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines[2:18]]
    assert [(int(r[0]), r[1]) for r in rows] == list(enumerate(statuses, start=1))
    assert lines[18] == "16 run(s): 8 COMPLETE, 4 FAILED, 4 PRUNED"
    assert lines[19:] == [expected_line(logs, range(1, 9), "main", "train.loss", maximize=False),
                          expected_line(logs, range(9, 17), "acc", "train.acc", maximize=True)]
    # the pruned trials logged -1 (acc 2): better than every finished trial, yet not the best
    assert "=-1 " not in result.stdout and "=2 " not in result.stdout

    shown = cli("status", str(logs), "--studies", "--json")
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert [(s["study"], s["direction"], s["trials"], s["states"]) for s in found] == [
        ("main", "minimize", 8, {"COMPLETE": 4, "PRUNED": 2, "FAIL": 2}),
        ("acc", "maximize", 8, {"COMPLETE": 4, "PRUNED": 2, "FAIL": 2})]
    for study, line in zip(found, lines[19:]):
        best = study["best"]
        assert f"best trial {best['number']} (run {best['log_id']})" in line
        assert best["params"] == info(logs, best["log_id"])["trial"]["params"]
    assert cli("status", str(logs), "--studies").stdout.splitlines() == lines[19:]
    # only the listed runs count: the first study's runs, COMPLETE ones only
    some = cli("status", str(logs), "1-8", "--status", "COMPLETE").stdout.splitlines()
    assert some[-1].startswith("study main (testsearch): 4 trials: 4 COMPLETE, 0 PRUNED, 0 FAIL, 0 running; best ")
    runs = json.loads(cli("status", str(logs), "3", "--json").stdout)
    assert runs[0]["status"] == "PRUNED" and runs[0]["trial"]["state"] == "PRUNED"
    assert runs[0]["trial"]["study"] == "main" and runs[0]["trial"]["number"] == 2


def test_running_and_unrecorded_trials_are_counted_apart(launch):
    assert search(launch, n_trials=3) == 0
    states = observe(launch.logs)
    states[1].status = "RUNNING"  # its run started again (resumed)
    del states[2].info["trial"]["state"]  # its run ended; its sweeper did not tell the study yet
    (study,) = studies(trial_rows((s.log_id, s.status, s.info) for s in states))
    assert study.counts == {"COMPLETE": 1, RUNNING: 1, UNRECORDED: 1}
    assert study.best is not None and study.best["log_id"] == 1
    assert study.line().startswith("study main (testsearch): 3 trials: 1 COMPLETE, 0 PRUNED, 0 FAIL, 1 running, "
                                   "1 ended, not recorded yet; best trial 0 (run 1): train.loss.last=")
    assert "no COMPLETE trial with a value yet" in studies(trial_rows([(1, "RUNNING", states[0].info)]))[0].line()
    assert "study" not in cli("status", str(launch.logs), "--metric", "train.loss").stdout.split("run(s):")[0]


def test_a_pruned_run_is_final_not_rerun_not_completed_and_not_a_failure(launch):
    logs = launch.logs
    assert launch("lr=0.1", "depth=3") == 0  # TrialPruned outside a search: PRUNED, exit code 0
    assert launch("lr=0.1", "depth=4") == 1
    assert [info(logs, i)["status"] for i in (1, 2)] == ["PRUNED", "FAILED"]
    assert "trial" not in info(logs, 1)
    before = (logs / "1" / "metadata" / "info.yaml").read_text()
    # rerun_failed runs the FAILED point again, in its own run, and leaves the PRUNED one alone
    assert launch("lr=0.1", "depth=3,4", "+mlx.rerun_failed=true") == 1
    assert sorted(int(p.name) for p in logs.iterdir() if p.name.isdigit()) == [1, 2]
    assert (logs / "1" / "metadata" / "info.yaml").read_text() == before
    assert info(logs, 2)["history"]
    # skip_completed: a PRUNED point has no complete result, so it runs again (a new run)
    assert launch("lr=0.1", "depth=3", "+mlx.skip_completed=true") == 0
    assert info(logs, 3)["status"] == "PRUNED"

    result = cli("status", str(logs), "--status", "pruned")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:2] for line in result.stdout.splitlines()[2:] if line.strip() and "run(s)" not in line]
    assert rows == [["1", "PRUNED"], ["3", "PRUNED"]]
    assert result.stdout.splitlines()[-1] == "2 run(s): 2 PRUNED"  # no trial record: no study line
    cancelled = cli("cancel", str(logs), "1")
    assert cancelled.returncode == 0 and cancelled.stdout == "run 1: PRUNED, nothing to cancel\n"

    from mlxcore import Reader
    from mlxcore.report.data import read_runs

    with Reader(logs) as reader:
        data = read_runs(reader, "", "train.loss")
    assert [f["log_id"] for f in data.failures] == [2] and data.failures_total == 1
    assert {t["status"]: t["runs"] for t in data.totals} == {"PRUNED": 2, "FAILED": 1}
