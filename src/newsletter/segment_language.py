"""The segment expression language: a tokenizer and a recursive-descent parser into a typed tree.

    list = "asp-daily" and language in (fr, ar) and country in ("SN", "CI", "ML")
    role = press or (organisation is set and not ratified = true)
    staff_count >= 10 and joined_on < "2010-01-01"

Grammar (keywords in any case)::

    expression := conjunction ("or" conjunction)*
    conjunction:= negation ("and" negation)*
    negation   := "not" negation | "(" expression ")" | condition
    condition  := FIELD ("=" | "!=" | "<" | "<=" | ">" | ">=") VALUE
                | FIELD ["not"] "in" "(" VALUE ("," VALUE)* ")"
                | FIELD "is" ["not"] "set"
    VALUE      := "text" | 'text' | WORD | INTEGER | true | false

A FIELD is a word (`list`, `language` or a declared attribute; which ones exist is checked by
`people.segments`, not here). Strings take `\\"`, `\\'` and `\\\\` escapes. The tree holds only
these node types and literal values: it is compiled by `store.segments` into SQLAlchemy
expressions with bound parameters, so no text of an expression ever becomes SQL. Anything else
raises SegmentError with the column where it went wrong. Pure: no store, no I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Union

from .errors import SegmentError
from .texts import N_, Text, text_of

__all__ = ["Filter", "Condition", "IsSet", "And", "Or", "Not", "Node", "Value", "parse_expression", "fields_of",
           "write_condition", "BUILDER_OPERATORS",
           "MAX_LENGTH", "COMPARISONS"]

#: Longest expression accepted, in characters (a segment is a filter, not a program).
MAX_LENGTH = 2000
#: Deepest nesting of parentheses and "not" accepted.
MAX_DEPTH = 32
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
KEYWORDS = {"and", "or", "not", "in", "is", "set", "true", "false"}

Value = Union[str, int, bool]


class Condition(NamedTuple):
    """`field op value` (op one of COMPARISONS), or `field in (…)` / `field not in (…)`."""

    field: str
    op: str
    values: tuple[Value, ...]
    #: Where the condition starts in the expression (1-based; 0: not from a text).
    column: int = 0


class IsSet(NamedTuple):
    """`field is set` (negated: `field is not set`)."""

    field: str
    negated: bool = False
    column: int = 0


class And(NamedTuple):
    items: tuple["Node", ...]


class Or(NamedTuple):
    items: tuple["Node", ...]


class Not(NamedTuple):
    item: "Node"


Node = Union[Condition, IsSet, And, Or, Not]


class Filter(NamedTuple):
    """A checked tree (fields known, values in their stored form) and the type of each declared
    attribute it may name: what the store compiles."""

    tree: Node
    #: ((attribute name, type value), …)
    types: tuple[tuple[str, str], ...]


class _Token(NamedTuple):
    kind: str  # word, string, integer, op, "(", ")", ",", end
    text: str
    value: Value | None
    column: int  # 1-based


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INTEGER = re.compile(r"-?[0-9]+")
_SPACE = re.compile(r"\s+")


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i = _SPACE.match(text, i).end()
            continue
        column = i + 1
        if ch in "\"'":
            j, chars = i + 1, []
            while True:
                if j >= len(text):
                    raise SegmentError(text, column, Text(N_("this string is not closed")))
                c = text[j]
                if c == "\\" and j + 1 < len(text) and text[j + 1] in "\"'\\":
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if c == ch:
                    break
                chars.append(c)
                j += 1
            found.append(_Token("string", text[i:j + 1], "".join(chars), column))
            i = j + 1
            continue
        if ch in "(),":
            found.append(_Token(ch, ch, None, column))
            i += 1
            continue
        two = text[i:i + 2]
        if two in ("!=", "<=", ">="):
            found.append(_Token("op", two, None, column))
            i += 2
            continue
        if ch in "=<>":
            found.append(_Token("op", ch, None, column))
            i += 1
            continue
        match = _INTEGER.match(text, i)
        if match and not _WORD.match(text, match.end()):
            if len(match.group()) > 18:
                raise SegmentError(text, column, Text(N_("this number is too large")))
            found.append(_Token("integer", match.group(), int(match.group()), column))
            i = match.end()
            continue
        match = _WORD.match(text, i)
        if match:
            word = match.group()
            found.append(_Token("word", word, word, column))
            i = match.end()
            continue
        raise SegmentError(text, column, Text.of(N_("unexpected character %(character)s"), character=repr(ch)))
    found.append(_Token("end", "", None, len(text) + 1))
    return found


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.at]

    def keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "word" and token.text.lower() in words

    def take(self) -> _Token:
        token = self.current
        self.at += 1
        return token

    def fail(self, reason: str | Text, token: _Token | None = None) -> SegmentError:
        token = token or self.current
        shown = Text(N_("the end")) if token.kind == "end" else repr(token.text)
        return SegmentError(self.text, token.column, Text.of(N_("%(reason)s, found %(found)s"), reason=text_of(reason),
                                                             found=shown))

    def expression(self) -> Node:
        items = [self.conjunction()]
        while self.keyword("or"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.keyword("and"):
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(Text.of(N_("nested more than %(depth)s deep"), depth=MAX_DEPTH))
        try:
            if self.keyword("not"):
                self.take()
                return Not(self.negation())
            if self.current.kind == "(":
                self.take()
                inner = self.expression()
                if self.current.kind != ")":
                    raise self.fail(Text(N_("expected ')' or 'and'/'or'")))
                self.take()
                return inner
            return self.condition()
        finally:
            self.depth -= 1

    def condition(self) -> Node:
        token = self.current
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise self.fail(Text(N_("expected a field such as list, language or country")))
        column = token.column
        field = self.take().text.lower()
        if self.keyword("is"):
            self.take()
            negated = self.keyword("not")
            if negated:
                self.take()
            if not self.keyword("set"):
                raise self.fail(Text(N_("expected 'set' (write: field is set, field is not set)")))
            self.take()
            return IsSet(field, negated, column)
        negated_in = self.keyword("not")
        if negated_in:
            self.take()
            if not self.keyword("in"):
                raise self.fail(Text(N_("expected 'in' after 'not' (write: field not in (a, b))")))
        if self.keyword("in"):
            self.take()
            if self.current.kind != "(":
                raise self.fail(Text(N_("expected '(' after 'in'")))
            self.take()
            values = [self.value()]
            while self.current.kind == ",":
                self.take()
                values.append(self.value())
            if self.current.kind != ")":
                raise self.fail(Text(N_("expected ',' or ')' in the list of values")))
            self.take()
            return Condition(field, "not in" if negated_in else "in", tuple(values), column)
        if self.current.kind != "op":
            raise self.fail(Text.of(N_("expected a comparison (= != < <= > >=), 'in' or 'is' after %(field)s"),
                                   field=repr(field)))
        op = self.take().text
        return Condition(field, op, (self.value(),), column)

    def value(self) -> Value:
        token = self.current
        if token.kind in ("string", "integer"):
            self.take()
            return token.value  # type: ignore[return-value]
        if token.kind == "word":
            word = token.text.lower()
            if word in ("true", "false"):
                self.take()
                return word == "true"
            if word not in KEYWORDS:
                self.take()
                return token.text
        raise self.fail(Text(N_("expected a value (\"text\", a word, a number, true or false)")))


def parse_expression(text: str) -> Node:
    """The tree of a segment expression. Raises SegmentError (empty, too long, or malformed,
    with the column where it went wrong)."""
    if not isinstance(text, str) or not text.strip():
        raise SegmentError(text if isinstance(text, str) else "", 1, Text(N_("the expression is empty")))
    if len(text) > MAX_LENGTH:
        raise SegmentError(text[:80], MAX_LENGTH, Text.of(N_("the expression is longer than %(max)s characters"),
                                                          max=MAX_LENGTH))
    parser = _Parser(text)
    tree = parser.expression()
    if parser.current.kind != "end":
        raise parser.fail(Text(N_("expected 'and', 'or' or the end")))
    return tree


def fields_of(node: Node) -> set[str]:
    """Every field the tree names."""
    if isinstance(node, (Condition, IsSet)):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.item)
    return set().union(*(fields_of(item) for item in node.items))


#: The operators a form's condition may take (beside the comparisons: in, not in, is set, is not set).
BUILDER_OPERATORS = (*COMPARISONS, "in", "not in", "is set", "is not set")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_condition(field: str, op: str, value: str) -> str:
    """One condition of a form (a field, one of BUILDER_OPERATORS, a value; for `in` and `not in`,
    values separated by commas) as expression text, every value quoted: what the form's user
    typed stays a value. Raises SegmentError for a field that is not a word, an unknown operator
    or a missing value."""
    if not _FIELD.match(field or ""):
        raise SegmentError(field or "", 1, Text(N_("choose a field")))
    if op not in BUILDER_OPERATORS:
        raise SegmentError(f"{field} {op}", len(field) + 2, Text.of(N_("%(op)s is not an operator"), op=repr(op)))
    if op in ("is set", "is not set"):
        return f"{field} {op}"
    values = [v.strip() for v in value.split(",")] if op in ("in", "not in") else [value.strip()]
    values = [v for v in values if v]
    if not values:
        raise SegmentError(f"{field} {op}", len(field) + len(op) + 2,
                           Text.of(N_("give %(field)s a value to compare with"), field=field))
    if op in ("in", "not in"):
        return f"{field} {op} ({', '.join(_quoted(v) for v in values)})"
    return f"{field} {op} {_quoted(values[0])}"
