"""The requested cost of our GraphQL documents, as Shopify charges it before running them.

Shopify's rules ("GraphQL Admin API rate limits"): scalars and enums 0, an object 1, a
connection sized by its `first`, a mutation 10, an interface the most expensive of its
possible selections. The requested cost is taken from the bucket up front and the unspent
part refunded after, so an estimate that errs high only parks points for one round trip,
while one that errs low would get calls THROTTLED or refused (MAX_COST_EXCEEDED). Where the
published rules leave room we therefore take the higher reading:

- a connection costs 2 plus `first` times the cost of one node (Shopify's own description of
  its calculator: "two points plus the number of objects"); `pageInfo` counts as an object;
- a list of objects sized by an argument list (`nodes(ids:)`, `quantities(names:)`) costs that
  many objects; any other list of objects counts as one;
- a mutation field costs 10 plus its payload selection as a query would (our payloads hold
  `userErrors` only: 11 requested). What a mutation actually spends is 10 (Shopify's
  documented mutation cost); the refund after each answer gives the difference back.

This is a calculator for the shapes in `documents.py`, not for arbitrary GraphQL (named
fragments are refused).
"""
from __future__ import annotations

from functools import lru_cache

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
)
from graphql.language import DocumentNode

OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10
_SIZE_ARGUMENTS = ("first", "last")
_LIST_ARGUMENTS = ("ids", "names")


@lru_cache(maxsize=64)
def _parsed(document: str) -> DocumentNode:
    return parse(document, no_location=True)


def requested_cost(document: str, variables: dict | None = None) -> int:
    """Points Shopify takes from the bucket before running `document` with `variables`."""
    variables = variables or {}
    total = 0
    for definition in _parsed(document).definitions:
        if not isinstance(definition, OperationDefinitionNode):
            raise ValueError("named fragments are not supported by this calculator")
        if definition.operation is OperationType.MUTATION:
            total += sum(
                MUTATION_COST + _selection_cost(selection.selection_set, variables)
                for selection in definition.selection_set.selections if isinstance(selection, FieldNode)
            )
        else:
            total += _selection_cost(definition.selection_set, variables)
    return total


def expected_spend(document: str, variables: dict | None = None) -> int:
    """Points `document` is expected to keep after Shopify's refund: 10 per mutation field
    (our payloads select `userErrors` only, which cost nothing when they come back empty);
    for a query, its requested cost (what it returns is not known before it runs). The rate
    limiter spaces refused calls by it."""
    requested = requested_cost(document, variables)
    mutations = sum(
        1
        for definition in _parsed(document).definitions
        if isinstance(definition, OperationDefinitionNode) and definition.operation is OperationType.MUTATION
        for selection in definition.selection_set.selections if isinstance(selection, FieldNode)
    )
    return min(requested, mutations * MUTATION_COST) if mutations else requested


def linear_capacity(cost_of, limit: int, ceiling: int) -> int:
    """How many elements (at most `ceiling`) fit in one document under `limit` points, for a
    document whose cost grows linearly with its element count (`cost_of(n)`)."""
    fixed = cost_of(0)
    each = cost_of(1) - fixed
    if each <= 0:
        return ceiling
    return max(1, min(ceiling, (limit - fixed) // each))


def _selection_cost(selection_set: SelectionSetNode | None, variables: dict) -> int:
    if selection_set is None:
        return 0
    fields = 0
    fragments = [0]
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            fields += _field_cost(selection, variables)
        elif isinstance(selection, InlineFragmentNode):
            fragments.append(_selection_cost(selection.selection_set, variables))
        elif isinstance(selection, FragmentSpreadNode):
            raise ValueError("named fragments are not supported by this calculator")
    # Type conditions exclude one another: an interface costs its dearest possible selection.
    return fields + max(fragments)


def _field_cost(field: FieldNode, variables: dict) -> int:
    if field.selection_set is None:
        return 0  # scalar, enum or list of them
    arguments = {argument.name.value: argument.value for argument in field.arguments}
    size_name = next((name for name in _SIZE_ARGUMENTS if name in arguments), None)
    if size_name is not None:
        size = _int_value(arguments[size_name], variables)
        total = CONNECTION_COST
        for child in field.selection_set.selections:
            if isinstance(child, FieldNode) and child.name.value in ("nodes", "edges"):
                total += size * (OBJECT_COST + _selection_cost(child.selection_set, variables))
            elif isinstance(child, FieldNode):
                total += _field_cost(child, variables)
        return total
    list_name = next((name for name in _LIST_ARGUMENTS if name in arguments), None)
    count = _list_length(arguments[list_name], variables) if list_name else 1
    return count * (OBJECT_COST + _selection_cost(field.selection_set, variables))


def _int_value(node, variables: dict) -> int:
    if isinstance(node, VariableNode):
        return int(variables[node.name.value])
    if isinstance(node, IntValueNode):
        return int(node.value)
    raise ValueError(f"cannot size a connection by {node.kind}")


def _list_length(node, variables: dict) -> int:
    if isinstance(node, VariableNode):
        value = variables[node.name.value]
        return len(value) if isinstance(value, (list, tuple)) else 1
    if isinstance(node, ListValueNode):
        return len(node.values)
    return 1
