"""The logger's per-stream summaries (``metrics/.summaries.json``) and the reader's use of them: the same
numbers as parsing the rows, streams that cannot be summarised, resumed runs, files changed behind the
logger's back, and stream rows loaded only when a query reads them."""

from __future__ import annotations

import json
import math

import pytest

from mlxcore.loggers import summaries
from mlxcore import open_run
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import backdate, write_run
from mlxcore.settings import LoggerSettings

np = pytest.importorskip("numpy")

PLAIN = [
    {"step": 0, "loss": 2.0, "acc": 0, "tag": "warm", "ok": False, "lr": None},
    {"step": 1, "loss": 1.25, "acc": 0.5, "ok": True},
    {"step": 2, "loss": np.float32(0.75), "acc": np.int64(1), "tag": "main", "extra": 3},
    {"step": 3, "loss": 0.5, "lr": None},
]


def _stored(run_dir) -> dict:
    return summaries.load(run_dir / "metrics")


def _all_columns(reader: DuckDBReader) -> list[dict]:
    return reader.filter(result_format="records", columns=[c for c in reader.columns if c.startswith("train.")])


def test_the_logger_summarises_plain_streams_as_the_reader_would_from_the_rows(tmp_path):
    logs = tmp_path / "logs"
    for seed in range(3):
        write_run(logs, {"seed": seed}, {"train": [{**row, "seed_loss": seed * 0.1} for row in PLAIN]})
    stored = _stored(logs / "1")
    assert stored["train"]["bytes"] == (logs / "1" / "metrics" / "train.json").stat().st_size
    assert stored["train"]["keys"]["loss"] == ["DOUBLE", 4, 0.5, 0.5, 2.0, 4.5]
    assert stored["train"]["keys"]["acc"] == ["DOUBLE", 3, 1, 0, 1, 1.5]  # ints and floats: DOUBLE
    assert stored["train"]["keys"]["lr"] == [None, 0, None, None, None, None]
    backdate(logs)
    logged = DuckDBReader(logs, catalog=tmp_path / "logged.duckdb")
    assert logged.catalog.shape["pending"] == {"train": 3}  # no row parsed
    from_logger = _all_columns(logged)
    for path in logs.glob("*/metrics/.summaries.json"):
        path.unlink()
    parsed = DuckDBReader(logs, catalog=tmp_path / "parsed.duckdb")
    assert parsed.catalog.shape["pending"] == {}
    from_rows = _all_columns(parsed)
    assert logged.columns == parsed.columns and logged.schema().streams == parsed.schema().streams
    assert from_logger[0]["train.tag.last"] == "main" and from_logger[0]["train.ok.last"] is True
    assert from_logger[2]["train.seed_loss.mean"] == pytest.approx(0.2)
    for mine, theirs in zip(from_logger, from_rows):
        assert mine.keys() == theirs.keys()
        for column, value in mine.items():
            if isinstance(value, float) and not math.isnan(value):
                assert value == pytest.approx(theirs[column], rel=1e-12), column
            else:
                assert value == theirs[column] or (value is None and theirs[column] is None) \
                    or (math.isnan(value) and math.isnan(theirs[column])), column


@pytest.mark.parametrize("rows", [
    [{"loss": 1.0}, {"loss": math.nan}],          # NaN: DuckDB and Python order it differently
    [{"loss": 1.0}, {"loss": math.inf}],
    [{"shape": [2, 3]}],                          # nested: a JSON column
    [{"tag": "a"}, {"tag": 3}],                   # text and numbers under one key
    [{"n": True}, {"n": 1}],
    [{"n": 2**64}],                               # beyond 64 bits
    [{1: 0.5}],                                   # a key JSON turns into a string
], ids=["nan", "inf", "nested", "mixed", "bool-int", "huge", "int-key"])
def test_a_stream_that_cannot_be_summarised_exactly_gets_no_entry_and_is_parsed(tmp_path, rows):
    logs = tmp_path / "logs"
    write_run(logs, {"seed": 1}, {"odd": rows, "train": [{"loss": 0.5}]})
    assert set(_stored(logs / "1")) == {"train"}
    reader = DuckDBReader(logs)
    assert reader.catalog.shape["pending"] == {"train": 1}
    assert len(reader.metrics("odd")) == len(rows)


def test_a_resumed_run_continues_its_summaries(tmp_path):
    first = open_run(tmp_path, log_id=1)
    for step in range(3):
        first.logger.log_metrics({"step": step, "loss": 1.0 / (step + 1)}, log_name="train")
    first.logger.log_metrics({"acc": 0.5}, log_name="test")
    first.finish("INTERRUPTED")
    again = open_run(tmp_path, log_id=1)
    again.logger.log_metrics({"step": 3, "loss": 0.1}, log_name="train")
    again.finish("COMPLETE")
    stored = _stored(tmp_path / "1")
    assert stored["train"]["keys"]["step"] == ["BIGINT", 4, 3, 0, 3, 6]
    assert stored["train"]["keys"]["loss"][:5] == ["DOUBLE", 4, 0.1, 0.1, 1.0]
    assert stored["train"]["bytes"] == (tmp_path / "1" / "metrics" / "train.json").stat().st_size
    assert stored["test"]["keys"]["acc"] == ["DOUBLE", 1, 0.5, 0.5, 0.5, 0.5]  # not written again: kept


def test_a_stream_appended_by_another_hand_is_not_summarised_again_and_the_reader_parses_it(tmp_path):
    run = open_run(tmp_path, log_id=1)
    run.logger.log_metrics({"loss": 1.0}, log_name="train")
    run.finish("COMPLETE")
    train = tmp_path / "1" / "metrics" / "train.json"
    with train.open("a") as handle:
        handle.write('{"loss": 0.25}\n')
    reader = DuckDBReader(tmp_path, catalog=tmp_path / "a.duckdb")
    assert reader.catalog.shape["pending"] == {}  # the summary no longer describes the file
    assert reader.filter(columns=["train.loss.last", "train.loss.count"], result_format="records") == \
        [{"train.loss.last": 0.25, "train.loss.count": 2}]
    resumed = open_run(tmp_path, log_id=1)
    resumed.logger.log_metrics({"loss": 0.125}, log_name="train")
    resumed.finish("COMPLETE")
    assert "train" not in _stored(tmp_path / "1")  # it could only be partial


@pytest.mark.parametrize("content", [b"{not json", b'{"format": 99, "streams": {}}', b'{"format": 1, "streams": []}',
                                     b'{"format": 1, "streams": {"train": {"bytes": "x", "keys": {}}}}'])
def test_a_summaries_file_that_is_not_ours_is_ignored(tmp_path, content):
    write_run(tmp_path, {"seed": 1}, {"train": [{"loss": 1.0}, {"loss": 0.5}]})
    (tmp_path / "1" / "metrics" / summaries.SUMMARIES_NAME).write_bytes(content)
    reader = DuckDBReader(tmp_path)
    assert reader.catalog.shape["pending"] == {}
    assert reader.filter(columns=["train.loss.min"], result_format="records") == [{"train.loss.min": 0.5}]


def test_a_stream_with_a_malformed_key_is_parsed(tmp_path):
    write_run(tmp_path, {"seed": 1}, {"train": [{"loss": 1.0, "acc": 0.5}]})
    path = tmp_path / "1" / "metrics" / summaries.SUMMARIES_NAME
    data = json.loads(path.read_text())
    data["streams"]["train"]["keys"]["acc"] = ["DOUBLE", "many"]
    path.write_text(json.dumps(data))
    reader = DuckDBReader(tmp_path)
    assert reader.catalog.shape["pending"] == {}
    assert reader.filter(columns=["train.loss.last", "train.acc.count"], result_format="records") == \
        [{"train.loss.last": 1.0, "train.acc.count": 1}]


def test_stream_rows_are_loaded_when_a_query_first_reads_them(tmp_path):
    logs = tmp_path / "logs"
    for seed in range(4):
        write_run(logs, {"seed": seed}, {"train": [{"step": s, "loss": 1.0 / (s + 1 + seed)} for s in range(5)],
                                         "test": [{"acc": 0.1 * seed}]})
    backdate(logs)
    reader = DuckDBReader(logs)
    assert reader.catalog.shape["pending"] == {"test": 4, "train": 4}
    # filters, summaries and compare over summaries need no rows
    assert len(reader.filter("train.loss.last < 0.2")) == 3
    assert reader.compare(group_by=[], metric="train.loss", reduce="min", result_format="records")[0]["n"] == 4
    reader.sql('SELECT * FROM summaries.train')
    reader.sql('WITH train AS (SELECT 1 AS x) SELECT * FROM train')  # a CTE of that name, not the stream
    assert reader.catalog.shape["pending"] == {"test": 4, "train": 4}
    assert reader.sql("SELECT count(*) AS n FROM runs r JOIN metrics.train t USING (log_id)").n[0] == 20
    assert reader.catalog.shape["pending"] == {"test": 4}
    assert reader.metrics("test", result_format="records")[3]["acc"] == pytest.approx(0.3)
    assert reader.catalog.shape["pending"] == {}
    # another reader (another process) sees the rows loaded, and a warm reopen re-reads nothing
    other = DuckDBReader(logs)
    assert other.last_refresh.changed == [] and other.catalog.shape["pending"] == {}
    # a run read again (resumed) is left for later again, alone
    resumed = open_run(logs, log_id=4)
    resumed.logger.log_metrics({"step": 5, "loss": 9.0}, log_name="train")
    resumed.finish("COMPLETE")
    other.refresh()
    assert other.last_refresh.changed == [4] and other.catalog.shape["pending"] == {"test": 1, "train": 1}
    assert other.filter("train.loss.max == 9", result_format="records")[0]["train.loss.count"] == 6
    assert other.compare(metric="train.loss", reduce="at", x="step", at=5, result_format="records")[0]["max"] == 9.0
    assert other.catalog.shape["pending"] == {"test": 1}
    assert other.sql("SELECT count(*) AS n FROM train").n[0] == 21


def test_the_reader_parses_a_run_killed_before_it_closed_its_streams(tmp_path):
    run = open_run(tmp_path, log_id=1)
    run.logger.log_metrics({"loss": 1.0}, log_name="train")
    run.logger.flush()  # what the background thread does; then the process dies (no finish)
    assert not (tmp_path / "1" / "metrics" / summaries.SUMMARIES_NAME).exists()
    reader = DuckDBReader(tmp_path)
    assert reader.catalog.shape["pending"] == {}
    assert reader.filter(columns=["train.loss.last"], result_format="records") == [{"train.loss.last": 1.0}]
    run.finish()


def test_rows_left_for_later_by_another_process_are_loaded_too(tmp_path):
    for seed in range(2):
        write_run(tmp_path, {"seed": seed}, {"train": [{"loss": 1.0}, {"loss": 0.5}]})
    backdate(tmp_path)
    first = DuckDBReader(tmp_path)
    assert first.sql("SELECT count(*) AS n FROM train").n[0] == 4
    for path in tmp_path.glob(".mlxcore/catalog.duckdb*"):  # deleted, then rebuilt by another reader
        path.unlink()
    assert DuckDBReader(tmp_path).catalog.shape["pending"] == {"train": 2}
    assert first.catalog.shape["pending"] == {}  # what the first reader last saw
    assert first.sql("SELECT count(*) AS n FROM train").n[0] == 4


def test_a_logs_directory_moved_with_its_catalog_still_loads_its_rows(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs, {"seed": 1}, {"train": [{"loss": 1.0}, {"loss": 0.5}]})
    backdate(logs)
    assert DuckDBReader(logs).catalog.shape["pending"] == {"train": 1}
    moved = tmp_path / "moved"
    logs.rename(moved)
    reader = DuckDBReader(moved)
    assert reader.last_refresh.changed == []  # same stamps: nothing re-read
    assert reader.sql("SELECT count(*) AS n FROM train").n[0] == 2
