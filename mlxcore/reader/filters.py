"""MLXP's filter language with Python's semantics, translated to one SQL condition over the ``runs`` table.

``config.optimizer.lr <= 1e-2 & info.status == 'COMPLETE'``, ``config.model.depth in [4, 8]``,
``~(train.loss.last > 0.1) | config.seed == null``. The grammar (:mod:`.filter_grammar`) is MLXP's: ``== != <
<= > >= in``, ``&``, ``|``, ``~``, parentheses, quoted strings, numbers, ``true/false/True/False``,
``null/None``, ``[lists]`` after ``in``; names are ``runs`` columns (case-insensitive). ``|`` binds loosest, then
``&``, then ``~``, then comparisons: ``~a == 1 & b == 2`` is ``(not (a == 1)) and (b == 2)``. Anything else
(SQL's ``OR``/``AND``/``NOT``, ``=``, ``||``, ``--``, function calls, arithmetic, a bare column as a condition
(write ``config.flag == true``), ``not in`` (write ``~(x in [...])``), a filter over 10,000 characters or
nested over 50 levels) is a :class:`~mlxcore.errors.QueryError` saying what was found, where, and what may
stand there.

**Semantics: what Python says, run by run.** A run's value ``v`` is what ``cfg.get(key)`` gives on the run's
flattened config, info and metric summaries (``None`` when the run lacks the key). Then:

* ``v == x`` and ``v != x`` are Python's (``!=`` is ``not ==``): a missing key is ``== null`` and ``!=``
  every other value; NaN is ``!=`` everything, itself included; ``True == 1 == 1.0`` (bool is an int in
  Python, so ``== true`` also selects a run whose value is ``1``); a number never equals a string; a list or
  mapping never equals a scalar. Integers and floats compare exactly (``2**53 + 1 != 2.0**53``).
* ``v < x`` (and ``<= > >=``) is Python's when Python can order the two: numbers (bools as 0/1) with numbers,
  strings with strings (by code point). Where Python would raise ``TypeError`` (a string against a number,
  ``None`` or a list against anything) the comparison is False for that run, which is then simply not
  selected. NaN is False under every ordering (DuckDB orders NaN above every number; not here).
* ``v in [a, b]`` is Python's ``in``: ``v == a or v == b`` (``None in [None]`` is true, NaN is in no list).
* ``~c`` is ``not c``, ``&`` ``and``, ``|`` ``or``, in two-valued logic: every comparison above is True or
  False for every run (never SQL's NULL), so ``~(config.depth < 8)`` selects the runs lacking ``config.depth``
  and ``~(c)`` always selects exactly the runs ``c`` does not.

**What the catalog keeps** (:mod:`.scan`) makes this exact. A key holding one kind of value across runs gets
that type (BOOLEAN, BIGINT, DOUBLE for integers and floats together, VARCHAR for text and dates, the latter as
ISO text); any other mix (text and numbers, lists, integers a double would round) is a JSON column, where each
value keeps its own JSON type: the number 9 and the text '9' stay apart (``config.batch == 9`` selects the
first, ``config.batch == '9'`` the second), an ordering with a number reads the numbers and skips the text, an
ordering with a string reads the text. A date compares as its ISO text.

Each comparison compiles to SQL that depends on the column's type. With ``types`` (``{column: DuckDB type}``,
e.g. ``reader.schema().columns``) the right form is chosen here; without, the SQL holds one form per kind and
picks one at bind time with ``typeof``, which DuckDB folds to a constant (same answers; binding the longer SQL
costs about 1 ms more per filter). Translations are cached per (filter, columns, types).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from ..errors import QueryError
from . import filter_grammar as grammar
from .filter_grammar import And, Compare, In, Not, Or

MAX_LISTED = 12

BOOL, INT, FLOAT, TEXT, JSON = "bool", "int", "float", "text", "json"
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_HUGE = 2**127 - 1
#: text that Python's json (or DuckDB's cast of a number to text) writes for an integer, and for any number
_INT_TEXT = "'-?(0|[1-9][0-9]*)'"
_NUM_TEXT = r"'-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|-?(NaN|nan|Infinity|inf)'"


def unknown_column(name: str, columns: Iterable[str], where: str) -> QueryError:
    """One line naming ``name``, the closest columns, and some valid ones."""
    columns = sorted(columns)
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    listed = ", ".join(columns[:MAX_LISTED]) + (f", ... ({len(columns)} in all)" if len(columns) > MAX_LISTED else "")
    return QueryError(f"unknown column {name!r} in {where}{hint}; valid: {listed}")


def parse_filter(text: str | None, columns: Iterable[str] | Mapping[str, str],
                 types: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """``(SQL condition, column names used)`` for the filter ``text`` over ``columns``.

    :param columns: the ``runs`` columns; a mapping ``{column: DuckDB type}`` also gives their types.
    :param types: ``{column: DuckDB type}``; columns without a type get SQL that finds it when the query is bound.
    :raises QueryError: the filter is not in the language (the message says what was found, where, and what
        may stand there), or names an unknown column (the message lists the closest ones).
    """
    if text is None:
        return "TRUE", []
    if not isinstance(text, str):
        raise QueryError(f"a filter is a string, not {type(text).__name__}: {text!r}")
    if types is None and isinstance(columns, Mapping):
        types = columns
    names = tuple(columns)
    found = tuple(types.get(name) for name in names) if types else None
    sql, used = _translate(text, names, found)
    return sql, list(used)


@lru_cache(maxsize=256)
def _translate(text: str, names: tuple[str, ...], types: tuple[str | None, ...] | None
               ) -> tuple[str, tuple[str, ...]]:
    tree = grammar.parse(text)
    if tree is None:
        return "TRUE", ()
    lookup = {name.lower(): (name, kind_of(types[i]) if types else None) for i, name in enumerate(names)}
    used: list[str] = []
    return _sql(tree, lookup, names, used), tuple(used)


def kind_of(duck_type: str | None) -> str | None:
    """How values of a column of ``duck_type`` are compared: ``bool``, ``int``, ``float``, ``text`` or ``json``
    (``None``: type unknown)."""
    if duck_type is None:
        return None
    upper = duck_type.upper()
    if upper == "BOOLEAN":
        return BOOL
    if upper in _INTEGER_TYPES:
        return INT
    if upper in _FLOAT_TYPES or upper.startswith("DECIMAL"):
        return FLOAT
    return JSON if upper == "JSON" else TEXT


def _sql(node: Any, lookup: dict[str, tuple[str, str | None]], names: tuple[str, ...], used: list[str]) -> str:
    if isinstance(node, Not):
        return f"(NOT {_sql(node.item, lookup, names, used)})"
    if isinstance(node, (And, Or)):
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(_sql(item, lookup, names, used) for item in node.items) + ")"
    entry = lookup.get(node.name.lower())
    if entry is None:
        raise unknown_column(node.name, names, "filter")
    column, kind = entry
    used.append(column)
    if kind is not None:
        return _predicate(kind, _Views(column, typed=True), node)
    return _dispatch(column, node)


def _dispatch(column: str, node: Compare | In) -> str:
    """The comparison for a column of unknown type: one form per kind, chosen by ``typeof`` (folded by DuckDB)."""
    views = _Views(column, typed=False)
    otherwise = _predicate(TEXT, views, node)
    test = f"typeof({views.column})"
    cases = [(f"{test} = 'BOOLEAN'", _predicate(BOOL, views, node)),
             (f"{test} IN ({', '.join(_text(t) for t in _INTEGER_TYPES)})", _predicate(INT, views, node)),
             (f"({test} IN ({', '.join(_text(t) for t in _FLOAT_TYPES)}) OR {test} LIKE 'DECIMAL%')",
              _predicate(FLOAT, views, node)),
             (f"{test} = 'JSON'", _predicate(JSON, views, node))]
    whens = [f"WHEN {when} THEN {sql}" for when, sql in cases if sql != otherwise]
    return f"CASE {' '.join(whens)} ELSE {otherwise} END" if whens else otherwise


class _Views:
    """SQL for a column's value as each kind; without the type (``typed=False``) every view is a cast that binds
    whatever the column's type (only the one matching it is kept once ``typeof`` is folded)."""

    def __init__(self, column: str, typed: bool) -> None:
        c = self.column = '"' + column.replace('"', '""') + '"'
        try_cast = "CAST" if typed else "TRY_CAST"
        self.boolean = f"{try_cast}({c} AS INTEGER)"
        self.integer = c if typed else f"TRY_CAST({c} AS HUGEINT)"
        self.double = c if typed else f"TRY_CAST({c} AS DOUBLE)"
        self.text = f"CAST({c} AS VARCHAR)"
        self.json = c if typed else f"TRY_CAST({c} AS JSON)"


def _predicate(kind: str, views: _Views, node: Compare | In) -> str:
    """True or False (never NULL) for each run: ``node`` over a column of ``kind``."""
    if isinstance(node, In):
        return _member(kind, views, node.values)
    if node.op == "==":
        return _member(kind, views, (node.value,))
    if node.op == "!=":
        return f"NOT {_member(kind, views, (node.value,))}"
    return _ordered(kind, views, node.op, node.value)


def _member(kind: str, views: _Views, values: tuple[Any, ...]) -> str:
    """``v in values`` (``v == x`` for one value)."""
    numbers = [v for v in values if isinstance(v, (bool, int, float))]
    strings = sorted({v for v in values if isinstance(v, str)})
    parts = []
    if any(v is None for v in values):
        parts.append(_is_null(kind, views))
    if numbers:
        parts.append(_number_in(kind, views, numbers))
    if strings:
        listed = ", ".join(_text(s) for s in strings)
        if kind == TEXT:
            parts.append(f"{views.text} IN ({listed})")
        elif kind == JSON:
            parts.append(f"(json_type({views.json}) = 'VARCHAR' AND ({views.json} ->> '$') IN ({listed}))")
    parts = [p for p in parts if p != "FALSE"]
    if not parts:
        return "FALSE"
    return _two_valued(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")")


def _is_null(kind: str, views: _Views) -> str:
    if kind == JSON:
        return f"({views.column} IS NULL OR json_type({views.json}) = 'NULL')"
    return f"{views.column} IS NULL"


def _number_in(kind: str, views: _Views, numbers: list[bool | int | float]) -> str:
    """``v in numbers``, exactly: an integer value is looked up among the integral numbers, a float among the
    numbers a double can hold exactly."""
    integers = sorted({int(x) for x in numbers if not isinstance(x, float) or (math.isfinite(x) and x.is_integer())
                       if abs(int(x)) <= _HUGE})
    doubles = sorted({float(x) for x in numbers if isinstance(x, float) or _exact_double(int(x)) is not None})
    if 0.0 in doubles:
        doubles.append(-0.0)  # equal to 0.0, but hashed apart if DuckDB builds a hash set of the list

    def integer_in(expr: str) -> str:
        return f"{expr} IN ({', '.join(map(_integer, integers))})" if integers else "FALSE"

    def double_in(expr: str) -> str:
        return f"{expr} IN ({', '.join(map(_double, doubles))})" if doubles else "FALSE"

    if kind == BOOL:
        return integer_in(views.boolean) if {0, 1} & set(integers) else "FALSE"
    if kind == INT:
        return integer_in(views.integer)
    if kind == FLOAT:
        return double_in(views.double)
    if kind == TEXT:  # text only: no number equals a string
        return "FALSE"
    return _decoded(kind, views, integer_in, double_in, lambda flag: _constant(flag in integers))


def _ordered(kind: str, views: _Views, op: str, value: Any) -> str:
    """``v < value`` (or ``<= > >=``): False where Python would raise, and for NaN."""
    if value is None:
        return "FALSE"
    if isinstance(value, str):
        text = _text(value)
        if kind == TEXT:
            return _two_valued(f"{views.text} {op} {text}")
        if kind == JSON:
            return _two_valued(f"(json_type({views.json}) = 'VARCHAR' AND ({views.json} ->> '$') {op} {text})")
        return "FALSE"
    if kind == BOOL:
        return _two_valued(_integer_order(views.boolean, op, value))
    if kind == INT:
        return _two_valued(_integer_order(views.integer, op, value))
    if kind == FLOAT:
        return _two_valued(_double_order(views.double, op, value))
    if kind == TEXT:  # Python cannot order a string and a number
        return "FALSE"
    return _two_valued(_decoded(kind, views, lambda e: _integer_order(e, op, value),
                                lambda e: _double_order(e, op, value),
                                lambda flag: _constant(_python_order(flag, op, value))))


def _decoded(kind: str, views: _Views, on_integer: Any, on_double: Any, on_flag: Any) -> str:
    """A test of a JSON value read as its JSON type: an integer (within 128 bits), another number,
    ``true``/``false`` (as 1/0), or none of these (False)."""
    t = views.text
    integer, double = on_integer(f"TRY_CAST({t} AS HUGEINT)"), on_double(f"TRY_CAST({t} AS DOUBLE)")
    cases = [(f"regexp_full_match({t}, {_INT_TEXT}) AND TRY_CAST({t} AS HUGEINT) IS NOT NULL", integer),
             (f"regexp_full_match({t}, {_NUM_TEXT})", double), (f"{t} = 'true'", on_flag(1)),
             (f"{t} = 'false'", on_flag(0))]
    while cases and cases[-1][1] == "FALSE":  # the ELSE says so
        cases.pop()
    if not cases:
        return "FALSE"
    return "CASE " + " ".join(f"WHEN {when} THEN {then}" for when, then in cases) + " ELSE FALSE END"


def _integer_order(expr: str, op: str, value: float) -> str:
    """``expr op value`` for an integer ``expr``, exact for any ``value``."""
    if isinstance(value, float):
        if math.isinf(value):
            return _holds_for_any(expr, _python_order(0, op, value))
        if not value.is_integer():  # i < 2.5 is i <= 2; i > 2.5 is i >= 3
            op, value = ("<=", math.floor(value)) if op in ("<", "<=") else (">=", math.ceil(value))
    number = int(value)
    if abs(number) > _HUGE:  # every integer of the column is on the same side
        return _holds_for_any(expr, _python_order(0, op, number))
    return f"{expr} {op} {_integer(number)}"


def _double_order(expr: str, op: str, value: float) -> str:
    """``expr op value`` for a double ``expr``, exact for an integer ``value`` a double cannot hold; NaN is
    False (DuckDB orders it above every number)."""
    if not isinstance(value, float):
        number = int(value)
        exact = _exact_double(number)
        if exact is not None:
            value = exact
        else:  # d < n is d <= the largest double below n; d > n is d >= the smallest above
            near = _nearest_double(number)
            if op in ("<", "<="):
                op, value = "<=", near if near < number else math.nextafter(near, -math.inf)
            else:
                op, value = ">=", near if near > number else math.nextafter(near, math.inf)
    test = f"{expr} {op} {_double(value)}"
    return f"({test} AND NOT isnan({expr}))" if op in (">", ">=") else test


def _exact_double(number: int) -> float | None:
    near = _nearest_double(number)
    return near if near == number else None


def _nearest_double(number: int) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _python_order(left: Any, op: str, right: Any) -> bool:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _two_valued(sql: str) -> str:
    return sql if sql in ("TRUE", "FALSE") else f"COALESCE({sql}, FALSE)"


def _holds_for_any(expr: str, flag: bool) -> str:
    """True for every value of ``expr`` (not for a missing one), or False."""
    return f"{expr} IS NOT NULL" if flag else "FALSE"


def _constant(flag: bool) -> str:
    return "TRUE" if flag else "FALSE"


def _integer(number: int) -> str:
    return str(number) if -(2**63) <= number < 2**63 else f"CAST('{number}' AS HUGEINT)"


def _double(number: float) -> str:
    return f"CAST('{number!r}' AS DOUBLE)"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
