"""Column types follow the runs as they are now: a run that widened a column and is then removed or changed
leaves the type a catalog built afresh would give; integers a double would round are never rounded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlxcore import store
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import backdate, write_run


def column_type(reader: DuckDBReader, name: str) -> str:
    return reader.schema().columns[name].upper()


def fresh_type(logs: Path, name: str, tmp_path: Path) -> str:
    """The type a catalog built from nothing gives the column."""
    return column_type(DuckDBReader(logs, catalog=tmp_path / "fresh.duckdb"), name)


@pytest.mark.parametrize(("values", "odd", "narrow"), [
    ([0.1, 0.01], "abc", "DOUBLE"),
    ([1, 2], "abc", "BIGINT"),
    ([1, 2], 0.5, "BIGINT"),
    (["sgd", "adam"], 3, "VARCHAR"),
    ([True, False], "yes", "BOOLEAN"),
    ([[64, 64], [32]], "abc", "JSON"),
])
def test_removing_the_run_that_widened_a_column_restores_its_type(tmp_path, values, odd, narrow):
    logs = tmp_path / "logs"
    for value in values:
        write_run(logs, {"x": value})
    odd_id = write_run(logs, {"x": odd})
    backdate(logs)
    reader = DuckDBReader(logs)
    widened = column_type(reader, "config.x")
    assert widened == fresh_type(logs, "config.x", tmp_path)
    shutil.rmtree(logs / str(odd_id))
    reader.refresh()
    assert column_type(reader, "config.x") == narrow == fresh_type(logs, "config.x", tmp_path / "again")
    shown = [row["config.x"] for row in reader.filter(columns=["config.x"], result_format="records")]
    assert [json.loads(v) if isinstance(v, str) and v[:1] == "[" else v for v in shown] == values


def test_a_run_changed_through_the_store_narrows_the_column_again(tmp_path):
    logs = tmp_path / "logs"
    for value in (1, 2):
        write_run(logs, {"seed": value})
    backdate(logs)
    reader = DuckDBReader(logs)
    run = store.RunStore(logs).open(2)
    run.update_info(note="see the log")
    store.RunStore(logs).open(1).update_info(note=3)
    reader.refresh()
    assert column_type(reader, "info.note") == "JSON"
    assert reader.filter("info.note == 3", columns=["log_id"], result_format="records") == [{"log_id": 1}]
    run.update_info(note=4)
    reader.refresh()
    assert column_type(reader, "info.note") == "BIGINT"
    assert [r["info.note"] for r in reader.filter(columns=["info.note"], result_format="records")] == [3, 4]


def test_integers_a_double_would_round_are_kept_exact(tmp_path):
    big = 2**53 + 1
    logs = tmp_path / "logs"
    write_run(logs, {"n": big})
    backdate(logs)
    reader = DuckDBReader(logs)
    assert column_type(reader, "config.n") == "BIGINT"
    write_run(logs, {"n": 0.5})  # integers and floats: DOUBLE would make big 2**53
    reader.refresh()
    assert column_type(reader, "config.n") == "JSON" == fresh_type(logs, "config.n", tmp_path)
    assert [r["config.n"] for r in reader.filter(columns=["config.n"], result_format="records")] == [big, 0.5]
    assert reader.filter(f"config.n == {big}", columns=["log_id"], result_format="records") == [{"log_id": 1}]
    assert reader.filter(f"config.n == {big - 1}", columns=["log_id"], result_format="records") == []
    write_run(logs, {"n": 2**70})  # beyond 64 bits
    reader.refresh()
    assert [r["config.n"] for r in reader.filter(columns=["config.n"], result_format="records")] == [big, 0.5, 2**70]


def test_integers_and_floats_make_a_double_column_that_becomes_bigint_when_the_floats_go(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs, {"x": 2})
    write_run(logs, {"x": 3})
    odd = write_run(logs, {"x": 0.5})
    backdate(logs)
    reader = DuckDBReader(logs)
    assert column_type(reader, "config.x") == "DOUBLE"
    assert reader.filter("config.x == 2", columns=["log_id"], result_format="records") == [{"log_id": 1}]
    shutil.rmtree(logs / str(odd))
    reader.refresh()
    assert column_type(reader, "config.x") == "BIGINT" == fresh_type(logs, "config.x", tmp_path)
    assert [r["config.x"] for r in reader.filter(columns=["config.x"], result_format="records")] == [2, 3]
    write_run(logs, {"x": 2.0})  # a float equal to an integer is still a float
    reader.refresh()
    assert column_type(reader, "config.x") == "DOUBLE"
