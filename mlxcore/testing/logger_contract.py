"""A contract test suite any logger plugin runs against itself (opt-in, needs pytest).

Subclass :class:`LoggerContract` in a test module and give the name the plugin registers::

    from mlxcore.testing import LoggerContract

    class TestMyLogger(LoggerContract):
        @pytest.fixture
        def logger_name(self):
            return "mine"

Each test writes real runs through ``mlxcore.open_run`` with ``mlx.logger.name`` set to that logger, then reads
them back with the core's reader and its files: every row in the run directory exactly once and in order, the
stream summaries the reader takes instead of parsing rows (so the plugin's runs are read at full speed),
artifacts and checkpoints that load back as saved, a resumed run that continues its streams. A plugin that
drops, reorders or holds back rows, or writes its streams without the store, fails here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from .. import store
from ..errors import CheckpointNotFoundError

TRAIN: list[dict[str, Any]] = [{"step": i, "loss": 1.0 / (i + 1), "tag": f"t{i % 3}", "ok": i % 2 == 0}
                               for i in range(57)]
TRAIN.append({"step": 57, "loss": math.nan, "grad": math.inf})
TEST: list[dict[str, Any]] = [{"epoch": e, "accuracy": 0.5 + e / 100} for e in range(5)]


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def rows_of(logs: Path, stream: str, log_id: int) -> list[dict[str, Any]]:
    """The rows of ``stream`` of run ``log_id`` as the core's reader reads them, without ``log_id``/``_row``, and
    without the keys a row did not log."""
    from ..reader.engine import DuckDBReader

    records = DuckDBReader(logs).metrics(stream, filter=f"log_id == {log_id}", result_format="records")
    assert [r["_row"] for r in records] == list(range(len(records))), "rows are not numbered 0, 1, 2, ..."
    return [{k: v for k, v in r.items() if k not in ("log_id", "_row") and v is not None} for r in records]


def assert_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected), f"{len(got)} rows read back, {len(expected)} logged"
    for n, (row, want) in enumerate(zip(got, expected)):
        assert row.keys() == want.keys() and all(same(row[k], want[k]) for k in want), \
            f"row {n} reads back as {row}, logged as {want}"


class LoggerContract:
    """Behaviour every logger must show. Test methods write real runs in ``tmp_path``."""

    @pytest.fixture
    def logger_name(self) -> str:
        raise NotImplementedError("override the logger_name fixture")

    @staticmethod
    def open(logs: Path, logger_name: str, config: dict[str, Any] | None = None, log_id: int | None = None) -> Any:
        import mlxcore

        return mlxcore.open_run(logs, config or {"seed": 0}, log_id=log_id, mlx={"logger": {"name": logger_name}})

    # -- the contract ------------------------------------------------------------------------------------
    def test_every_row_reaches_the_run_directory_once_and_in_order(self, tmp_path: Path, logger_name: str) -> None:
        logs = tmp_path / "logs"
        with self.open(logs, logger_name) as run:
            for train, test in zip(TRAIN, [*TEST, *([None] * len(TRAIN))]):
                run.logger.log_metrics(train, log_name="train")
                if test is not None:
                    run.logger.log_metrics(test, log_name="test")
        assert_rows(rows_of(logs, "train", run.log_id), TRAIN)
        assert_rows(rows_of(logs, "test", run.log_id), TEST)
        info = store.RunStore(logs).open(run.log_id).read_info()
        assert info is not None and info["status"] == store.COMPLETE

    def test_flushed_rows_are_on_disk_while_the_run_goes_on(self, tmp_path: Path, logger_name: str) -> None:
        logs = tmp_path / "logs"
        with self.open(logs, logger_name) as run:
            for row in TRAIN[:10]:
                run.logger.log_metrics(row, log_name="train")
            run.logger.flush()
            assert_rows(rows_of(logs, "train", run.log_id), TRAIN[:10])

    def test_the_reader_takes_the_summaries_and_leaves_the_rows_for_later(self, tmp_path: Path,
                                                                          logger_name: str) -> None:
        """The runs of this logger are read at full speed: a first index reads each stream's summary, not its
        rows; and the summary is right."""
        from ..reader.engine import DuckDBReader

        logs = tmp_path / "logs"
        with self.open(logs, logger_name) as run:
            for row in TRAIN[:20]:
                run.logger.log_metrics(row, log_name="train")
        reader = DuckDBReader(logs)
        assert reader.catalog.load_shape()["pending"] == {"train": 1}, \
            "the reader had to parse the rows: the stream has no valid summary (write through RunLogger)"
        summary = reader.filter(columns=["train.loss.last", "train.loss.min", "train.loss.count"],
                                result_format="records")[0]
        losses = [float(row["loss"]) for row in TRAIN[:20]]
        assert summary == {"train.loss.last": losses[-1], "train.loss.min": min(losses), "train.loss.count": 20}

    def test_a_resumed_run_continues_its_streams(self, tmp_path: Path, logger_name: str) -> None:
        logs = tmp_path / "logs"
        with self.open(logs, logger_name) as run:
            for row in TRAIN[:5]:
                run.logger.log_metrics(row, log_name="train")
        with self.open(logs, logger_name, log_id=run.log_id) as again:
            for row in TRAIN[5:12]:
                again.logger.log_metrics(row, log_name="train")
        assert_rows(rows_of(logs, "train", run.log_id), TRAIN[:12])

    @pytest.mark.parametrize("artifact_format", ["pickle", "json", "dill"])
    def test_artifacts_load_back_as_saved(self, tmp_path: Path, logger_name: str, artifact_format: str) -> None:
        value = {"weights": [0.5, 1.5], "name": "model", "depth": 3}
        with self.open(tmp_path / "logs", logger_name) as run:
            path = run.logger.log_artifacts(value, artifact_name="model", artifact_format=artifact_format)
            assert Path(path).resolve().is_relative_to(run.logger.log_dir.resolve())
            assert run.logger.load_artifacts("model") == value
            assert run.logger.load_artifacts("model", artifact_format=artifact_format) == value

    def test_a_checkpoint_replaces_the_last_and_survives_a_resume(self, tmp_path: Path, logger_name: str) -> None:
        logs = tmp_path / "logs"
        with self.open(logs, logger_name) as run:
            assert run.logger.load_checkpoint("ckpt", default=None) is None
            with pytest.raises(CheckpointNotFoundError):
                run.logger.load_checkpoint("ckpt")
            for step in range(3):
                run.logger.log_checkpoint({"step": step}, log_name="ckpt")
            assert run.logger.load_checkpoint("ckpt") == {"step": 2}
        with self.open(logs, logger_name, log_id=run.log_id) as again:
            assert again.logger.load_checkpoint("ckpt") == {"step": 2}
        names = [p.name for p in store.RunStore(logs).open(run.log_id).paths.checkpoints.iterdir()]
        assert len([n for n in names if n.startswith("ckpt.")]) == 1, f"one checkpoint file per name: {names}"
