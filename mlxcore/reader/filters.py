"""MLXP's filter language, translated to a SQL condition with sqlglot (no parser of our own).

``config.optimizer.lr <= 1e-2 & info.status == 'COMPLETE'``, ``config.model.depth in [4, 8]``,
``~(train.loss.last > 0.1) | info.status == null``: the string is tokenized by sqlglot's DuckDB tokenizer; at
the token level ``&`` becomes AND, ``|`` OR, ``~`` NOT, ``[ ]`` parentheses, ``None`` NULL, a double-quoted
text a string, and a dotted name (``config.optimizer.lr``, ``config.warm-up``: no spaces around the dots and
dashes) one quoted column name; sqlglot cannot know that a dot there is part of a name. sqlglot's parser then
builds the tree with SQL precedence (comparison, then NOT, then AND, then OR: ``a == 1 & b == 2`` means what it
says, unlike Python's ``&``).
The tree is checked against an allow-list of node types and the known columns, then given Python's two-valued
logic for missing keys (see :func:`_rewrite`); ``== null`` becomes IS NULL.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ..errors import QueryError

MAX_LISTED = 12


def _allowed_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    return (exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In,
            exp.Is, exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Neg, exp.Tuple)


def unknown_column(name: str, columns: Iterable[str], where: str) -> QueryError:
    """One line naming ``name``, the closest columns, and some valid ones."""
    columns = sorted(columns)
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    listed = ", ".join(columns[:MAX_LISTED]) + (f", ... ({len(columns)} in all)" if len(columns) > MAX_LISTED else "")
    return QueryError(f"unknown column {name!r} in {where}{hint}; valid: {listed}")


def _tokens(text: str) -> list[Any]:
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Token, TokenType

    try:
        raw = DuckDB().tokenize(text)
    except TokenError as exc:
        raise QueryError(f"cannot read filter {text!r}: {' '.join(str(exc).split())[:120]}") from None
    renamed = {TokenType.AMP: (TokenType.AND, "AND"), TokenType.PIPE: (TokenType.OR, "OR"),
               TokenType.DPIPE: (TokenType.OR, "OR"), TokenType.TILDE: (TokenType.NOT, "NOT"),
               TokenType.L_BRACKET: (TokenType.L_PAREN, "("), TokenType.R_BRACKET: (TokenType.R_PAREN, ")")}
    out: list[Any] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        if tok.token_type in renamed:
            kind, txt = renamed[tok.token_type]
            out.append(Token(kind, txt, tok.line, tok.col, tok.start, tok.end))
        elif tok.token_type == TokenType.IDENTIFIER:  # "text": a string, as in Python
            out.append(Token(TokenType.STRING, tok.text, tok.line, tok.col, tok.start, tok.end))
        elif tok.token_type == TokenType.VAR and tok.text == "None":
            out.append(Token(TokenType.NULL, "NULL", tok.line, tok.col, tok.start, tok.end))
        elif _is_word(tok):
            j = i
            while (j + 2 < len(raw) and raw[j + 1].token_type in (TokenType.DOT, TokenType.DASH)
                   and _adjacent(raw[j], raw[j + 1]) and _adjacent(raw[j + 1], raw[j + 2]) and _is_word(raw[j + 2])):
                j += 2
            if j > i:
                name = text[tok.start : raw[j].end + 1]
                out.append(Token(TokenType.IDENTIFIER, name, tok.line, tok.col, tok.start, raw[j].end))
                i = j
            else:
                out.append(tok)
        else:
            out.append(tok)
        i += 1
    return out


def _is_word(tok: Any) -> bool:
    """A name part: a keyword or a bare word (``config``, ``order``, ``lr``, ``0``), never a quoted string."""
    from sqlglot.tokens import TokenType

    text = tok.text
    return tok.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) and bool(text) and \
        text.replace("_", "a").isalnum()


def _adjacent(a: Any, b: Any) -> bool:
    return a.end + 1 == b.start


def parse_filter(text: str, columns: Iterable[str]) -> tuple[str, list[str]]:
    """``(SQL condition, column names used)`` for the filter ``text`` over ``columns``.

    :raises QueryError: the filter cannot be parsed, uses an operator outside the language, or names an
        unknown column (the message lists the closest ones).
    """
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import ParseError

    columns = list(columns)
    if not isinstance(text, str) or not text.strip():
        return "TRUE", []
    tokens = _tokens(text)
    try:
        trees = [t for t in DuckDB().parser().parse(tokens, text) if t is not None]
    except ParseError as exc:
        raise QueryError(f"cannot parse filter {text!r}: {' '.join(str(exc).split())[:160]}") from None
    if len(trees) != 1:
        raise QueryError(f"cannot parse filter {text!r}: give one condition")
    tree = trees[0]
    allowed = _allowed_nodes()
    lookup = {c.lower(): c for c in columns}
    used: list[str] = []
    nodes = list(tree.walk())
    for node in nodes:
        if not isinstance(node, allowed):
            snippet = node.sql(dialect="duckdb")[:40]
            raise QueryError(f"filter {text!r}: {snippet!r} is not part of the filter language; use == != < > <= >= "
                             "in & | ~ ( ), strings, numbers, true/false and null")
        if isinstance(node, exp.Column):
            name = ".".join(part.name for part in node.parts)
            if name.lower() not in lookup:
                raise unknown_column(name, columns, "filter")
            used.append(lookup[name.lower()])
    if isinstance(tree, exp.Literal) or (isinstance(tree, exp.Neg)):
        raise QueryError(f"filter {text!r} is not a condition; compare a column, e.g. config.seed == 1")
    for node in reversed(nodes):  # every node after its descendants, so that rewritten children are kept
        new = _rewrite(node, lookup)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree.sql(dialect="duckdb"), used


def _rewrite(node: Any, lookup: dict[str, str]) -> Any:
    """Quoted column names, and Python's two-valued logic where SQL has three: a run lacking a key (NULL) is
    ``!=`` to any value and ``==`` only to null; ``<``, ``in`` and a bare boolean are false for it, so their
    negation ``~`` is true, as with ``cfg.get(key)`` in Python."""
    from sqlglot import exp

    if isinstance(node, exp.Column):
        column = exp.column(exp.to_identifier(lookup[".".join(p.name for p in node.parts).lower()], quoted=True))
        parent = node.parent
        if parent is None or isinstance(parent, (exp.Not, exp.And, exp.Or)):  # a boolean column as a condition
            return exp.Coalesce(this=column, expressions=[exp.false()])
        return column
    if isinstance(node, (exp.EQ, exp.NEQ)):
        left, right = node.this.copy(), node.expression.copy()
        if isinstance(right, exp.Null) or isinstance(left, exp.Null):
            test = exp.Is(this=left if isinstance(right, exp.Null) else right, expression=exp.Null())
            return test if isinstance(node, exp.EQ) else exp.Not(this=test)
        kind = exp.NullSafeEQ if isinstance(node, exp.EQ) else exp.NullSafeNEQ
        return kind(this=left, expression=right)
    if isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In)):
        return exp.Coalesce(this=node.copy(), expressions=[exp.false()])
    return node
