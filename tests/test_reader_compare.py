"""``compare`` and ``curves``: one value per run (last/min/max/mean/at a step), then mean, std, sem, n, min and
max over the runs of each group; runs lacking a group key form the NULL group."""

from __future__ import annotations

import math
import statistics

import pytest

from mlxcore import QueryError
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import write_run

LRS, SEEDS, EPOCHS = (0.1, 0.5), (1, 2, 3), 5


def loss(lr: float, seed: int, epoch: int) -> float:
    return lr * 10 + seed * 0.1 - epoch * 0.01 * seed


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> DuckDBReader:
    logs = tmp_path_factory.mktemp("compare") / "logs"
    for lr in LRS:
        for seed in SEEDS:
            config = {"seed": seed, "optimizer": {"lr": lr}, **({"model": {"depth": 4}} if seed < 3 else {})}
            rows = [{"epoch": e, "loss": loss(lr, seed, e), "note": "x"} for e in range(EPOCHS)]
            write_run(logs, config, {"train": rows})
    resumed = [{"epoch": e, "loss": 10.0 + e} for e in (0, 1, 2)] + [{"epoch": e, "loss": 20.0 + e} for e in (1, 2)]
    write_run(logs, {"seed": 1, "optimizer": {"lr": 0.9}, "model": {"depth": 8}}, {"train": resumed})
    return DuckDBReader(logs)


def stats(values: list[float]) -> dict:
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.mean(values), "std": std, "sem": std / math.sqrt(len(values)) if std else None,
            "n": len(values), "min": min(values), "max": max(values)}


def approx(records: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in records]


def test_groups_lacking_a_key_are_the_null_group(reader):
    got = reader.compare(group_by=["config.model.depth"], metric="train.loss", reduce="last",
                         filter="config.optimizer.lr < 0.9", result_format="records")
    last = {(lr, s): loss(lr, s, EPOCHS - 1) for lr in LRS for s in SEEDS}
    assert got == approx([
        {"config.model.depth": 4, **stats([last[lr, s] for lr in LRS for s in (1, 2)])},
        {"config.model.depth": None, **stats([last[lr, 3] for lr in LRS])}])
    frame = reader.compare(["config.model.depth", "config.optimizer.lr"], "train.loss")
    assert frame.columns.tolist() == ["config.model.depth", "config.optimizer.lr", "mean", "std", "sem", "n", "min",
                                      "max"]
    assert len(frame) == 5 and frame["n"].tolist() == [2, 2, 1, 1, 1]


@pytest.mark.parametrize(("reduce", "per_run"), [
    ("last", lambda lr, s: loss(lr, s, EPOCHS - 1)),
    ("min", lambda lr, s: min(loss(lr, s, e) for e in range(EPOCHS))),
    ("max", lambda lr, s: max(loss(lr, s, e) for e in range(EPOCHS))),
    ("mean", lambda lr, s: statistics.mean(loss(lr, s, e) for e in range(EPOCHS))),
])
def test_each_run_is_reduced_before_aggregating_over_seeds(reader, reduce, per_run):
    got = reader.compare("config.optimizer.lr", "train.loss", reduce=reduce, filter="config.optimizer.lr < 0.9",
                         result_format="records")
    assert got == approx([{"config.optimizer.lr": lr, **stats([per_run(lr, s) for s in SEEDS])} for lr in LRS])


def test_at_a_step_takes_the_value_logged_there_and_the_last_one_when_logged_twice(reader):
    by_epoch = reader.compare("config.optimizer.lr", "train.loss", reduce="at", at=2, x="epoch",
                              result_format="records")
    assert by_epoch == approx([{"config.optimizer.lr": lr, **stats([loss(lr, s, 2) for s in SEEDS])} for lr in LRS]
                              + [{"config.optimizer.lr": 0.9, **stats([22.0])}])  # re-logged after a resume
    by_row = reader.compare("config.optimizer.lr", "train.loss", reduce="at", at=2, result_format="records")
    assert by_row[-1]["mean"] == 12.0  # the row index, not the epoch
    nowhere = reader.compare([], "train.loss", reduce="at", at=99, result_format="records")
    assert nowhere == [{"mean": None, "std": None, "sem": None, "n": 0, "min": None, "max": None}]


def test_curves_average_over_the_runs_of_each_group_at_each_x(reader):
    rows = reader.curves("train.loss", x="epoch", group_by="config.optimizer.lr", result_format="records")
    assert [(r["config.optimizer.lr"], r["x"]) for r in rows] == [(lr, e) for lr in (*LRS, 0.9) for e in
                                                                  range(EPOCHS if lr < 0.9 else 3)]
    first = stats([loss(0.1, s, 0) for s in SEEDS])
    expected = {"config.optimizer.lr": 0.1, "x": 0, **{k: first[k] for k in ("mean", "std", "sem", "n")}}
    assert [rows[0]] == approx([expected])
    assert [r["mean"] for r in rows if r["config.optimizer.lr"] == 0.9] == [10.0, 21.0, 22.0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.compare("config.lr", "train.loss"), r"unknown column 'config.lr' in group_by \(did you mean"),
    (lambda r: r.compare("config.seed", "train.los"), r"unknown metric 'train.los' \(did you mean 'train.loss'"),
    (lambda r: r.compare("config.seed", "train.note"), r"metric 'train.note' is not numeric"),
    (lambda r: r.compare("config.seed", "train.loss", reduce="median"), r"unknown reduce 'median'"),
    (lambda r: r.compare("config.seed", "train.loss", reduce="at"), r"needs at="),
    (lambda r: r.compare("config.seed", "train.loss", reduce="at", at=1, x="epok"), r"unknown column 'epok'"),
    (lambda r: r.curves("train.loss", x="epoch", filter="config.seed == 7"), None),
])
def test_bad_arguments_are_query_errors(reader, call, message):
    if message is None:
        assert call(reader).empty
        return
    with pytest.raises(QueryError, match=message):
        call(reader)
