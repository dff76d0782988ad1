"""The reader never destroys what is not its own, and never falls over on one bad run."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

import mlxcore
from mlxcore.reader.synthetic import write_run


def _query(logs, *args):
    return subprocess.run([sys.executable, "-m", "mlxcore", "query", str(logs), *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"", b"\x00" * 64])
def test_the_catalog_option_refuses_to_replace_a_file_that_is_not_a_catalog(tmp_path, content):
    logs = tmp_path / "logs"
    write_run(logs, {"a": 1}, {"train": [{"x": 1}]})
    mine = tmp_path / "important.csv"
    mine.write_bytes(content)
    result = _query(logs, "--catalog", str(mine))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"mlxcore: error: {mine} exists and is not an mlxcore catalog; refusing to "
                                     "replace it: give the path of a new file, or of an mlxcore catalog")
    assert mine.read_bytes() == content
    with pytest.raises(mlxcore.QueryError, match="is not an mlxcore catalog"):
        mlxcore.Reader(logs, catalog=mine)
    assert mine.read_bytes() == content


def test_a_duckdb_file_of_someone_else_is_not_replaced_but_a_catalog_is_reused(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs, {"a": 1}, {"train": [{"x": 1}]})
    theirs = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(theirs)) as con:
        con.execute("CREATE TABLE results AS SELECT 42 AS answer")
    assert _query(logs, "--catalog", str(theirs)).returncode == 2
    with duckdb.connect(str(theirs), read_only=True) as con:
        assert con.execute("SELECT answer FROM results").fetchall() == [(42,)]
    ours = tmp_path / "ours.duckdb"
    assert _query(logs, "--catalog", str(ours)).returncode == 0
    again = _query(logs, "--catalog", str(ours))
    assert again.returncode == 0 and "COMPLETE" in again.stdout


def _corpus(logs):
    for n in range(3):
        write_run(logs, {"seed": n, "lr": 0.1}, {"train": [{"loss": 1.0}, {"loss": 0.5}]})
    return write_run(logs, {"seed": 9, "lr": 0.1}, {"train": [{"loss": 1.0}]})


def _reset_cache(run_dir):
    (run_dir / "metadata" / ".cache.json").unlink(missing_ok=True)


def test_a_run_whose_keys_differ_only_by_case_is_left_out_and_listed(tmp_path, caplog):
    logs = tmp_path / "logs"
    bad = logs / str(_corpus(logs))
    (bad / "metadata" / "config.yaml").write_text("seed: 9\nn: 1\nN: 2\n")
    _reset_cache(bad)
    with caplog.at_level("WARNING", logger="mlxcore"):
        reader = mlxcore.Reader(logs)
    assert "run 4: config.N and config.n differ only by case" in caplog.text or \
        "run 4: config.n and config.N differ only by case" in caplog.text
    assert [row["log_id"] for row in reader.filter("config.lr <= 1e-1", result_format="records")] == [1, 2, 3]
    (problem,) = reader.problems
    assert problem["log_id"] == 4 and "differ only by case" in problem["problem"]
    result = _query(logs, "config.lr <= 1e-1")
    assert result.returncode == 0 and "1 problem(s) in 1 run(s)" in result.stderr
    (bad / "metadata" / "config.yaml").write_text("seed: 9\nlr: 0.1\n")  # fixed: back in, problem gone
    _reset_cache(bad)
    reader.refresh()
    assert [row["log_id"] for row in reader.filter("config.lr <= 1e-1", result_format="records")] == [1, 2, 3, 4]
    assert reader.problems == []


def test_keys_of_two_runs_that_differ_by_case_are_one_column(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs, {"batch": 8}, {"train": [{"loss": 1.0}]})
    write_run(logs, {"Batch": 16}, {"train": [{"Loss": 0.5}]})
    reader = mlxcore.Reader(logs)
    assert reader.filter("config.batch >= 8", columns=["log_id", "config.batch"], result_format="records") == [
        {"log_id": 1, "config.batch": 8}, {"log_id": 2, "config.batch": 16}]
    assert reader.problems == []


def test_an_empty_metric_key_and_an_unreadable_info_break_nothing(tmp_path):
    logs = tmp_path / "logs"
    bad = logs / str(_corpus(logs))
    (bad / "metrics" / "val.json").write_text('{"": 1.0}\n{"": 2.0, "acc": 0.5}\n')
    (bad / "metadata" / "info.yaml").write_text("status: [\n")
    _reset_cache(bad)
    reader = mlxcore.Reader(logs)
    assert len(reader.filter("config.lr <= 1e-1")) == 4
    assert reader.sql("SELECT count(*) AS n FROM val").n[0] == 2
    (problem,) = reader.problems
    assert problem["log_id"] == 4 and "info.yaml" in problem["problem"]
    status = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(logs)], capture_output=True, text=True)
    assert status.returncode == 0 and "1 problem(s) in 1 run(s) could not be read" in status.stdout


def test_a_stream_of_very_many_keys_is_capped_and_reported_within_the_memory_limit(tmp_path):
    """600 keys in one line took DuckDB past 4 GB (one aggregate per key in one query); 3,000 crashed it."""
    logs = tmp_path / "logs"
    write_run(logs, {"seed": 0}, {"train": [{"loss": 1.0}]})
    wide = write_run(logs, {"seed": 1}, {"train": [{f"k{i}": i for i in range(600)}, {"loss": 0.5}]})
    reader = mlxcore.Reader(logs, memory_limit="1GB")
    assert len(reader.streams["train"]) == 601 and reader.problems == []
    rows = reader.metrics("train", filter=f"log_id == {wide}", result_format="records")
    assert rows[0]["k599"] == 599 and rows[1]["loss"] == 0.5


def test_keys_beyond_the_limit_are_left_out_and_their_runs_listed(tmp_path, monkeypatch):
    from mlxcore.reader import metrics

    monkeypatch.setattr(metrics, "MAX_KEYS", 20)
    logs = tmp_path / "logs"
    first = write_run(logs, {"seed": 0}, {"train": [{f"a{i}": i for i in range(15)}]})
    second = write_run(logs, {"seed": 1}, {"train": [{f"b{i}": i for i in range(15)}]})
    for run in (first, second):  # parsed at indexing (a logged summary of so many keys would be too)
        (logs / str(run) / "metrics" / ".summaries.json").unlink()
    reader = mlxcore.Reader(logs)
    assert len(reader.streams["train"]) == 20
    assert [(p["log_id"], "beyond the 20" in p["problem"]) for p in reader.problems] == [(second, True)]
    assert reader.filter(columns=["log_id"], result_format="records") == [{"log_id": first}, {"log_id": second}]


def test_a_run_duckdb_refuses_is_left_out_and_every_other_run_loads(tmp_path, monkeypatch, caplog):
    """A fake refusal: no real input is known to make DuckDB raise here any more (that is the point of the
    fallback), so the loader is made to raise for one run's file, as DuckDB would."""
    import duckdb

    from mlxcore import store
    from mlxcore.reader import metrics
    from mlxcore.reader.synthetic import backdate

    logs = tmp_path / "logs"
    ids = [write_run(logs, {"seed": n}, {"train": [{"loss": float(n)}]}) for n in range(6)]
    for run in ids:
        (logs / str(run) / "metrics" / ".summaries.json").unlink()
    backdate(logs)
    bad = ids[3]
    real = metrics._load_lines
    calls = []

    def refusing(con, stream, batch_ids, contents, problems=None):
        calls.append(list(batch_ids))
        if bad in batch_ids:
            raise duckdb.ConversionException("Conversion Error: could not convert what this run logged")
        return real(con, stream, batch_ids, contents, problems)

    monkeypatch.setattr(metrics, "_load_lines", refusing)
    reader = mlxcore.Reader(logs)
    assert [r["log_id"] for r in reader.filter(columns=["log_id"], result_format="records")] == \
        [i for i in ids if i != bad]
    assert [p["log_id"] for p in reader.problems] == [bad]
    assert "DuckDB refuses its files: Conversion Error" in reader.problems[0]["problem"]
    assert f"run {bad} is left out of the catalog" in caplog.text
    calls.clear()
    reader.refresh()  # left out until it changes: not tried again
    assert calls == [] and [p["log_id"] for p in reader.problems] == [bad]
    monkeypatch.setattr(metrics, "_load_lines", real)
    store.RunStore(logs).open(bad).update_info(note="fixed")
    reader.refresh()
    assert reader.problems == []
    assert reader.filter(f"log_id == {bad}", columns=["train.loss.last"], result_format="records") == \
        [{"train.loss.last": 3.0}]
