"""The grammar of MLXP filter strings: a tokenizer and a recursive-descent parser building a small tree.

::

    filter     := or | (nothing: every run)
    or         := and ("|" and)*
    and        := not ("&" not)*
    not        := "~" not | "(" or ")" | comparison
    comparison := NAME ("==" | "!=" | "<" | "<=" | ">" | ">=") value | NAME "in" list
    list       := "[" (value ("," value)* ","?)? "]"
    value      := STRING | NUMBER | "true" | "false" | "True" | "False" | "null" | "None"

``|`` binds loosest, then ``&``, then ``~``, then the comparisons (MLXP's precedence, so ``a == 1 & b == 2``
and ``~a == 1`` mean what they say). A NAME is a dotted (or dashed) column name written without spaces
(``config.optimizer.lr``, ``config.warm-up``, ``log_id``). A STRING is quoted with ``'`` or ``"`` and takes
Python's backslash escapes. A NUMBER is an integer or a decimal with an optional sign and exponent (``-3``,
``1e-2``, ``.5``); a literal beyond the float range (``1e999``) is infinity, as in Python.

Nothing else is read: no SQL keyword (``OR``, ``AND``, ``NOT``), no ``=``, ``||``, ``--`` comment, ``;``,
arithmetic or function call; a bare name is not a condition and a value may only follow an operator. Every
refusal is a :class:`~mlxcore.errors.QueryError` naming what was found, where, and what may stand there. A
filter longer than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH` levels of ``(`` and
``~`` is refused before it is read further (no RecursionError, no memory blow-up).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError

MAX_LENGTH = 10_000
MAX_DEPTH = 50

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
ALLOWED = ("== != < <= > >= in, & | ~ ( ), column names, 'strings' or \"strings\", numbers, "
           "true/false, null/None, [lists] after in")
Value = str | int | float | bool | None


@dataclass(frozen=True)
class Compare:
    """``name op value``; ``op`` is one of :data:`OPERATORS`."""

    name: str
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    """``name in [values]``."""

    name: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | In | Not | And | Or

_WORDS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_KEYWORDS = ("not", "and", "or", "is", "in", "select")
_HINTS = {"or": "write | for or", "and": "write & for and", "not": "write ~( ... ) for not",
          "is": "write == null or != null", "=": "write == to compare", "||": "write | for or",
          "&&": "write & for and", "--": "comments are not part of the filter language",
          "!": "write != or ~", ";": "give one condition", "<>": "write !="}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*(?:[.-]\w+)*)
  | (?P<op>==|!=|<=|>=|<>|&&|\|\||--|[<>&|~()\[\],])
""", re.VERBOSE | re.DOTALL)
_WORD = re.compile(r"[+-]?[\w.]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3}|\n|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "v": "\v", "\n": ""}


@dataclass(frozen=True)
class Token:
    kind: str  #: string, number, name, op, end, or bad (then :attr:`value` is the error to raise)
    text: str
    start: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the filter"
        if self.kind == "name":
            return f"name {_short(self.text)!r}"
        if self.kind in ("string", "number"):
            return f"{self.kind} {_short(self.text)}"
        return repr(self.text)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(text: str) -> Node | None:
    """The tree of the filter ``text`` (``None`` for a blank filter: every run).

    :raises QueryError: the text is not a filter of this grammar, is too long or nested too deep.
    """
    if len(text) > MAX_LENGTH:
        raise QueryError(f"filter of {len(text):,} characters refused: at most {MAX_LENGTH:,}")
    tokens = tokenize(text)
    if tokens[0].kind == "end":
        return None  # a bad first token is raised by the parser
    return _Parser(text, tokens).filter()


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token, or with a ``bad`` one whose :attr:`Token.value` is the
    error to raise when the parser reaches it (so that the first problem in reading order is the one reported)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or (match.lastgroup == "op" and match.group() in _HINTS):
            tokens.append(Token("bad", text[pos], pos, _refused_character(text, pos)))
            return tokens
        kind, word, end = match.lastgroup or "", match.group(), match.end()
        if kind == "number" and end < len(text) and (text[end].isalnum() or text[end] in "_."):
            whole = _WORD.match(text, pos)
            tokens.append(Token("bad", word, pos, error(
                text, pos, f"number {_short(whole.group() if whole else word)!r}", "a number such as 3, -0.5, 1e-2",
                "no underscores, hexadecimal or suffixes")))
            return tokens
        if kind == "string":
            value = _unescape(word[1:-1])
            if _SURROGATE.search(value):  # no stored text holds one, and UTF-8 cannot carry it to DuckDB
                tokens.append(Token("bad", word, pos, error(text, pos, "a string holding a lone surrogate",
                                                            "text UTF-8 can encode")))
                return tokens
            tokens.append(Token(kind, word, pos, value))
        elif kind == "number":
            try:
                tokens.append(Token(kind, word, pos, _number(word)))
            except ValueError:  # more digits than Python reads (sys.get_int_max_str_digits)
                tokens.append(Token("bad", word, pos, error(text, pos, f"a number of {len(word):,} characters",
                                                            "a number Python can read")))
                return tokens
        elif kind != "space":
            tokens.append(Token(kind, word, pos))
        pos = end
    tokens.append(Token("end", "", len(text)))
    return tokens


def _refused_character(text: str, pos: int) -> QueryError:
    found = text[pos]
    if found in "'\"":
        return error(text, pos, f"a string opened with {found} and never closed", "a closing " + found)
    for sign in ("||", "&&", "--", "<>"):
        if text.startswith(sign, pos):
            found = sign
            break
    return error(text, pos, f"{found!r}, which is not part of the filter language", ALLOWED, _HINTS.get(found, ""))


def _number(word: str) -> int | float:
    if any(c in word for c in ".eE"):
        return float(word)  # 1e999 is inf, as in Python
    return int(word)


def _unescape(body: str) -> str:
    return _ESCAPE.sub(_one_escape, body)


def _one_escape(match: re.Match) -> str:
    code = match.group(1)
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    head = code[0]
    if head in "xuU" and len(code) > 1:
        value = int(code[1:], 16)
        return chr(value) if value <= 0x10FFFF else match.group()
    if head == "N" and len(code) > 1:
        import unicodedata

        try:
            return unicodedata.lookup(code[2:-1])
        except KeyError:
            return match.group()
    if head.isdigit() and head < "8":
        return chr(int(code, 8))
    return match.group()  # an unknown escape stays as written, as in Python


def error(text: str, pos: int, found: str, expected: str, hint: str = "") -> QueryError:
    """``cannot parse filter '...': at column N, found X; expected Y (hint)``."""
    shown = _short(text, 120)
    return QueryError(f"cannot parse filter {shown!r}: at column {pos + 1}, found {found}; expected {expected}"
                      + (f" ({hint})" if hint else ""))


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        token = self.tokens[self.at]
        if token.kind == "bad":
            raise token.value
        return token

    def take(self) -> Token:
        token = self.token
        self.at += 1
        return token

    def refuse(self, expected: str, hint: str = "") -> QueryError:
        token = self.token
        if not hint:
            hint = _HINTS.get(token.text.lower(), "") if token.kind in ("name", "op") else ""
        return error(self.text, token.start, token.describe(), expected, hint)

    def filter(self) -> Node:
        node = self.disjunction()
        if self.token.kind != "end":
            hint = "a value may only follow a comparison operator" if self.token.kind in ("number", "string") else ""
            raise self.refuse("'&', '|', ')' or the end of the filter", hint)
        return node

    def disjunction(self) -> Node:
        items = [self.conjunction()]
        while self.token.text == "|" and self.token.kind == "op":
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.token.text == "&" and self.token.kind == "op":
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Node:
        token = self.token
        if token.kind == "op" and token.text in ("~", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise error(self.text, token.start, f"more than {MAX_DEPTH} levels of '(' and '~'",
                            f"at most {MAX_DEPTH} nested levels")
            self.take()
            if token.text == "~":
                node: Node = Not(self.negation())
            else:
                node = self.disjunction()
                if self.token.text != ")" or self.token.kind != "op":
                    raise self.refuse(f"')' closing the '(' at column {token.start + 1}, '&' or '|'")
                self.take()
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        token = self.token
        if token.kind != "name" or token.text in _WORDS or token.text.lower() in _KEYWORDS:
            hint = _HINTS.get(token.text.lower(), "") if token.kind == "name" else ""
            if not hint and token.kind in ("number", "string", "name"):
                hint = "a condition starts with a column name, e.g. config.seed == 1"
            raise self.refuse("a condition: a column name, '~' or '('", hint)
        self.take()
        op = self.token
        if op.kind == "op" and op.text in OPERATORS:
            self.take()
            return Compare(token.text, op.text, self.value())
        if op.kind == "name" and op.text == "in":
            self.take()
            return In(token.text, self.values())
        hint = ""
        if op.text == "(":
            hint = "a function call is not part of the filter language"
        elif op.kind in ("end",) or op.text in ("&", "|", ")"):
            hint = f"a bare column is not a condition; compare it, e.g. {token.text} == true"
        elif op.kind == "name" and op.text == "not":
            hint = f"write ~({token.text} in [...])"
        raise self.refuse("a comparison (== != < <= > >=) or 'in' after the column name", hint)

    def value(self) -> Value:
        token = self.token
        if token.kind in ("string", "number"):
            self.take()
            return token.value
        if token.kind == "name" and token.text in _WORDS:
            self.take()
            return _WORDS[token.text]
        hint = ""
        if token.kind == "name":
            spelled = {"true": "true", "false": "false", "null": "null", "none": "null"}.get(token.text.lower())
            hint = f"write {spelled}" if spelled else "a comparison is between a column and a value"
        raise self.refuse("a value: a quoted string, a number, true, false or null", hint)

    def values(self) -> tuple[Value, ...]:
        if self.token.text != "[" or self.token.kind != "op":
            raise self.refuse("a list after 'in', e.g. [1, 2]")
        self.take()
        values: list[Value] = []
        while not (self.token.text == "]" and self.token.kind == "op"):
            values.append(self.value())
            if self.token.text == "," and self.token.kind == "op":
                self.take()
            elif not (self.token.text == "]" and self.token.kind == "op"):
                raise self.refuse("',' or ']' in the list")
        self.take()
        return tuple(values)
