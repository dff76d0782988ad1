"""Metric streams in the catalog: column types and their widening, key collisions, summaries, corrupt lines,
files that cannot be read, and the rows of a run that is still running."""

from __future__ import annotations

import math
import os
import socket
import statistics

import duckdb
import pytest

from mlxcore import store
from mlxcore import open_run
from mlxcore.errors import QueryError
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.metrics import create_schema, ingest_stream, read_batches
from mlxcore.reader.synthetic import backdate, write_run
from mlxcore.settings import LoggerSettings


def _types(reader: DuckDBReader, stream: str) -> dict[str, str]:
    return {c: t for c, t in reader.schema().streams[stream].items() if c != "_row"}


def test_keys_get_one_column_each_with_the_narrowest_type_that_holds_every_value(tmp_path):
    write_run(tmp_path, {"seed": 1}, {"train": [
        {"step": 0, "loss": 1, "tag": "a", "ok": True, "shape": [2, 3], "cfg": {"k": 1}, "log_id": 7, "_row": 9},
        {"step": 1, "loss": 0.5, "tag": 3, "ok": False, "Loss": 2.0},
        *({"step": s, "loss": 0.1, "late": 1.5} for s in range(2, 60)),   # a key first logged at step 59
        {"step": 60, "loss": math.nan, "grad": math.inf, "edge": -math.inf},
    ]})
    reader = DuckDBReader(tmp_path)
    assert _types(reader, "train") == {
        "step": "BIGINT", "loss": "DOUBLE", "tag": "JSON", "ok": "BOOLEAN", "shape": "JSON", "cfg": "JSON",
        "log_id_": "BIGINT", "_row_": "BIGINT", "Loss_": "DOUBLE", "late": "DOUBLE", "grad": "DOUBLE",
        "edge": "DOUBLE"}
    rows = reader.metrics("train", result_format="records")
    assert [r["log_id"] for r in rows] == [1] * 61 and [r["_row"] for r in rows] == list(range(61))
    first, second, last = rows[0], rows[1], rows[-1]
    # text and a number under one key: a JSON column, each value shown as written (the number 3, not '3')
    assert (first["tag"], second["tag"], first["log_id_"], first["_row_"], second["Loss_"]) == ("a", 3, 7, 9, 2.0)
    assert first["shape"] == "[2,3]" and first["cfg"] == '{"k":1}'
    assert math.isnan(last["loss"]) and last["grad"] == math.inf and last["edge"] == -math.inf
    assert reader.filter(columns=["train.late.count", "train.step.last", "train.tag.last"], result_format="records") \
        == [{"train.late.count": 58, "train.step.last": 60, "train.tag.last": 3}]


def test_a_column_widens_when_a_later_run_logs_another_type_and_keeps_its_old_values(tmp_path):
    write_run(tmp_path, {"seed": 1}, {"train": [{"n": 1}, {"n": 2}]})
    backdate(tmp_path)
    reader = DuckDBReader(tmp_path)
    assert _types(reader, "train")["n"] == "BIGINT"
    write_run(tmp_path, {"seed": 2}, {"train": [{"n": 2.5}, {"n": None, "m": "x"}]})
    reader.refresh()
    assert reader.last_refresh.changed == [2]
    assert _types(reader, "train") == {"n": "DOUBLE", "m": "VARCHAR"}
    assert reader.metrics("train", keys=["n"]).values.tolist()[:3] == [[1, 0, 1.0], [1, 1, 2.0], [2, 0, 2.5]]
    assert reader.sql('SELECT sum(n) AS s, max("train.n.last") AS l FROM train, runs').values.tolist() == [[11.0, 2.5]]
    write_run(tmp_path, {"seed": 3}, {"train": [{"n": "three"}]})
    reader.refresh()
    assert _types(reader, "train")["n"] == "JSON"
    assert [r["n"] for r in reader.metrics("train", keys=["n"], result_format="records")] == \
        [1.0, 2.0, 2.5, None, "three"]
    assert "train.n.mean" not in reader.columns and "train.n.last" in reader.columns


def test_summaries_are_the_last_min_max_mean_and_count_of_each_run(tmp_path):
    losses = {1: [3.0, 1.0, 2.0, None], 2: [5.0]}
    for seed, values in losses.items():
        write_run(tmp_path, {"seed": seed}, {"train": [{"loss": v} if v is not None else {"other": 1}
                                                       for v in values]})
    reader = DuckDBReader(tmp_path)
    got = reader.filter(columns=["log_id", *(f"train.loss.{s}" for s in ("last", "min", "max", "mean", "count"))],
                        result_format="records")
    assert got == [
        {"log_id": 1, "train.loss.last": 2.0, "train.loss.min": 1.0, "train.loss.max": 3.0,
         "train.loss.mean": statistics.mean([3.0, 1.0, 2.0]), "train.loss.count": 3},
        {"log_id": 2, "train.loss.last": 5.0, "train.loss.min": 5.0, "train.loss.max": 5.0,
         "train.loss.mean": 5.0, "train.loss.count": 1}]


def test_corrupt_lines_of_every_kind_are_skipped_counted_and_the_rest_is_kept(tmp_path):
    log_id = write_run(tmp_path, {"seed": 1}, {"train": [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(3)]})
    other = write_run(tmp_path, {"seed": 2}, {"train": [{"epoch": 0, "loss": 9.0}]})
    path = tmp_path / str(log_id) / "metrics" / "train.json"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b'{"epoch": 1, "lo\n', b"[1, 2]\n", b"not json at all\n", b"\xff\xfe\n",
                               lines[1], b'"a string"\n', lines[2], b'{"epoch": 9, "loss": 0.0']))
    reader = DuckDBReader(tmp_path)
    assert reader.last_refresh.skipped_lines == {(log_id, "train"): 6}
    assert reader.skipped_lines(result_format="records") == [{"log_id": log_id, "stream": "train", "lines": 6}]
    kept = reader.metrics("train", filter=f"log_id == {log_id}", result_format="records")
    assert [(r["_row"], r["epoch"]) for r in kept] == [(0, 0), (5, 1), (7, 2)]
    assert reader.filter(f"log_id == {other}", columns=["train.loss.last"]).values.tolist() == [[9.0]]


def test_a_file_that_cannot_be_read_is_skipped_and_the_rest_of_its_batch_loads(tmp_path, caplog):
    ids = [write_run(tmp_path, {"seed": s}, {"train": [{"x": s}]}) for s in range(3)]
    files = [(i, str(tmp_path / str(i) / "metrics" / "train.json")) for i in ids]
    files[1] = (ids[1], str(tmp_path / "vanished.json"))  # deleted between the listing and the read
    con = duckdb.connect()
    create_schema(con)
    with caplog.at_level("WARNING", logger="mlxcore.reader"):
        assert ingest_stream(con, "train", read_batches("train", files)) == ({}, True)  # nothing skipped, a new table
    assert con.execute('SELECT log_id, x FROM metrics."train" ORDER BY log_id').fetchall() == [(ids[0], 0), (ids[2], 2)]
    assert f"run {ids[1]}: metrics/train.json cannot be read" in caplog.text


def test_the_rows_of_a_running_run_are_reloaded_as_they_grow(tmp_path):
    write_run(tmp_path, {"seed": 0}, {"train": [{"loss": 1.0}]})
    run = open_run(tmp_path, config={"seed": 1})
    logger = run.logger
    try:
        logger.log_metrics({"loss": 0.5}, log_name="train")
        logger.flush()
        backdate(tmp_path)
        reader = DuckDBReader(tmp_path)
        assert reader.filter("status == 'RUNNING'", columns=["log_id", "train.loss.count"]).values.tolist() == [[2, 1]]
        logger.log_metrics({"loss": 0.25}, log_name="train")
        logger.flush()
        backdate(tmp_path)
        reader.refresh()
        assert reader.last_refresh.changed == [2]  # its metadata did not change, its metric file grew
        assert reader.filter("log_id == 2", columns=["train.loss.count", "train.loss.last"]).values.tolist() == \
            [[2, 0.25]]
    finally:
        run.finish(store.COMPLETE)
    backdate(tmp_path)
    reader.refresh()
    assert reader.last_refresh.changed == [2]
    assert reader.filter("log_id == 2", columns=["status"]).values.tolist() == [["COMPLETE"]]
    reader.refresh()
    assert reader.last_refresh.changed == []


def test_unknown_streams_and_keys_are_errors_naming_the_valid_ones(tmp_path):
    write_run(tmp_path, {"seed": 0}, {"train": [{"loss": 1.0}]})
    reader = DuckDBReader(tmp_path)
    with pytest.raises(QueryError, match=r"unknown stream 'trian'; valid: train"):
        reader.metrics("trian")
    with pytest.raises(QueryError, match=r"unknown column 'los' in stream 'train' \(did you mean 'loss'\?\)"):
        reader.metrics("train", keys=["los"])
    assert reader.streams == {"train": ["loss"]}


def test_windows_line_ends_blank_lines_and_small_batches_load_the_same_rows(tmp_path, monkeypatch):
    from mlxcore.reader import metrics

    ids = [write_run(tmp_path, {"seed": s}, {"train": [{"step": e, "loss": s + e / 10} for e in range(4)]})
           for s in range(3)]
    path = tmp_path / str(ids[1]) / "metrics" / "train.json"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\r\n".join(lines[:2]) + b"\r\n\r\n" + b"\r\n".join(lines[2:]) + b"\r\n")  # a blank line too
    monkeypatch.setattr(metrics, "BATCH_FILES", 1)  # one DuckDB batch per file: columns merge across batches
    reader = DuckDBReader(tmp_path)
    assert reader.last_refresh.skipped_lines == {}
    rows = reader.metrics("train", keys=["step", "loss"], result_format="records")
    assert [(r["log_id"], r["step"]) for r in rows] == [(i, e) for i in ids for e in range(4)]
    assert [r["loss"] for r in rows if r["log_id"] == ids[1]] == [1.0, 1.1, 1.2, 1.3]


def test_only_numbered_directories_are_runs(tmp_path):
    log_id = write_run(tmp_path, {"seed": 1}, {"train": [{"loss": 1.0}]})
    (tmp_path / "42").write_text("a file named like a run\n")
    (tmp_path / "007" / "metadata").mkdir(parents=True)  # not a name the logger gives
    (tmp_path / "43").symlink_to(tmp_path / str(log_id))  # a link could lead out of the logs directory
    (tmp_path / "notes").mkdir()
    reader = DuckDBReader(tmp_path)
    assert reader.last_refresh.runs == 1 and reader.filter(columns=["log_id"])["log_id"].tolist() == [log_id]
