"""MLXP filter strings: every operator, scientific notation, strings, booleans, null, metric predicates, missing
keys, and the errors (unknown columns with the closest ones named, anything outside the language)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxcore import QueryError, store
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.filters import parse_filter
from mlxcore.reader.synthetic import write_run


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> DuckDBReader:
    logs: Path = tmp_path_factory.mktemp("filters") / "logs"
    loss = lambda last: {"train": [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": last}]}  # noqa: E731
    write_run(logs, {"seed": 1, "optimizer": {"lr": 0.001, "name": "adam"}, "model": {"depth": 4}, "flag": True},
              loss(0.05))
    write_run(logs, {"seed": 2, "optimizer": {"lr": 0.01, "name": "sgd"}, "model": {"depth": 8}, "flag": False},
              loss(0.2))
    write_run(logs, {"seed": 1, "optimizer": {"lr": 0.1, "name": "sgd"}}, loss(0.5), status=store.FAILED)
    write_run(logs, {"seed": 3, "optimizer": {"lr": 1e-2, "name": "it's"}, "model": {"depth": 4}, "flag": None},
              status=store.SUBMITTED)
    return DuckDBReader(logs)


@pytest.mark.parametrize(("query", "expected"), [
    ("", [1, 2, 3, 4]),
    ("config.optimizer.lr <= 1e-2 & info.status == 'COMPLETE'", [1, 2]),
    ("config.model.depth in [4, 8] & train.loss.last < 0.1", [1]),
    ("config.optimizer.lr == 1E-2", [2, 4]),
    ("config.optimizer.lr >= 1.5e-3", [2, 3, 4]),
    ("config.optimizer.lr > 0.01", [3]),
    ("config.optimizer.lr < 1e-2", [1]),
    ("config.optimizer.lr <= -1e-2", []),
    ('config.optimizer.name == "sgd"', [2, 3]),
    ("config.optimizer.name != 'sgd'", [1, 4]),
    ('config.optimizer.name == "it\'s"', [4]),
    ("config.flag == true", [1]),
    ("config.flag == False", [2]),
    ("config.flag != true", [2, 3, 4]),
    ("~(config.flag == true)", [2, 3, 4]),
    ("~config.flag == true", [2, 3, 4]),             # ~ binds looser than ==, as in MLXP
    ("config.flag == null", [3, 4]),
    ("config.flag != None", [1, 2]),
    ("config.model.depth != 4", [2, 3]),             # a run lacking the key differs from 4, as in Python
    ("~(config.model.depth == 4)", [2, 3]),
    ("config.model.depth < 100", [1, 2, 4]),          # ... but is not smaller than anything
    ("~(config.model.depth < 100)", [3]),
    ("config.seed in [1]", [1, 3]),
    ("~(config.seed in [1, 2])", [4]),
    ("config.optimizer.name > 3", []),               # Python would raise: no run is selected
    ("info.status == 'FAILED' | config.seed == 3", [3, 4]),
    ("(config.seed == 1 | config.seed == 2) & config.optimizer.lr < 0.05", [1, 2]),
    ("config.seed == 1 | config.seed == 2 & config.optimizer.lr < 0.05", [1, 2, 3]),  # & binds tighter than |
    ("status == 'SUBMITTED'", [4]),
    ("train.loss.last < 0.3", [1, 2]),
    ("train.loss.count == null", [4]),
    ("log_id >= 3", [3, 4]),
    ("CONFIG.SEED == 2", [2]),                        # SQL names ignore case
])
def test_filter_selects_the_expected_runs(reader, query, expected):
    assert reader.filter(query)["log_id"].tolist() == expected


def test_an_unknown_column_names_the_closest_ones(reader):
    with pytest.raises(QueryError, match=r"unknown column 'config.optimizer.lrr' in filter "
                                         r"\(did you mean 'config.optimizer.lr'"):
        reader.filter("config.optimizer.lrr < 1")
    with pytest.raises(QueryError, match=r"unknown column 'train.los.last' in filter \(did you mean 'train.loss.last'"):
        reader.filter("train.los.last < 1")
    with pytest.raises(QueryError, match=r"unknown column 'config.seedd' in columns \(did you mean 'config.seed'"):
        reader.filter("", columns=["config.seedd"])


@pytest.mark.parametrize(("query", "message"), [
    ("lower(config.optimizer.name) == 'sgd'", "is not part of the filter language"),
    ("config.seed + 1 == 2", "is not part of the filter language"),
    ("config.seed == (SELECT 1)", "expected a value"),
    ("config.seed == 1; DROP TABLE runs", "give one condition"),
    ("(config.seed == 1", "cannot parse filter"),
    ("config.seed ==", "cannot parse filter"),
    ("3", "a condition starts with a column name"),
    ("config.flag", "a bare column is not a condition"),
    ("config.seed not in [1, 2]", r"write ~\(config.seed in \[...\]\)"),
])
def test_anything_outside_the_language_is_a_query_error(reader, query, message):
    with pytest.raises(QueryError, match=message):
        reader.filter(query)


def test_dotted_and_dashed_names_become_one_column_and_each_comparison_is_two_valued():
    sql, used = parse_filter("config.warm-up.steps >= 1e3 & ~(config.flag == true)",
                             {"config.warm-up.steps": "DOUBLE", "config.flag": "BOOLEAN"})
    assert used == ["config.warm-up.steps", "config.flag"]
    assert sql == ('(COALESCE(("config.warm-up.steps" >= CAST(\'1000.0\' AS DOUBLE) '
                   'AND NOT isnan("config.warm-up.steps")), FALSE) '
                   'AND (NOT COALESCE(CAST("config.flag" AS INTEGER) IN (1), FALSE)))')
    assert parse_filter("config.flag == None", {"config.flag": "BOOLEAN"})[0] == \
        'COALESCE("config.flag" IS NULL, FALSE)'
    assert parse_filter("config.a != 'x'", {"config.a": "VARCHAR"})[0] == \
        "NOT COALESCE(CAST(\"config.a\" AS VARCHAR) IN ('x'), FALSE)"
