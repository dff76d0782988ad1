"""Read-only SQL: every refused statement and file-reading function, the connection that refuses them again on
its own, the queries that do run, and a logs directory that no query can change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pytest

from mlxcore import QueryError
from mlxcore.reader.engine import DuckDBReader
from mlxcore.reader.synthetic import backdate, build_corpus

OUTSIDE = "/tmp/mlxcore-reader-test-outside"


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> DuckDBReader:
    logs = tmp_path_factory.mktemp("sql") / "logs"
    build_corpus(logs, 12, 20)
    backdate(logs)  # written in the last two seconds, the runs would be re-read at every refresh
    return DuckDBReader(logs)


REFUSED_STATEMENTS = [
    ("COPY", "COPY runs TO '/tmp/mlxcore-reader-test-outside.csv'"),
    ("COPY", "COPY (SELECT * FROM runs) TO '/tmp/mlxcore-reader-test-outside.parquet' (FORMAT parquet)"),
    ("ATTACH", "ATTACH '/tmp/mlxcore-reader-test-outside.duckdb' AS other"),
    ("DETACH", "DETACH mlxcore_catalog"),
    ("INSTALL", "INSTALL httpfs"),
    ("FORCE INSTALL", "FORCE INSTALL httpfs"),
    ("LOAD", "LOAD httpfs"),
    ("PRAGMA", "PRAGMA database_list"),
    ("SET", "SET enable_external_access = true"),
    ("RESET", "RESET threads"),
    ("CREATE", "CREATE TABLE stolen AS SELECT * FROM runs"),
    ("CREATE", "CREATE OR REPLACE VIEW runs AS SELECT 1"),
    ("INSERT", "INSERT INTO skipped_lines VALUES (1, 'x', 1)"),
    ("UPDATE", "UPDATE runs SET status = 'COMPLETE'"),
    ("DELETE", "DELETE FROM train"),
    ("DROP", "DROP TABLE metrics.train"),
    ("EXPORT", "EXPORT DATABASE '/tmp/mlxcore-reader-test-outside'"),
    ("IMPORT", "IMPORT DATABASE '/tmp/mlxcore-reader-test-outside'"),
    ("CALL", "CALL pragma_version()"),
    ("ALTER", "ALTER TABLE train ADD COLUMN x INT"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    ("USE", "USE memory"),
    ("BEGIN", "BEGIN TRANSACTION"),
    ("DESCRIBE", "DESCRIBE runs"),
    ("SHOW", "SHOW TABLES"),
    ("SUMMARIZE", "SUMMARIZE runs"),
    ("TRUNCATE", "TRUNCATE train"),
]


@pytest.mark.parametrize(("keyword", "sql"), REFUSED_STATEMENTS, ids=[s for s, _ in REFUSED_STATEMENTS])
def test_every_statement_but_a_query_is_refused_by_name(reader, keyword, sql):
    with pytest.raises(QueryError, match=rf"refused SQL: {keyword} statements are not allowed"):
        reader.sql(sql)
    with pytest.raises(QueryError, match=r"refused SQL: .*only SELECT and WITH"):
        reader.sql(f"/* a comment first */ {sql.lower()}")


FILE_FUNCTIONS = ["read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_json_objects", "read_ndjson",
                  "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "read_parquet",
                  "parquet_scan", "parquet_metadata", "parquet_schema", "glob", "sniff_csv", "query",
                  "query_table", "read_duckdb", "duckdb_settings", "duckdb_databases", "pragma_version",
                  "json_execute_serialized_sql"]


@pytest.mark.parametrize("function", FILE_FUNCTIONS)
@pytest.mark.parametrize("place", ["SELECT * FROM {f}('/etc/passwd')",
                                   "SELECT (SELECT count(*) FROM {f}('/etc/passwd')) AS n",
                                   "SELECT * FROM runs, LATERAL {f}('/etc/passwd')",
                                   "WITH x AS (SELECT * FROM {f}('/etc/passwd')) SELECT * FROM x",
                                   "SELECT {f}('/etc/passwd')"])
def test_functions_that_read_files_or_run_sql_are_refused_wherever_they_appear(reader, function, place):
    with pytest.raises(QueryError, match=rf"refused SQL: (table )?function {function}\(\) is not allowed"):
        reader.sql(place.format(f=function))


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT * FROM '/etc/passwd'", r"unknown table '/etc/passwd'"),
    ('SELECT * FROM "runs.csv"', r"unknown table 'runs.csv'"),
    ("SELECT * FROM mlxcore_state", r"unknown table 'mlxcore_state'"),
    ("SELECT * FROM mlxcore_catalog.main.runs", r"names a database"),
    ("SELECT * FROM runz", r"unknown table 'runz' \(did you mean 'runs'\?\)"),
    ("SELECT 1; DROP TABLE runs", r"give exactly one statement, got 2"),
    ("SELECT no_such_function(1)", r"unknown function no_such_function\(\)"),
    ("", r"empty SQL query"),
])
def test_other_refusals_say_why(reader, sql, message):
    with pytest.raises(QueryError, match=message):
        reader.sql(sql)


@pytest.mark.parametrize("sql", [
    f"COPY (SELECT 1) TO '{OUTSIDE}.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    f"ATTACH '{OUTSIDE}.duckdb' AS other",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SET allowed_paths = ['/']",
    "SET lock_configuration = false",
    "CREATE TABLE mlxcore_catalog.main.stolen AS SELECT 1",
    "DELETE FROM mlxcore_catalog.main.mlxcore_runs",
])
def test_the_connection_refuses_them_too_when_the_guard_is_bypassed(reader, sql):
    with reader.catalog.connection.attached() as con:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert not any(Path(OUTSIDE + suffix).exists() for suffix in (".csv", ".duckdb"))


def test_queries_run_and_return_frames(reader):
    issue_example = reader.sql('SELECT r."config.optimizer.lr" AS lr, min(t.loss) AS best FROM runs r '
                               "JOIN train t USING (log_id) GROUP BY lr ORDER BY lr")
    assert issue_example["lr"].tolist() == [0.001, 0.01, 0.1] and (issue_example["best"] < 1.05).all()
    records = reader.sql("WITH last AS (SELECT log_id, max(epoch) AS e FROM train GROUP BY log_id) "
                         "SELECT count(*) AS n, min(e) AS e FROM last UNION ALL SELECT count(*), NULL FROM test",
                         result_format="records")
    assert records == [{"n": 12, "e": 19}, {"n": 24, "e": None}]
    window = reader.sql('SELECT log_id, rank() OVER (ORDER BY "train.loss.last") AS r FROM runs ORDER BY r LIMIT 1')
    assert window["r"].tolist() == [1]
    assert reader.sql("SELECT sum(x) AS s FROM range(4) t(x)")["s"].tolist() == [6]
    assert reader.sql("SELECT list_sum([1, 2, 3]) AS s, unnest([7]) AS u")[["s", "u"]].values.tolist() == [[6, 7]]
    assert reader.sql("SELECT count(*) AS n FROM metrics.train JOIN summaries.train USING (log_id)")["n"][0] == 240
    assert reader.sql("SELECT count(*) AS n FROM skipped_lines")["n"][0] == 0
    with pytest.raises(QueryError, match="query failed: Binder Error"):
        reader.sql("SELECT no_column FROM runs")


def _digest(root: Path) -> dict[str, str]:
    return {str(Path(d, f).relative_to(root)): hashlib.sha256(Path(d, f).read_bytes()).hexdigest()
            for d, _, files in os.walk(root) for f in files}


def test_no_query_changes_the_logs_or_the_catalog(reader):
    before = _digest(reader.path)
    assert ".mlxcore/catalog.duckdb" in before
    for _, sql in REFUSED_STATEMENTS:
        with pytest.raises(QueryError):
            reader.sql(sql)
    for function in FILE_FUNCTIONS:
        with pytest.raises(QueryError):
            reader.sql(f"SELECT * FROM {function}('{reader.path}/1/metrics/train.json')")
    reader.sql("SELECT * FROM runs")
    reader.filter("config.seed == 1")
    reader.compare(["config.optimizer.lr"], "train.loss")
    reader.metrics("train", "config.seed == 1")
    assert _digest(reader.path) == before
    assert reader.refresh().changed == []
