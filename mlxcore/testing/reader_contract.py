"""A contract test suite any reader plugin runs against itself (opt-in, needs pytest).

Subclass :class:`ReaderContract` and give the name the plugin registers::

    from mlxcore.testing import ReaderContract

    class TestMyReader(ReaderContract):
        @pytest.fixture
        def reader_name(self):
            return "mine"

The suite writes a logs directory with the real logger (mixed types, a missing key, NaN) and checks the reader's
answers against plain Python over the same runs: MLXP filter strings with Python's semantics, every run once,
the rows of a stream, a comparison over seeds, read-only SQL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: (filter, the same in Python over a run's config and its last loss)
FILTERS: list[tuple[str, Callable[[dict[str, Any], float], bool]]] = [
    ("", lambda c, last: True),
    ("config.lr <= 1e-2", lambda c, last: _number(c.get("lr")) and c["lr"] <= 1e-2),
    ("config.opt == 'sgd' & config.seed >= 2", lambda c, last: c.get("opt") == "sgd" and c["seed"] >= 2),
    ("~(config.lr == 0.1)", lambda c, last: not c.get("lr") == 0.1),
    ("config.seed in [0, 3] | config.opt == 'adam'", lambda c, last: c.get("seed") in (0, 3) or c.get("opt") == "adam"),
    ("train.loss.last > 0.5", lambda c, last: last > 0.5),
    ("config.lr == 'abc'", lambda c, last: c.get("lr") == "abc"),
]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _configs() -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [{"lr": (0.1, 0.01, 0.001)[i % 3], "seed": i // 3, "opt": ("adam", "sgd")[i % 2]}
                                     for i in range(12)]
    configs += [{"lr": "abc", "seed": 4, "opt": "sgd"}, {"seed": 5, "opt": "adam"},
                {"lr": math.nan, "seed": 5, "opt": "sgd"}]
    return configs


def _losses(config: dict[str, Any]) -> list[float]:
    lr = config.get("lr")
    rate = float(lr) if lr is not None and _number(lr) else 0.05
    return [math.exp(-rate * 50 * step) + config["seed"] / 10 for step in range(6)]


class ReaderContract:
    """Behaviour every reader must show."""

    @pytest.fixture
    def reader_name(self) -> str:
        raise NotImplementedError("override the reader_name fixture")

    @pytest.fixture
    def logs(self, tmp_path: Path) -> Path:
        from ..reader.synthetic import write_run

        root = tmp_path / "logs"
        for config in _configs():
            write_run(root, config, {"train": [{"step": s, "loss": v} for s, v in enumerate(_losses(config))]})
        return root

    @pytest.fixture
    def reader(self, logs: Path, reader_name: str) -> Any:
        from ..reader.base import Reader

        opened = Reader.open(logs, reader=reader_name)
        yield opened
        opened.close()

    # -- the contract ------------------------------------------------------------------------------------
    @pytest.mark.parametrize("query", [f for f, _ in FILTERS])
    def test_a_filter_selects_the_runs_python_would(self, reader: Any, query: str) -> None:
        predicate = dict(FILTERS)[query]
        expected = [n + 1 for n, config in enumerate(_configs()) if predicate(config, _losses(config)[-1])]
        got = [row["log_id"] for row in reader.filter(query, result_format="records")]
        assert got == expected, f"filter {query!r} selected runs {got}, Python selects {expected}"

    def test_values_are_shown_as_written(self, reader: Any) -> None:
        rows = reader.filter("", result_format="records")
        shown = [row.get("config.lr") for row in rows]
        expected = [config.get("lr") for config in _configs()]
        assert len(shown) == len(expected)
        for got, want in zip(shown, expected):
            assert (isinstance(want, float) and math.isnan(want) and math.isnan(got)) or got == want, (got, want)

    def test_the_rows_of_a_stream_are_each_runs_rows_in_order(self, reader: Any) -> None:
        rows = reader.metrics("train", filter="config.seed == 1", result_format="records")
        expected = [(n + 1, step, loss) for n, config in enumerate(_configs()) if config["seed"] == 1
                    for step, loss in enumerate(_losses(config))]
        assert [(r["log_id"], r["step"]) for r in rows] == [(log_id, step) for log_id, step, _ in expected]
        assert [r["loss"] for r in rows] == pytest.approx([loss for _, _, loss in expected])

    def test_a_comparison_averages_the_last_value_over_seeds(self, reader: Any) -> None:
        got = reader.compare(group_by=["config.opt"], metric="train.loss", reduce="last", filter="config.seed < 4",
                             result_format="records")
        for opt in ("adam", "sgd"):
            values = [_losses(c)[-1] for c in _configs() if c["opt"] == opt and c["seed"] < 4]
            row = next(r for r in got if r["config.opt"] == opt)
            assert row["n"] == len(values) and row["mean"] == pytest.approx(sum(values) / len(values))

    def test_sql_reads_and_never_writes(self, reader: Any, logs: Path) -> None:
        from ..errors import QueryError

        assert reader.sql("SELECT count(*) AS n FROM runs", result_format="records") == [{"n": len(_configs())}]
        for statement in ("DELETE FROM runs", "DROP TABLE runs", f"COPY runs TO '{logs}/x.csv'"):
            with pytest.raises(QueryError):
                reader.sql(statement)
        assert reader.sql("SELECT count(*) AS n FROM runs", result_format="records") == [{"n": len(_configs())}]
