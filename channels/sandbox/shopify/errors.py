"""The error objects Shopify's GraphQL Admin API puts in `errors`, shaped as it shapes them.

Shopify runs graphql-ruby, so static validation errors read the graphql-ruby way
("Field 'x' doesn't exist on type 'Y'", `extensions.code` "undefinedField") rather than the
graphql-js way graphql-core prints them. Messages and codes below come from Shopify's own
library fixtures and from responses developers have recorded from live shops; where none was
available the text says so beside it.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

RATE_LIMITS_DOCUMENTATION = "https://shopify.dev/api/usage/rate-limits"
MAX_INPUT_ITEMS = 250


def error(
    message: str,
    code: str | None = None,
    *,
    locations: list[dict[str, int]] | None = None,
    path: list[str | int] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """One entry of a response's `errors` list."""
    entry: dict[str, Any] = {"message": message}
    if locations:
        entry["locations"] = locations
    if path is not None:
        entry["path"] = path
    if code is not None or extensions:
        entry["extensions"] = {**({"code": code} if code is not None else {}), **extensions}
    return entry


def locations_of(graphql_error: GraphQLError) -> list[dict[str, int]]:
    return [{"line": location.line, "column": location.column} for location in graphql_error.locations or []]


def throttled() -> dict[str, Any]:
    return error("Throttled", "THROTTLED", documentation=RATE_LIMITS_DOCUMENTATION)


def max_cost_exceeded(cost: int, max_cost: int) -> dict[str, Any]:
    message = (
        f"Query cost is {cost}, which exceeds the single query max cost limit ({max_cost}).\n\n"
        "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
        "cost of a query is calculated.\n\n"
        "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
        "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
    )
    return error(message, "MAX_COST_EXCEEDED", cost=cost, maxCost=max_cost, documentation=RATE_LIMITS_DOCUMENTATION)


def max_input_size_exceeded(size: int, locations: list[dict[str, int]], path: list[str | int]) -> dict[str, Any]:
    return error(
        f"The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_ITEMS}.",
        "MAX_INPUT_SIZE_EXCEEDED",
        locations=locations,
        path=path,
    )


def invalid_variable(
    variable: str, type_text: str, value: Any, problems: list[dict[str, Any]], locations: list[dict[str, int]]
) -> dict[str, Any]:
    """graphql-ruby's variable coercion failure; one problem is spelled out in the message."""
    message = f"Variable ${variable} of type {type_text} was provided invalid value"
    if len(problems) == 1:
        problem = problems[0]
        where = ".".join(str(part) for part in problem["path"])
        message += f" for {where} ({problem['explanation']})" if where else f" ({problem['explanation']})"
    return error(message, "INVALID_VARIABLE", locations=locations, value=value, problems=problems)


def input_field_not_accepted(input_type: str, field: str, locations: list[dict[str, int]]) -> dict[str, Any]:
    return error(
        f"InputObject '{input_type}' doesn't accept argument '{field}'",
        "argumentNotAccepted",
        locations=locations,
        name=input_type,
        typeName="InputObject",
        argumentName=field,
    )


def undefined_directive(name: str, locations: list[dict[str, int]]) -> dict[str, Any]:
    return error(f"Directive @{name} is not defined", "undefinedDirective", locations=locations, directiveName=name)


def field_error(message: str, code: str, **extensions: Any) -> GraphQLError:
    """An error raised inside a resolver; graphql-core adds locations and path."""
    return GraphQLError(message, extensions={"code": code, **extensions})


def bad_request(message: str) -> GraphQLError:
    return field_error(message, "BAD_REQUEST")
