"""MLXP's reading API (``reader.search``, the lazy list of runs, groupby, aggregate and MLXP's other maps) against
hand-computed expectations; MLXP's old names (``+mlxp.*``, ``configs/mlxp.yaml``, ``ctx.mlxp``); and MLXP's own
tutorial, run as MLXP wrote it with only the names README's "Coming from MLXP" gives."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlxcore import (
    ArtifactError,
    CheckpointNotFoundError,
    ConfigError,
    QueryError,
    UnknownChoiceError,
    store,
)
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.mlxp_api import DataDict, DataFrame, GroupedDataFrame
from mlxcore.reader.synthetic import write_run

APPS = Path(__file__).parent / "apps"
TRAIN = {  # log_id -> train.loss; run 4 also logs a row without a loss, run 5 was never started
    1: [1.0, 0.5, 0.25], 2: [3.0, 1.5, 0.75], 3: [2.0, 2.0, 1.0], 4: [4.0, 1.0, 0.5]}


def mean(x):
    return np.mean(np.array(x), axis=0)


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> DuckDBReader:
    logs = tmp_path_factory.mktemp("mlxp_api") / "logs"

    def rows(log_id):
        return [{"loss": loss, "epoch": epoch} for epoch, loss in enumerate(TRAIN[log_id])]

    write_run(logs, {"seed": 1, "opt": {"lr": 0.1}, "model": {"depth": 2}}, {"train": rows(1), "test": [{"acc": 0.5}]})
    write_run(logs, {"seed": 2, "opt": {"lr": 0.1}, "model": {"depth": 2}}, {"train": rows(2)})
    write_run(logs, {"seed": 1, "opt": {"lr": 0.01}, "model": {"depth": 4}}, {"train": rows(3), "test": [{"acc": 0.7}]})
    write_run(logs, {"seed": 2, "opt": {"lr": 0.01}, "tags": ["a", "b"]}, {"train": [*rows(4), {"epoch": 3}]})
    write_run(logs, {"seed": 3, "opt": {"lr": 0.1}, "model": {"depth": 2}}, status=store.SUBMITTED)
    return DuckDBReader(logs)


@pytest.fixture
def queries(reader, monkeypatch) -> list[str]:
    """The SQL queries reading metric rows made during the test."""
    seen: list[str] = []
    rows = reader.rows

    def counting(sql, params=None, what="query"):
        if "FROM metrics." in sql:
            seen.append(sql)
        return rows(sql, params, what)

    monkeypatch.setattr(reader, "rows", counting)
    return seen


# -- search -------------------------------------------------------------------------------------------------
def test_search_gives_a_lazy_list_of_runs_in_log_id_order(reader):
    results = reader.search(query_string="config.opt.lr == 0.1")
    assert isinstance(results, DataFrame) and isinstance(results[0], DataDict)
    assert [r["log_id"] for r in results] == [1, 2, 5]
    assert len(reader.search()) == 5
    assert results[0]["config.model.depth"] == 2 and results[0]["info.status"] == "COMPLETE"
    keys = results.keys()
    assert {"train.loss", "train.epoch", "test.acc", "config.seed", "info.log_dir"} <= set(keys)
    assert not [k for k in keys if k.endswith((".last", ".count", ".mean"))]  # mlxcore's summaries are not MLXP's
    lazy = results.toPandas()
    assert (lazy["train.loss"] == "METRIC").all() and "METRIC" in repr(results)


def test_a_metric_loads_on_first_access_with_one_query_per_stream_for_all_runs(reader, queries):
    results = reader.search("")
    assert queries == []
    assert results[0]["train.loss"] == TRAIN[1]
    assert results[1]["train.loss"] == TRAIN[2] and results[2]["train.epoch"] == [0, 1, 2]
    assert len(queries) == 1
    assert results[0]["test.acc"] == [0.5] and results[1]["test.acc"] == []
    assert len(queries) == 2
    assert results[3]["train.loss"] == TRAIN[4] and results[3]["train.epoch"] == [0, 1, 2, 3]  # no null in lists
    assert results[4]["train.loss"] == [] and results[4]["status"] == "SUBMITTED"
    assert len(queries) == 2


def test_as_pandas_loads_every_metric_list(reader):
    frame = reader.search("info.status == 'COMPLETE'", asPandas=True)
    assert isinstance(frame, pd.DataFrame)
    assert frame["log_id"].tolist() == [1, 2, 3, 4]
    assert frame["train.loss"].tolist() == [TRAIN[i] for i in (1, 2, 3, 4)]
    assert frame["test.acc"].tolist() == [[0.5], [], [0.7], []]
    assert frame["config.tags"].tolist()[3] == ["a", "b"]  # lists come back as lists, not JSON text
    same = reader.search(query_string="info.status == 'COMPLETE'", result_format="pandas")
    pd.testing.assert_frame_equal(frame, same)
    assert isinstance(reader.search(asPandas=False), DataFrame)
    with pytest.raises(UnknownChoiceError, match="result_format.*datadict, pandas"):
        reader.search("", result_format="records")
    with pytest.raises(QueryError, match="config.opt.lrr"):
        reader.search("config.opt.lrr < 1")


def test_column_access_diff_sort_and_merge(reader):
    results = reader.search("info.status == 'COMPLETE'")
    assert results[:]["config.seed"] == [1, 2, 1, 2]
    assert results.column("train.loss") == [TRAIN[i] for i in (1, 2, 3, 4)]
    assert results.diff() == ["config.model.depth", "config.opt.lr", "config.seed", "config.tags"]
    assert results.diff("info.status") == []
    ordered = results.sort(["config.seed", "config.opt.lr"], ascending=False)
    assert [r["log_id"] for r in ordered] == [2, 4, 1, 3]
    assert [r["log_id"] for r in results.sort("config.model.depth")] == [1, 2, 3, 4]  # None last
    merged = results.merge(results.map((len, "train.loss")))
    assert [r["flen.train.loss"] for r in merged] == [3, 3, 3, 3] and merged[0]["config.seed"] == 1
    assert "flen.train.loss" not in results[0]  # nothing changes in place


# -- groupby and the maps --------------------------------------------------------------------------------------
def test_groupby_keys_groups_and_a_key_some_runs_lack(reader):
    results = reader.search("")
    grouped = results.groupby(["config.opt.lr"])
    assert isinstance(grouped, GroupedDataFrame)
    assert list(grouped.keys()) == [(0.01,), (0.1,)]
    assert [r["log_id"] for r in grouped[(0.1,)]] == [1, 2, 5]
    by_depth = results.groupby("config.model.depth")  # MLXP: KeyError, or a shorter key for run 4
    assert list(by_depth.keys()) == [(2,), (4,), (None,)]
    assert [r["log_id"] for r in by_depth[(None,)]] == [4]
    frame = grouped.toPandas()
    assert frame.index.names == ["config.opt.lr", None] and len(frame) == 5
    with pytest.raises(QueryError, match=r"unknown column 'config.opt.lrr' in groupby \(did you mean 'config.opt.lr'"):
        results.groupby(["config.opt.lrr"])
    empty = reader.search("config.seed > 10")
    assert len(empty) == 0 and len(empty.groupby("config.opt.lr")) == 0  # nothing matched: no group, no error
    assert empty.groupby("config.opt.lr").aggregate((mean, "train.loss")).toPandas().empty


def test_aggregate_means_over_the_runs_of_each_group(reader, queries):
    grouped = reader.search("info.status == 'COMPLETE'").groupby(["config.opt.lr"])
    def lengths(lists):
        return [len(values) for values in lists]

    aggregated = grouped.aggregate([(mean, "train.loss"), (lengths, "train.epoch")])
    assert len(queries) == 1  # every group's lists in one query
    assert isinstance(aggregated, GroupedDataFrame) and list(aggregated.keys()) == [(0.01,), (0.1,)]
    assert aggregated[(0.1,)][0]["fmean.train.loss"].tolist() == [2.0, 1.0, 0.5]      # runs 1 and 2
    assert aggregated[(0.01,)][0]["fmean.train.loss"].tolist() == [3.0, 1.5, 0.75]    # runs 3 and 4
    assert aggregated[(0.01,)][0]["flengths.train.epoch"] == [3, 4]  # run 4 logged an epoch without a loss
    named = grouped.aggregate([(mean, "train.loss", "avg"), (len, "config.seed", "n")], ungroup=True)
    assert isinstance(named, DataFrame)
    assert [(r["config.opt.lr"], r["n"], r["avg"].tolist()) for r in named] == [
        (0.01, 2, [3.0, 1.5, 0.75]), (0.1, 2, [2.0, 1.0, 0.5])]
    whole = reader.search("info.status == 'COMPLETE'").aggregate((max, "config.seed"))
    assert len(whole) == 1 and whole[0]["fmax.config.seed"] == 2
    assert "fmean.train.loss" in repr(aggregated)


def test_the_best_setting_per_group_as_in_mlxps_tutorial(reader):
    def argmin(x):
        x = np.array(x)
        return x[:, -1] == np.min(x[:, -1])

    grouped = reader.search("info.status == 'COMPLETE'").groupby(["config.seed", "config.opt.lr"])
    best = grouped.aggregate((mean, "train.loss")).filter((argmin, "fmean.train.loss"), bygroups=["config.seed"])
    # seed 1: last losses 0.25 (lr 0.1) and 1.0 (lr 0.01); seed 2: 0.75 (lr 0.1) and 0.5 (lr 0.01)
    assert list(best.keys()) == [(1, 0.1), (2, 0.01)]
    selected = grouped.select(best.keys()).aggregate((mean, "test.acc"))
    assert [(k, g[0]["fmean.test.acc"].tolist()) for k, g in selected.items()] == [((1, 0.1), [0.5]), ((2, 0.01), [])]
    flat = grouped.aggregate((mean, "train.loss")).filter((argmin, "fmean.train.loss"), bygroups="config.seed",
                                                          ungroup=True)
    assert [(r["config.seed"], r["config.opt.lr"]) for r in flat] == [(1, 0.1), (2, 0.01)]


def test_transform_map_apply_and_filter(reader):
    results = reader.search("info.status == 'COMPLETE'")

    def last(losses):
        return [values[-1] for values in losses]

    assert [r["flast.train.loss"] for r in results.transform((last, "train.loss"))] == [0.25, 0.75, 1.0, 0.5]
    assert [r["first"] for r in results.map((lambda v: v[0], "train.loss", "first"))] == [1.0, 3.0, 2.0, 4.0]

    def ratio(losses, seed):
        return losses[-1] / seed

    rowwise = results.apply((ratio, ("train.loss", "config.seed")), map_type="Rowwise")
    assert [r["fratio.train.loss_config.seed"] for r in rowwise] == [0.25, 0.375, 1.0, 0.25]
    generic = results.apply((lambda seeds: sum(seeds), "config.seed", "total"))
    assert len(generic) == 1 and generic[0]["total"] == 6
    assert len(results.apply((mean, "train.loss"), map_type="Columnwise")) == 1
    assert len(results.apply((last, "train.loss"), map_type="Columnwise")) == 4

    def small(losses):
        return [values[-1] < 0.6 for values in losses]

    assert [r["log_id"] for r in results.filter((small, "train.loss"))] == [1, 4]
    grouped = results.groupby("config.opt.lr").filter((small, "train.loss"))
    assert {k: [r["log_id"] for r in g] for k, g in grouped.items()} == {(0.01,): [4], (0.1,): [1]}
    with pytest.raises(QueryError, match="one boolean per row"):
        results.filter((lambda x: True, "config.seed"))
    with pytest.raises(QueryError, match="one value per row"):
        results.transform((mean, "config.seed"))
    with pytest.raises(QueryError, match=r"a map is \(function, input keys"):
        results.aggregate(("mean", "train.loss"))
    with pytest.raises(UnknownChoiceError, match="map_type"):
        results.apply((mean, "train.loss"), map_type="Cellwise")


def test_one_query_per_stream_for_many_runs(tmp_path):
    logs = tmp_path / "logs"
    for n in range(200):
        write_run(logs, {"seed": n % 5, "opt": {"lr": [0.1, 0.01][n % 2]}},
                  {"train": [{"loss": 1.0 / (e + 1 + n % 2), "epoch": e} for e in range(50)], "test": [{"acc": n}]})
    reader = DuckDBReader(logs)
    calls = []
    rows = reader.rows
    reader.rows = lambda sql, params=None, what="query": ("FROM metrics." in sql and calls.append(sql)) or rows(
        sql, params, what)
    start = time.perf_counter()
    aggregated = reader.search("").groupby("config.opt.lr").aggregate((mean, ("train.loss", "test.acc")))
    elapsed = time.perf_counter() - start
    assert len(calls) == 2  # train and test, for all 200 runs
    assert aggregated[(0.1,)][0]["fmean.train.loss"][:2].tolist() == [1.0, 0.5]
    assert aggregated[(0.01,)][0]["fmean.test.acc"].tolist() == [100.0]  # mean of 1, 3, ..., 199
    assert elapsed < 5, elapsed


# -- a run's files ---------------------------------------------------------------------------------------------
def test_a_runs_artifacts_and_checkpoints_load_as_the_logger_saved_them(tmp_path):
    import mlxcore

    with mlxcore.open_run(tmp_path / "logs", config={"seed": 1}) as run:
        run.logger.log_metrics({"loss": 1.0}, log_name="train")
        run.logger.log_checkpoint({"epoch": 3}, log_name="last_ckpt")
        run.logger.log_artifacts({"w": [1, 2]}, artifact_name="weights", artifact_format="json")
    row = DuckDBReader(tmp_path / "logs").search()[0]
    assert row.load_checkpoint("last_ckpt") == {"epoch": 3}
    assert row.load_artifacts("weights") == {"w": [1, 2]}
    assert row.load_checkpoint("other", default=None) is None
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint 'other'"):
        row.load_checkpoint("other")
    with pytest.raises(ArtifactError, match="'model' of run 1 found in any format"):
        row.load_artifacts("model")
    with pytest.raises(KeyError, match="load_artifacts"):
        row["artifact.pickle."]
    with pytest.raises(ArtifactError, match="not a run"):
        DataFrame([row]).aggregate((len, "train.loss"))[0].load_checkpoint("last_ckpt")


# -- MLXP's old names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "message"), [
    ("+mlxp.logger.forced_log_id=1", "mlxp.* settings are mlx.* in mlxcore: write +mlx.logger.forced_log_id=1"),
    ("mlxp.use_scheduler=true", "mlxp.* settings are mlx.* in mlxcore: write mlx.use_scheduler=true"),
    ("++mlxpy.logger.parent_log_dir=./new",
     "mlxpy.* settings are mlx.* in mlxcore: write ++mlx.logger.parent_log_dir=./new"),
    ("+mlxp.use_version_manager=False,True", "write +mlx.use_version_manager=False,True"),
    ("~mlxp.logger", "mlxp.* settings are mlx.* in mlxcore: write ~mlx.logger"),
    ("+mlxp=1", "mlxp.* settings are mlx.* in mlxcore: write +mlx=1"),
])
def test_mlxp_overrides_point_to_their_mlx_name(tmp_path, override, message):
    from mlxcore.overrides import parse_command_line

    with pytest.raises(ConfigError) as info:
        parse_command_line(["seed=1", override], tmp_path)
    assert message in str(info.value)
    assert parse_command_line(["+mlxpx.a=1"], tmp_path).fixed[0].key == "mlxpx.a"  # only the exact prefixes


def test_an_mlxp_override_stops_the_launch_in_one_line_and_writes_nothing(project):
    result = project.run("+mlxp.logger.forced_log_id=1")
    assert result.returncode == 2
    assert result.stderr.strip() == ("mlxcore: error: mlxp.* settings are mlx.* in mlxcore: "
                                     "write +mlx.logger.forced_log_id=1")
    assert project.run_ids() == []


def test_mlxp_yaml_must_be_renamed_unless_mlx_yaml_exists(project):
    project.write_config({"logger": {"parent_log_dir": "./other"}}, name="mlxp.yaml")
    result = project.run()
    assert result.returncode == 2 and project.run_ids() == []
    assert "mlxcore reads its settings from mlx.yaml, not MLXP's mlxp.yaml: rename it mlx.yaml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    project.write_config({"logger": {"parent_log_dir": "./logs"}}, name="mlx.yaml")
    result = project.run()
    assert result.returncode == 0 and project.run_ids() == [1]
    assert "mlxp.yaml is ignored: the settings are read from" in result.stderr


def test_ctx_mlxp_points_to_ctx_mlx():
    from mlxcore.context import Context
    from mlxcore.settings import Settings

    ctx = Context(config=None, mlx=Settings(), info={}, logger=None)
    assert ctx.mlx.logger.parent_log_dir == "./logs"
    with pytest.raises(AttributeError, match=r"has no attribute 'mlxp': MLXP's ctx.mlxp is ctx.mlx in mlxcore"):
        _ = ctx.mlxp
    with pytest.raises(AttributeError, match="has no attribute 'nothing'$"):
        _ = ctx.nothing
    assert not hasattr(ctx, "mlxpy")


# -- MLXP's tutorial -------------------------------------------------------------------------------------------
def _hand_computed(logs: Path) -> dict:
    """The tutorial's numbers, read from the files themselves: per run its config and its metric lists."""
    runs = {}
    for run in sorted(p for p in logs.iterdir() if p.name.isdigit()):
        config = yaml.safe_load((run / "metadata" / "config.yaml").read_text())
        streams = {s: [json.loads(line) for line in (run / "metrics" / f"{s}.json").read_text().splitlines()]
                   for s in ("train", "test")}
        runs[int(run.name)] = {"lr": config["optimizer"]["lr"], "units": config["model"]["num_units"],
                               **{f"{s}.loss": [r["loss"] for r in rows] for s, rows in streams.items()}}
    return runs


def test_mlxps_tutorial_runs_with_the_names_changed(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    app = tmp_path / "tutorial"
    shutil.copytree(APPS / "mlxp_tutorial", app)
    sweep = ["model.num_units=2,3", "optimizer.lr=10.,1.", "seed=1,2"]

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=app, capture_output=True, text=True, timeout=300,
                              check=False)

    # MLXP's launch_script.sh line as MLXP wrote it: one line pointing to the new name, nothing written
    old = run("main.py", *sweep, "+mlxp.use_version_manager=False", "+mlxp.interactive_mode=False")
    assert old.returncode == 2, old.stderr
    assert old.stderr.strip() == ("mlxcore: error: mlxp.* settings are mlx.* in mlxcore: "
                                  "write +mlx.use_version_manager=False")
    assert not (app / "logs").exists()

    trained = run("main.py", *sweep, "+mlx.use_version_manager=False")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.count("Completed training with a learning rate of") == 8
    read = run("read.py")
    assert read.returncode == 0, read.stderr
    assert "['config.model.num_units', 'config.optimizer.lr', 'config.seed']" in read.stdout  # results.diff()
    assert "fmean.test.loss" in read.stdout

    # the same reading code in this process, to compare what it computed with the files
    monkeypatch.chdir(app)
    monkeypatch.syspath_prepend(str(app))  # the checkpoints pickle core_app's model, as in MLXP
    try:
        done = runpy.run_path(str(app / "read.py"), run_name="__main__")
    finally:
        sys.modules.pop("core_app", None)
    runs = _hand_computed(app / "logs")
    assert sorted(runs) == list(range(1, 9))
    for lr in (1.0, 10.0):
        expected = np.mean([runs[i]["train.loss"] for i in runs if runs[i]["lr"] == lr], axis=0)
        assert np.allclose(done["agg_results"][(lr,)][0]["fmean.train.loss"], expected)
    best = {}
    for units in (2, 3):
        finals = {lr: np.mean([runs[i]["train.loss"] for i in runs if runs[i]["units"] == units and
                               runs[i]["lr"] == lr], axis=0)[-1] for lr in (1.0, 10.0)}
        best[units] = min(finals, key=finals.get)
    assert sorted(done["best_results"].keys()) == sorted((u, lr) for u, lr in best.items())
    for (units, lr), group in done["filtered_results"].items():
        expected = np.mean([runs[i]["test.loss"] for i in runs if (runs[i]["units"], runs[i]["lr"]) == (units, lr)],
                           axis=0)
        assert np.allclose(group[0]["fmean.test.loss"], expected)
    assert done["results"][0]["train.loss"] == runs[1]["train.loss"]
    assert done["art"].load_checkpoint("last_ckpt.pkl")["epoch"] == 9
