"""Checking user SQL before it reaches DuckDB: one SELECT (or WITH ... SELECT), over catalog tables only.

This is the first of two locks; the second is the connection itself (:mod:`mlxcore.reader.connection`: the
catalog attached read-only, no file access, configuration locked). Here, with sqlglot's DuckDB parser:

* exactly one statement, and it must be a query (``SELECT``, ``WITH``, ``UNION``/``INTERSECT``/``EXCEPT``,
  DuckDB's ``FROM ... SELECT``); COPY, ATTACH, DETACH, INSTALL, LOAD, PRAGMA, SET, CREATE, INSERT, UPDATE,
  DELETE, DROP, EXPORT, IMPORT, CALL, ... are refused by name, even nested inside a query;
* every table a query reads is allow-listed: the catalog's public tables and views and the query's own CTEs —
  a quoted path (``FROM 'x.csv'``) is not a table;
* table functions are allow-listed (``range``, ``generate_series``, ``unnest``, ``json_each``, ``json_tree``);
  a function sqlglot does not know must be one of DuckDB's scalar, aggregate, window or macro functions minus
  those that run SQL given as text; the file readers (``read_csv``, ``read_json``, ``read_text``,
  ``read_blob``, ``read_parquet``, ``glob``, ...) are table functions and so are refused wherever they appear.

The SQL that runs is sqlglot's rendering of the checked tree, so what was checked is what executes.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from typing import Any

from ..errors import QueryError
from .connection import DENIED_FUNCTIONS, TABLE_FUNCTIONS

#: statements refused by their first keyword (some of them sqlglot cannot even parse for DuckDB)
REFUSED_STATEMENTS = frozenset({
    "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "PRAGMA", "SET", "RESET", "CREATE", "INSERT", "UPDATE",
    "DELETE", "DROP", "EXPORT", "IMPORT", "CALL", "ALTER", "USE", "VACUUM", "CHECKPOINT", "FORCE", "BEGIN",
    "START", "COMMIT", "ROLLBACK", "ABORT", "END", "TRUNCATE", "MERGE", "PREPARE", "EXECUTE", "DEALLOCATE",
    "DESCRIBE", "SHOW", "SUMMARIZE", "COMMENT", "REPLACE", "UPSERT", "UPDATE_EXTENSIONS", "EXPLAIN", "ANALYZE",
})
#: sqlglot node classes that write or administer; refused anywhere in the tree
_WRITING_NODES = frozenset({
    "Copy", "Attach", "Detach", "Install", "Pragma", "Set", "Create", "Insert", "Update", "Delete", "Drop",
    "Alter", "Use", "Describe", "Summarize", "Merge", "Transaction", "Commit", "Rollback", "Command",
    "TruncateTable", "Show", "Export", "Load",
})
_FILE_NODES = frozenset({"ReadCSV", "ReadParquet"})
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]


def _first_keyword(sql: str) -> str:
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import TokenError

    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError as exc:
        raise QueryError(f"cannot read SQL {sql.strip()[:80]!r}: {_one_line(exc)}") from None
    if not tokens:
        return ""
    first = tokens[0].text.upper()
    return f"{first} {tokens[1].text.upper()}" if first == "FORCE" and len(tokens) > 1 else first


def _parse(sql: str) -> Any:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    logger = logging.getLogger("sqlglot")  # it warns about syntax it falls back on; we refuse that anyway
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        raise QueryError(f"cannot parse SQL {sql.strip()[:80]!r}: {_one_line(exc)}") from None
    finally:
        logger.setLevel(level)


def check_select(sql: str, tables: Iterable[str], functions: Iterable[str], table_functions: Iterable[str],
                 read: set[str] | None = None) -> str:
    """Return the SQL to run for ``sql``, or raise :class:`QueryError` saying what is refused and why.

    :param tables: the names a query may read (``runs``, ``train``, ``metrics.train``, ...).
    :param functions: DuckDB's callable (non-table) function names, lower case: the allow-list.
    :param table_functions: DuckDB's table function names, lower case: refused unless in ``TABLE_FUNCTIONS``.
    :param read: receives the names of the tables the query reads, lower case, as in ``tables``.
    """
    from sqlglot import exp

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty SQL query; give a SELECT or WITH query")
    keyword = _first_keyword(sql)
    if keyword.split(" ")[0] in REFUSED_STATEMENTS:
        raise QueryError(f"refused SQL: {keyword} statements are not allowed; only SELECT and WITH queries run")
    statements = _parse(sql)
    if len(statements) != 1:
        raise QueryError(f"refused SQL: give exactly one statement, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise QueryError(f"refused SQL: {type(tree).__name__.upper()} statements are not allowed; "
                         "only SELECT and WITH queries run")
    allowed = {t.lower() for t in tables}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    callable_ = frozenset(functions)
    table_fns = frozenset(table_functions)
    for node in tree.walk():
        kind = type(node).__name__
        if kind in _WRITING_NODES:
            raise QueryError(f"refused SQL: {kind.upper()} is not allowed inside a query")
        if isinstance(node, exp.Table):
            name = _check_table(node, allowed, ctes)
            if name and read is not None:
                read.add(name)
        elif isinstance(node, exp.Func) and not isinstance(node.parent, exp.Table):
            _check_function(node, callable_, table_fns)
    return tree.sql(dialect="duckdb")


def _refuse_function(name: str, table: bool = False) -> QueryError:
    what = "table function" if table else "function"
    return QueryError(f"refused SQL: {what} {name}() is not allowed (queries read the catalog tables only; "
                      f"table functions allowed: {', '.join(sorted(TABLE_FUNCTIONS))})")


def _check_function(node: Any, callable_: frozenset[str], table_fns: frozenset[str]) -> None:
    """Functions sqlglot does not know (``Anonymous``) must be on DuckDB's allow-list; the ones it knows are
    standard SQL functions, checked by the name they render to."""
    from sqlglot import exp

    if type(node).__name__ in _FILE_NODES:
        raise _refuse_function(node.sql_name().lower(), table=True)
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in callable_ or name in TABLE_FUNCTIONS:
            return
        if name in table_fns or name in DENIED_FUNCTIONS:
            raise _refuse_function(name, table=name in table_fns)
        close = difflib.get_close_matches(name, sorted(callable_), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise QueryError(f"refused SQL: unknown function {name}(){hint}")
    match = _CALL.match(node.sql(dialect="duckdb"))
    if match:
        name = match.group(1).lower()
        if name not in callable_ and name not in TABLE_FUNCTIONS and (name in table_fns or name.startswith("read_")):
            raise _refuse_function(name, table=True)


def _check_table(node: Any, allowed: set[str], ctes: set[str]) -> str | None:
    """The catalog table ``node`` reads (``None``: a CTE or an allowed table function), or a refusal."""
    from sqlglot import exp

    this = node.this
    if isinstance(this, exp.Func):
        if isinstance(this, (exp.GenerateSeries, exp.Unnest, exp.Explode)):
            return None  # its arguments are walked (and checked) like the rest of the query
        name = str(this.name).lower() if isinstance(this, exp.Anonymous) else this.sql_name().lower()
        if isinstance(this, exp.Anonymous) and name in TABLE_FUNCTIONS:
            return None
        raise _refuse_function(name, table=True)
    if not isinstance(this, exp.Identifier):
        raise QueryError(f"refused SQL: cannot read from {node.sql(dialect='duckdb')}")
    if node.catalog:
        raise QueryError(f"refused SQL: table {node.sql(dialect='duckdb')} names a database; valid tables: "
                         f"{', '.join(sorted(allowed))}")
    name = this.name.lower()
    db = node.db.lower() if node.db else ""
    full = f"{db}.{name}" if db and db != "main" else name
    if not db and name in ctes:
        return None
    if full in allowed:
        return full
    close = difflib.get_close_matches(full, sorted(allowed), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise QueryError(f"unknown table {full!r}{hint}; valid: {', '.join(sorted(allowed))}")
