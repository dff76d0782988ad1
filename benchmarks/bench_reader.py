"""The reader over a big logs directory written by the real logger, against floors measured in the same session.

Corpus: ``--runs`` runs x ``--rows`` rows of ``train`` (plus a ``test`` row every 10), written in-process through
``FileLogger`` (``mlxcore.reader.synthetic``), kept in ``benchmarks/out/reader/<runs>x<rows>/`` between runs.

Timed, interleaved round by round (each candidate times only its own work; opening a floor's connection is not
timed): the first index (no catalog; the streams' rows left for later), the same with every stream's rows
loaded, a warm reopen (nothing changed), a reopen after 10 new runs, a filter with
a metric predicate, a compare over seeds and a SQL join. Floors: the same answers computed from the files
(DuckDB ``read_json`` over a glob + a YAML loop; a plain Python loop over the YAML and JSON lines), the bare
listing a reopen cannot avoid, and the same SQL run by DuckDB on the catalog without mlxcore. MLXP's ``Reader``
reads the same data written by MLXP's own logger (its reader needs its layout), when ``--runs`` <= 2000::

    python -m benchmarks.bench_reader [--runs 2000] [--rows 100] [--repeats 5] [--no-mlxp]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import OUT, Figure, bench_main, interleave, median, warm_up
from benchmarks.mlxp_reader import MLXP_QUERY, mlxp_corpus, mlxp_end_to_end, mlxp_warm

DEFAULT_REPEATS = 5
#: changes younger than this are not trusted by a reader (mlxcore.reader.scan.RACY_NS)
RACY_NS = 2_000_000_000
SECTION = "## Reader"
QUERY = "config.optimizer.lr <= 1e-2 & train.loss.last < 0.5"
GROUPS = ["config.optimizer.lr", "config.model.depth"]
JOIN = ('SELECT r."config.optimizer.lr" AS lr, min(t.loss) AS best FROM runs r JOIN train t USING (log_id) '
        "GROUP BY lr ORDER BY lr")
MLXP_MAX_RUNS = 2000
#: the size at which the issue states the reopen goals
FULL_SIZE = 10_000


#: bumped when the logger writes runs differently (2: the JSON copy of the metadata, mlxcore.metadata_cache;
#: 3: the summaries of the metric streams, mlxcore.loggers.summaries; 4: the change stamp, mlxcore.store.changes)
CORPUS_LAYOUT = "4"


def corpus(n_runs: int, n_rows: int) -> Path:
    """The logs directory of ``n_runs`` x ``n_rows``, built once per :data:`CORPUS_LAYOUT` (its files backdated:
    nothing looks in flight). MLXP's copy (``mlxp/``, same configs and rows) does not depend on the layout."""
    from mlxcore.reader.synthetic import backdate, build_corpus

    root = OUT / "reader" / f"{n_runs}x{n_rows}"
    marker = root / "complete"
    if not marker.exists() or marker.read_text().strip() != CORPUS_LAYOUT:
        shutil.rmtree(root / "logs", ignore_errors=True)
        started = time.perf_counter()
        build_corpus(root / "logs", n_runs, n_rows)
        backdate(root / "logs", 60)
        marker.write_text(CORPUS_LAYOUT + "\n")
        print(f"corpus: {n_runs} runs x {n_rows} rows written by FileLogger in {time.perf_counter() - started:.0f} s",
              flush=True)
    return root / "logs"


# -- floors ----------------------------------------------------------------------------------------------------
def _runs(logs: Path) -> list[os.DirEntry]:
    return [e for e in os.scandir(logs) if e.name.isdigit()]


def _yaml(path: str) -> Any:
    import yaml

    with open(path, "rb") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)


def listing_floor(logs: Path) -> float:
    """What any reopen must do to know nothing changed: list the runs and stat each one's metadata."""
    start = time.perf_counter()
    for entry in _runs(logs):
        os.stat(os.path.join(entry.path, "metadata"))
    return time.perf_counter() - start


def raw_scan(logs: Path) -> float:
    """Floor of the first index: every info.yaml and config.yaml parsed, every metric file read by DuckDB."""
    import duckdb

    start = time.perf_counter()
    for entry in _runs(logs):
        _yaml(f"{entry.path}/metadata/info.yaml"), _yaml(f"{entry.path}/metadata/config.yaml")
    con = duckdb.connect()
    for stream in ("train", "test"):
        con.execute(f"CREATE TABLE {stream} AS SELECT * FROM read_json('{logs}/*/metrics/{stream}.json', "
                    "format = 'newline_delimited', filename = true)")
    con.close()
    return time.perf_counter() - start


def python_scan(logs: Path) -> float:
    """The same, in plain Python: YAML, then ``json.loads`` of every metric line."""
    start = time.perf_counter()
    for entry in _runs(logs):
        _yaml(f"{entry.path}/metadata/info.yaml"), _yaml(f"{entry.path}/metadata/config.yaml")
        for name in os.listdir(os.path.join(entry.path, "metrics")):
            with open(os.path.join(entry.path, "metrics", name)) as handle:
                [json.loads(line) for line in handle]
    return time.perf_counter() - start


def duckdb_filter(logs: Path) -> tuple[float, list[int]]:
    """The filter's answer from the files: configs by a YAML loop, the last losses by DuckDB over a glob."""
    import duckdb

    start = time.perf_counter()
    ids, lrs = [], []
    for entry in _runs(logs):
        ids.append(int(entry.name))
        lrs.append(_yaml(f"{entry.path}/metadata/config.yaml")["optimizer"]["lr"])
    con = duckdb.connect()
    rows = con.execute(
        "WITH cfg AS (SELECT unnest($ids) AS log_id, unnest($lrs) AS lr), "
        "last AS (SELECT regexp_extract(filename, '/(\\d+)/metrics/', 1)::BIGINT AS log_id, "
        f"arg_max(loss, epoch) AS loss FROM read_json('{logs}/*/metrics/train.json', "
        "format = 'newline_delimited', filename = true) GROUP BY ALL) "
        "SELECT log_id FROM cfg JOIN last USING (log_id) WHERE lr <= 1e-2 AND loss < 0.5 ORDER BY log_id",
        {"ids": ids, "lrs": lrs}).fetchall()
    con.close()
    return time.perf_counter() - start, [r[0] for r in rows]


def python_filter(logs: Path) -> tuple[float, list[int]]:
    start = time.perf_counter()
    found = []
    for entry in _runs(logs):
        if _yaml(f"{entry.path}/metadata/config.yaml")["optimizer"]["lr"] <= 1e-2:
            with open(os.path.join(entry.path, "metrics", "train.json")) as handle:
                last = [json.loads(line) for line in handle][-1]["loss"]
            if last < 0.5:
                found.append(int(entry.name))
    return time.perf_counter() - start, sorted(found)


def direct(catalog: Path, sql: str, params: dict | None = None) -> float:
    """The same SQL, run by DuckDB on the catalog without mlxcore (the connection's start-up is not timed)."""
    import duckdb

    con = duckdb.connect(str(catalog), read_only=True)
    start = time.perf_counter()
    con.execute(sql, params or {}).df()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


# -- the benchmark -------------------------------------------------------------------------------------------------
def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False, runs: int = 2000, rows: int = 100,
        mlxp_repeats: int = 2) -> list[Figure]:
    from mlxcore.reader.compare import compare_sql
    from mlxcore.reader.engine import DuckDBReader
    from mlxcore.reader.survey import _last as survey_cache
    from mlxcore.reader.synthetic import backdate, write_run

    logs = corpus(runs, rows)
    catalog = logs / ".mlxcore" / "catalog.duckdb"
    reader = DuckDBReader(logs)
    added: list[int] = []
    expected = duckdb_filter(logs)[1]
    assert reader.filter(QUERY)["log_id"].tolist() == expected == python_filter(logs)[1], "answers differ"

    def timed(call: Callable[[], Any]) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    def open_checked(expected_changed: int | None) -> Callable[[], float]:
        def candidate() -> float:
            start = time.perf_counter()
            opened = DuckDBReader(logs)
            elapsed = time.perf_counter() - start
            if expected_changed is not None:
                assert len(opened.last_refresh.changed) == expected_changed, opened.last_refresh
            opened.close()
            return elapsed
        return candidate

    def cold_with_rows() -> float:
        start = time.perf_counter()
        opened = DuckDBReader(logs)
        opened.load_rows(opened.streams)
        elapsed = time.perf_counter() - start
        opened.close()
        return elapsed

    def settled_warm() -> None:
        """Wait until the logs and the catalog are older than the racy window, then look once (untimed)."""
        from mlxcore.reader.catalog_files import file_identity
        from mlxcore.reader.connection import CATALOG_FILES
        from mlxcore.store import changes

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                changes.identity(logs, RACY_NS, time.time_ns()) is None
                or file_identity(catalog, CATALOG_FILES, RACY_NS) is None):
            time.sleep(0.1)
        DuckDBReader(logs).close()

    def before(name: str) -> None:
        if name in ("warm reopen", "warm reopen + filter"):
            # a warm reopen is one of a process that looked a moment ago at logs and a catalog nobody wrote in
            # the last two seconds (younger changes are never trusted: mlxcore.reader.scan, "racy")
            settled_warm()
        elif name in ("cold index", "cold index + rows"):
            catalog.unlink(missing_ok=True)
        elif name in ("sql join", "sql join (direct)"):
            reader.load_rows(["train"])  # not timed: a first index earlier in the round left them for later
        elif name == "reopen after 10 new runs":
            for n in range(10):
                added.append(write_run(logs, {"seed": n, "optimizer": {"name": "sgd", "lr": 0.05}}, {"train": [
                    {"epoch": e, "loss": 1.0 / (1 + e)} for e in range(rows)]}))
            backdate(logs)
        elif name in ("reopen + filter, full survey", "reopen, every run surveyed"):
            survey_cache.clear()  # as a first reopen in a process, or one 10 s after the last (DuckDB started)

    compare, params = compare_sql(reader.schema(), GROUPS, "train.loss", "last", None, None, "TRUE")
    candidates: dict[str, Callable[[], float]] = {
        "cold index": open_checked(None),
        "cold index + rows": cold_with_rows,
        "raw scan": lambda: raw_scan(logs),
        "python scan": lambda: python_scan(logs),
        "warm reopen": open_checked(0),
        "reopen, every run surveyed": open_checked(0),
        "listing": lambda: listing_floor(logs),
        "reopen after 10 new runs": open_checked(10),
        # milliseconds each: the median of 9 calls a round
        "warm reopen + filter": lambda: median([timed(lambda: DuckDBReader(logs).filter(QUERY)) for _ in range(9)]),
        "reopen + filter, full survey": lambda: timed(lambda: DuckDBReader(logs).filter(QUERY)),
        "filter from files (duckdb)": lambda: duckdb_filter(logs)[0],
        "filter from files (python)": lambda: python_filter(logs)[0],
        "filter": lambda: timed(lambda: reader.filter(QUERY)),
        "filter (direct)": lambda: direct(catalog, reader.filter_sql(QUERY)),
        "compare": lambda: timed(lambda: reader.compare(GROUPS, "train.loss")),
        "compare (direct)": lambda: direct(catalog, compare, params),
        "sql join": lambda: timed(lambda: reader.sql(JOIN)),
        "sql join (direct)": lambda: direct(catalog, JOIN),
    }
    warm_up({name: candidates[name] for name in ("warm reopen", "filter", "compare", "sql join")})
    slow = {"python scan": max(3, repeats // 2), "filter from files (python)": max(3, repeats // 2)}
    got = interleave(candidates, repeats, before=before, counts=slow)
    for log_id in added:  # leave the corpus as it was
        shutil.rmtree(logs / str(log_id))
    reader.refresh()
    m = {name: median(values) for name, values in got.items()}
    ms = {name: value * 1e3 for name, value in m.items()}

    mlxp_times: list[float] = []
    warm: dict[str, float] = {}
    mlxp_note = "MLXP not measured (--no-mlxp or no venv)"
    if with_mlxp and runs <= MLXP_MAX_RUNS:
        mlxp_times, mlxp_runs = mlxp_end_to_end(mlxp_corpus(logs), mlxp_repeats)
        warm = mlxp_warm(mlxp_corpus(logs), max(repeats, 20))
        mlxp_note = (f"MLXP: Reader(refresh=True) + filter({MLXP_QUERY!r}) on the same data written by its own "
                     f"logger, {len(mlxp_times)} run(s), {mlxp_runs} runs found; its import not counted; its warm "
                     f"reopen (refresh=False) {warm['reopen'] * 1e3:.2f} ms, + filter "
                     f"{warm['reopen_filter'] * 1e3:.2f} ms")
    elif with_mlxp:
        mlxp_note = f"MLXP measured only up to {MLXP_MAX_RUNS} runs (quadratic database build)"
    mlxp = median(mlxp_times) * 1e3 if mlxp_times else None
    size = f"{runs} runs x {rows} rows (+ a test row every 10)"
    full_size = runs >= FULL_SIZE  # the issue states these goals at 10,000 runs
    # warm reopen + filter: <= 5 ms at 200 runs, <= 10 ms at 2,000, <= 100 ms at 10,000, <= 1 s at 100,000
    warm_goal = next(((limit, size) for size, limit in ((200, 5), (2000, 10), (FULL_SIZE, 100), (100_000, 1000))
                      if runs <= size), None)
    at_scale = "" if full_size else f" (stated at {FULL_SIZE:,} runs; not judged here)"
    per_run_cold = ms["cold index"] / runs
    return [
        Figure("reader", "first index (cold catalog)", "ms", ms["cold index"], ms["raw scan"],
               "YAML loop + DuckDB read_json of every metric file", repeats=len(got["cold index"]),
               note=f"{size}; the summary columns come from the logger's summaries and the streams' rows are "
                    "left until a query reads them (next figure: with them)"),
        Figure("reader", "first index + every stream's rows", "ms", ms["cold index + rows"], ms["raw scan"],
               "YAML loop + DuckDB read_json of every metric file", goal="within 2x of the raw scan",
               met=m["cold index + rows"] <= 2 * m["raw scan"], repeats=len(got["cold index + rows"]),
               note=f"what a first SQL query over the streams costs after a first index: "
                    f"{ms['cold index + rows'] - ms['cold index']:.0f} ms; plain Python loop (YAML + json.loads) "
                    f"{ms['python scan']:.0f} ms"),
        Figure("reader", "warm reopen (nothing changed)", "ms", ms["warm reopen"], ms["listing"],
               "listing + stat of every run", repeats=len(got["warm reopen"])),
        Figure("reader", "reopen, every run surveyed (nothing changed)", "ms", ms["reopen, every run surveyed"],
               ms["listing"], "listing + stat of every run", repeats=len(got["reopen, every run surveyed"]),
               note="what a reopen costs when it cannot skip the survey (new runs or a write less than 2 s ago, "
                    "the first look of a process, 10 s after the last)"),
        Figure("reader", "reopen after 10 new runs", "ms", ms["reopen after 10 new runs"],
               ms["reopen, every run surveyed"], "reopen, every run surveyed",
               goal=f"about 10 runs' work: what it adds to a surveying reopen < 5% of a first index{at_scale}",
               met=(m["reopen after 10 new runs"] - m["reopen, every run surveyed"] < 0.05 * m["cold index"])
               if full_size else None,
               repeats=len(got["reopen after 10 new runs"]),
               note=f"adds {ms['reopen after 10 new runs'] - ms['reopen, every run surveyed']:.0f} ms to a surveying "
                    f"reopen; 10 runs at "
                    f"the first index's rate: {10 * per_run_cold:.0f} ms; "
                    f"first index {ms['cold index']:.0f} ms"),
        Figure("reader", "warm reopen + filter with a metric predicate", "ms", ms["warm reopen + filter"],
               ms["filter from files (duckdb)"], "same answer from the files (YAML loop + DuckDB read_json)",
               mlxp=warm["reopen_filter"] * 1e3 if warm else None, mlxp_label="MLXP warm reopen + filter",
               goal=f"<= {warm_goal[0]} ms at {warm_goal[1]:,} runs" if warm_goal else "",
               met=(ms["warm reopen + filter"] <= warm_goal[0]) if warm_goal else None,
               repeats=len(got["warm reopen + filter"]),
               note=f"{QUERY!r} -> {len(expected)} runs, in a process that looked less than 10 s ago (the survey "
                    f"skipped: mlxcore.reader.survey); plain Python loop {ms['filter from files (python)']:.0f} ms; "
                    + mlxp_note),
        Figure("reader", "reopen + filter, every run surveyed", "ms", ms["reopen + filter, full survey"],
               ms["listing"], "listing + stat of every run", repeats=len(got["reopen + filter, full survey"]),
               note="as the first reopen in a process once DuckDB has started, or one 10 s after the last look"),
        Figure("reader", "first index + filter (end to end, cold)", "ms", ms["cold index"] + ms["filter"],
               ms["filter from files (duckdb)"], "same answer from the files (YAML loop + DuckDB read_json)",
               mlxp=mlxp, mlxp_label="MLXP Reader + filter", goal="MLXP/mlxcore >= 100x",
               met=(mlxp / (ms["cold index"] + ms["filter"]) >= 100) if mlxp else None,
               repeats=len(got["cold index"]), note="sum of the medians of the first index and of the filter"),
        Figure("reader", "filter with a metric predicate (open reader)", "ms", ms["filter"], ms["filter (direct)"],
               "same SQL by DuckDB on the catalog", repeats=len(got["filter"]),
               note="includes sqlglot translation, attaching the catalog and the pandas frame"),
        Figure("reader", "compare over seeds (2 keys, last loss)", "ms", ms["compare"], ms["compare (direct)"],
               "same SQL by DuckDB on the catalog", repeats=len(got["compare"])),
        Figure("reader", "SQL join runs x train", "ms", ms["sql join"], ms["sql join (direct)"],
               "same SQL by DuckDB on the catalog", repeats=len(got["sql join"]),
               note="includes the read-only check with sqlglot"),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("reader", "mlxcore reader", run, DEFAULT_REPEATS, argv, options=(
        ("--runs", {"type": int, "default": 2000, "help": "runs in the corpus (default 2000)"}),
        ("--rows", {"type": int, "default": 100, "help": "train rows per run (default 100)"}),
        ("--mlxp-repeats", {"type": int, "default": 2, "help": "MLXP end-to-end repeats (slow; default 2)"}),
    ))


if __name__ == "__main__":
    main()
