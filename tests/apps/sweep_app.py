"""A task searched by the ``ladder`` sweeper defined here: a third-party sweeper in a few dozen lines.

The sweeper registers itself with the process's plugin manager (as an installed plugin's entry point would), so
the jobs that re-run this script know it too. ``ladder`` takes each sampled dimension's values at evenly spaced
points (trial i of n: ``low + (high - low) * i / (n - 1)``; a choice cycles), runs ``parallel`` trials at a time,
and records each trial's objective. Its ``ctx.trial`` prunes a trial whose reported loss is above the
``prune_above`` option.
"""

import json
import os
import sys
from pathlib import Path

import mlxcore
from mlxcore import hookimpl
from mlxcore.errors import ConfigError
from mlxcore.plugins import PluginInfo, get_plugin_manager
from mlxcore.sweepers.base import Sweeper, TrialPoint

OPTIONS = {"n_trials": 4, "parallel": 1, "metric": "train.loss", "prune_above": None}


class LadderTrial:
    pruned_exceptions = ()

    def __init__(self, record, run_dir):
        self.number = record["number"]
        self.params = record["params"]
        self.prune_above = record.get("prune_above")
        self.reports = Path(run_dir) / "ladder-reports.jsonl"

    def report(self, value, step):
        with open(self.reports, "a") as handle:
            handle.write(json.dumps({"step": step, "value": value, "pid": os.getpid()}) + "\n")
        self.last = value

    def should_prune(self):
        return self.prune_above is not None and getattr(self, "last", 0) > self.prune_above


class LadderSweeper(Sweeper):
    name = "ladder"

    def __init__(self, options):
        self.options = {**OPTIONS, **options}

    @classmethod
    def from_settings(cls, options):
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ConfigError(f"unknown ladder option {sorted(unknown)[0]!r}; valid: {', '.join(sorted(OPTIONS))}")
        if options.get("metric", "train.loss") != "train.loss":
            raise ConfigError("the ladder reads train.loss only")
        return cls(options)

    def sweep(self, plan, runner):
        grid, dims = plan.search()
        if not dims:
            raise ConfigError("nothing to search")
        n, parallel = self.options["n_trials"], self.options["parallel"]
        code = 0
        for grid_point in grid.points():
            for start in range(0, n, parallel):
                points = []
                for number in range(start, min(n, start + parallel)):
                    params = {d.key: self._value(d, number, n) for d in dims}
                    record = {"sweeper": self.name, "study": " ".join(o.text for o in grid_point) or "main",
                              "number": number, "params": params, "prune_above": self.options["prune_above"],
                              "direction": "minimize", "metric": self.options["metric"]}
                    points.append(TrialPoint([*grid_point, *(d.override(params[d.key]) for d in dims)], record))
                for result in runner.run(points, poll_interval=0.2):
                    value = runner.objective(result, self.options["metric"], "last")
                    state = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED"}.get(result.status, "FAIL")
                    runner.record(result, state=state, value=value if state == "COMPLETE" else None)
                    code = code or (1 if state == "FAIL" else 0)
        return code

    @staticmethod
    def _value(dim, i, n):
        if dim.form == "interval":
            return dim.low + (dim.high - dim.low) * i / max(1, n - 1)
        return dim.choices[i % len(dim.choices)]

    @classmethod
    def open_trial(cls, record, run_dir):
        return LadderTrial(record, run_dir)


@hookimpl
def register_sweepers(register):
    register(LadderSweeper)


@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    number = ctx.trial.number if ctx.trial is not None else -1
    for epoch in range(3):
        loss = (cfg.x - 1) ** 2 + (cfg.get("y", 0) or 0) ** 2 + 1.0 / (epoch + 1)
        ctx.logger.log_metrics({"loss": loss, "epoch": epoch, "trial": number}, log_name="train")
        if ctx.trial is not None:
            ctx.trial.report(loss, epoch)
            if ctx.trial.should_prune():
                raise mlxcore.TrialPruned(f"loss {loss} at epoch {epoch}")
    if cfg.get("fail_at") is not None and cfg.x == cfg.fail_at:
        raise ValueError(f"boom at x={cfg.x}")


if __name__ == "__main__":  # as an installed plugin's entry point would: the jobs running this script know it too
    get_plugin_manager().add_plugin(sys.modules[__name__], PluginInfo(name="ladder_sweeper", builtin=False))
    main()
