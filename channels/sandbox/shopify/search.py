"""Shopify's search syntax for the `query:` argument, for the fields a sync adapter filters on.

    sku:ABC-1 OR sku:"DEF 2"      either SKU (single quotes work too)
    product_id:123 sku:A*         both terms (AND is implicit), `*` ends a prefix
    -sku:X   NOT sku:X            negation
    blue                          free text: a SKU or title containing it

Matching is case-insensitive. As on Shopify, a field the resource cannot be searched by is
ignored (Shopify answers a warning and does not filter), so a typo matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

TOKEN = re.compile(
    r"""\s*(?:(?P<paren>[()])|(?P<term>-?(?:[\w.]+:)?(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s()]+)))"""
)

# A record exposes its searchable fields as text: {"sku": "...", "title": "...", "id": "123"}.
Record = dict[str, str]
Predicate = Callable[[Record], bool]


@dataclass(frozen=True)
class Term:
    field: str | None
    value: str
    negated: bool

    def matches(self, record: Record, searchable: frozenset[str]) -> bool:
        if self.field is not None and self.field not in searchable:
            return not self.negated  # ignored, so it filters nothing
        return self._hit(record) != self.negated

    def _hit(self, record: Record) -> bool:
        wanted = self.value.lower()
        if self.field is None:
            return any(wanted in (record.get(name) or "").lower() for name in ("sku", "title"))
        actual = (record.get(self.field) or "").lower()
        if wanted.endswith("*"):
            return actual.startswith(wanted[:-1])
        return actual == wanted


def compile_query(query: str | None, searchable: frozenset[str]) -> Predicate:
    """A predicate over records; OR binds looser than the implicit AND."""
    if not query or not query.strip():
        return lambda record: True
    alternatives: list[list[Term]] = [[]]
    negate_next = False
    for match in TOKEN.finditer(query):
        token = match["term"]
        if token is None:
            continue  # grouping parentheses are not needed for the flat queries adapters send
        if token == "OR":
            alternatives.append([])
            continue
        if token == "AND":
            continue
        if token == "NOT":
            negate_next = True
            continue
        alternatives[-1].append(_term(token, negate_next))
        negate_next = False
    groups = [group for group in alternatives if group]

    def predicate(record: Record) -> bool:
        return any(all(term.matches(record, searchable) for term in group) for group in groups)

    return predicate


def exact_values(query: str | None, field: str) -> list[str] | None:
    """The values of a query made only of `field:value` terms joined by OR, else None.

    That is the shape adapters send (`sku:A OR sku:B`), and it can be answered from an index.
    """
    if not query or not query.strip():
        return None
    values = []
    expect_term = True
    for match in TOKEN.finditer(query):
        token = match["term"]
        if token is None:
            return None
        if not expect_term and token == "OR":
            expect_term = True
            continue
        if not expect_term:
            return None
        term = _term(token, False)
        if term.negated or term.field != field or term.value.endswith("*"):
            return None
        values.append(term.value)
        expect_term = False
    return values if values and not expect_term else None


def _term(token: str, negated: bool) -> Term:
    if token.startswith("-"):
        negated, token = True, token[1:]
    field, separator, value = token.partition(":")
    if not separator:
        field, value = "", token
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return Term(field or None, value, negated)
