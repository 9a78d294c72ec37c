"""Turning a request's `query` and `variables` into something safe to cost and execute.

Parsing and validation against the schema are cached per document text (an adapter sends the
same few documents over and over; graphql-core needs a few milliseconds to validate one).
Variables are coerced per request. Errors come out shaped as Shopify's graphql-ruby shapes
them (see `errors.py`); validation messages we have no Shopify wording for keep
graphql-core's text under the code `GRAPHQL_VALIDATION_FAILED`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_input_object_type,
    is_input_type,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_argument_values
from graphql.language import DirectiveNode, FieldNode, ValueNode, VariableNode, Visitor, visit
from graphql.utilities import coerce_input_value, type_from_ast, value_from_ast, value_from_ast_untyped

from . import errors
from .graphql_schema import admin_schema
from .versions import ApiVersion

DOCUMENT_CACHE_SIZE = 512

# (graphql-core message pattern, builder of the graphql-ruby style error)
ValidationTranslation = tuple[re.Pattern[str], Callable[[re.Match[str], list[dict[str, int]]], dict[str, Any]]]

VALIDATION_TRANSLATIONS: list[ValidationTranslation] = [
    (
        re.compile(r"Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'\."),
        lambda match, locations: errors.error(
            f"Field '{match['field']}' doesn't exist on type '{match['type']}'",
            "undefinedField",
            locations=locations,
            typeName=match["type"],
            fieldName=match["field"],
        ),
    ),
    (
        re.compile(r"Unknown argument '(?P<argument>\w+)' on field '\w+\.(?P<field>\w+)'\."),
        lambda match, locations: errors.error(
            f"Field '{match['field']}' doesn't accept argument '{match['argument']}'",
            "argumentNotAccepted",
            locations=locations,
            name=match["field"],
            typeName="Field",
            argumentName=match["argument"],
        ),
    ),
    (
        re.compile(
            r"Field '(?P<field>\w+)' argument '(?P<argument>\w+)' of type '.+' is required, but it was not provided\."
        ),
        lambda match, locations: errors.error(
            f"Field '{match['field']}' is missing required arguments: {match['argument']}",
            "missingRequiredArguments",
            locations=locations,
            className="Field",
            name=match["field"],
            arguments=match["argument"],
        ),
    ),
    (
        re.compile(r"Field '(?P<field>\w+)' is not defined by type '(?P<type>\w+)'\."),
        lambda match, locations: errors.input_field_not_accepted(match["type"], match["field"], locations),
    ),
    (
        re.compile(r"Unknown directive '@(?P<name>\w+)'\."),
        lambda match, locations: errors.undefined_directive(match["name"], locations),
    ),
    (
        # Recorded from a live shop: "'@idempotent' can't be applied to mutations (allowed: fields)".
        re.compile(r"Directive '@(?P<name>\w+)' may not be used on (?P<target>[\w ]+)\."),
        lambda match, locations: errors.error(
            f"'@{match['name']}' can't be applied to {_plural(match['target'])} "
            f"(allowed: {_allowed_locations(match['name'])})",
            "directiveCannotBeApplied",
            locations=locations,
            targetName=_plural(match["target"]),
            name=match["name"],
        ),
    ),
]


def _plural(location: str) -> str:
    words = location.lower().replace("_", " ")
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _allowed_locations(directive_name: str) -> str:
    directive = admin_schema().get_directive(directive_name)
    if directive is None:
        return ""
    return ", ".join(_plural(location.name) for location in directive.locations)


class RequestError(Exception):
    """The request cannot run; `errors` is the response's `errors` list."""

    def __init__(self, error_list: list[dict[str, Any]]) -> None:
        super().__init__(error_list[0]["message"] if error_list else "invalid request")
        self.errors = error_list


@dataclass(frozen=True)
class CompiledDocument:
    """A parsed document and its validation errors (empty when valid), already Shopify-shaped."""

    document: DocumentNode | None
    errors: tuple[dict[str, Any], ...]


@functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def compile_document(query: str) -> CompiledDocument:
    try:
        document = parse(query)
    except GraphQLError as syntax_error:
        # graphql-ruby words parse errors differently; we keep graphql-core's text.
        return CompiledDocument(
            None, (errors.error(syntax_error.message, locations=errors.locations_of(syntax_error)),)
        )
    found = validate(admin_schema(), document)
    return CompiledDocument(document, tuple(shopify_validation_error(item) for item in found))


def shopify_validation_error(graphql_error: GraphQLError) -> dict[str, Any]:
    locations = errors.locations_of(graphql_error)
    for pattern, build in VALIDATION_TRANSLATIONS:
        match = pattern.match(graphql_error.message)
        if match:
            return build(match, locations)
    return errors.error(graphql_error.message, "GRAPHQL_VALIDATION_FAILED", locations=locations)


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    operations = [definition for definition in document.definitions if isinstance(definition, OperationDefinitionNode)]
    if operation_name:
        for operation in operations:
            if operation.name and operation.name.value == operation_name:
                return _supported(operation)
        raise RequestError([errors.error(f'No operation named "{operation_name}"')])
    if len(operations) != 1:
        raise RequestError([errors.error("An operation name is required")])
    return _supported(operations[0])


def _supported(operation: OperationDefinitionNode) -> OperationDefinitionNode:
    if operation.operation is OperationType.SUBSCRIPTION:
        raise RequestError([errors.error("Subscriptions are not supported by the Admin API", "BAD_REQUEST")])
    return operation


def coerce_variables(schema: GraphQLSchema, operation: OperationDefinitionNode, raw: dict[str, Any]) -> dict[str, Any]:
    """The operation's variables coerced to their declared types; RequestError lists every bad one."""
    coerced: dict[str, Any] = {}
    found: list[dict[str, Any]] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        variable_type = type_from_ast(schema, definition.type)
        type_text = print_ast(definition.type)
        locations = [{"line": location.line, "column": location.column} for location in _node_locations(definition)]
        if not is_input_type(variable_type):  # validation has already reported it
            continue
        variable_type = cast(GraphQLInputType, variable_type)
        if name not in raw:
            if definition.default_value is not None:
                coerced[name] = value_from_ast(definition.default_value, variable_type)
            elif type_text.endswith("!"):
                problem = {"path": [], "explanation": "Expected value to not be null"}
                found.append(errors.invalid_variable(name, type_text, None, [problem], locations))
            continue
        problems: list[dict[str, Any]] = []

        def collect(
            path: list[str | int], invalid: Any, error: GraphQLError, problems: list[dict[str, Any]] = problems
        ) -> None:
            problems.append(_problem(list(path), error))

        value = coerce_input_value(raw[name], variable_type, collect)
        if problems:
            found.append(errors.invalid_variable(name, type_text, raw[name], problems, locations))
        else:
            coerced[name] = value
    if found:
        raise RequestError(found)
    return coerced


def _problem(path: list[str | int], error: GraphQLError) -> dict[str, Any]:
    """graphql-core's coercion complaint as graphql-ruby's `{path, explanation}`."""
    message = error.message
    match = re.match(r"Field '(?P<field>\w+)' is not defined by type '(?P<type>\w+)'\.", message)
    if match:
        return {"path": [*path, match["field"]], "explanation": f"Field is not defined on {match['type']}"}
    match = re.match(r"Field '(?P<field>\w+)' of required type '.+' was not provided\.", message)
    if match:
        return {"path": [*path, match["field"]], "explanation": "Expected value to not be null"}
    if message.startswith("Expected non-nullable type"):
        return {"path": path, "explanation": "Expected value to not be null"}
    match = re.match(r"Expected type '\w+'\. (?P<detail>.+)", message)
    if match:
        message = match["detail"]
    match = re.match(r"(?P<type>Int|Float|String|Boolean|ID) cannot represent .*?: (?P<value>.+)$", message)
    if match:
        message = f"Could not coerce value {match['value']} to {match['type']}"
    return {"path": path, "explanation": message}


def _node_locations(node: Any) -> list[Any]:
    if node.loc is None:
        return []
    return [node.loc.source.get_location(node.loc.start)]


def node_locations(node: Any) -> list[dict[str, int]]:
    return [{"line": location.line, "column": location.column} for location in _node_locations(node)]


# --- rules that depend on the API version ----------------------------------------------------

# (input type, field) pairs that exist only from / only before a version.
ADDED_IN_2026_01 = {("InventoryQuantityInput", "changeFromQuantity"), ("InventoryChangeInput", "changeFromQuantity")}
REMOVED_IN_2026_04 = {
    ("InventoryQuantityInput", "compareQuantity"),
    ("InventorySetQuantitiesInput", "ignoreCompareQuantity"),
}


def check_version_rules(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    raw_variables: dict[str, Any],
    version: ApiVersion,
) -> None:
    """Refuse what the extended schema accepts but this version does not know (RequestError)."""
    found: list[dict[str, Any]] = []
    if not version.has_idempotent_directive:
        for directive in _directives_named(document, "idempotent"):
            found.append(errors.undefined_directive("idempotent", node_locations(directive)))
    unknown_fields: set[tuple[str, str]] = set()
    if not version.has_change_from_quantity:
        unknown_fields |= ADDED_IN_2026_01
    if not version.has_compare_quantity:
        unknown_fields |= REMOVED_IN_2026_04
    root = schema.mutation_type if operation.operation is OperationType.MUTATION else schema.query_type
    if unknown_fields and root is not None:
        for field_node in _root_fields(operation):
            field_definition = root.fields.get(field_node.name.value)
            if field_definition is None:
                continue
            for argument in field_node.arguments:
                argument_definition = field_definition.args.get(argument.name.value)
                if argument_definition is None:
                    continue
                found.extend(
                    _version_field_errors(
                        argument.value, argument_definition.type, raw_variables, unknown_fields, operation
                    )
                )
    if found:
        raise RequestError(found)


def _version_field_errors(
    value_node: ValueNode,
    input_type: Any,
    raw_variables: dict[str, Any],
    unknown_fields: set[tuple[str, str]],
    operation: OperationDefinitionNode,
) -> list[dict[str, Any]]:
    """Errors for input fields the version lacks, in the shape Shopify uses for where they came from."""
    # Untyped, so a field left out stays left out (defaults are not filled in).
    value = value_from_ast_untyped(value_node, raw_variables)
    offenders = list(_unknown_input_fields(value, input_type, [], unknown_fields))
    if not offenders:
        return []
    if isinstance(value_node, VariableNode):
        name = value_node.name.value
        definition = next(d for d in operation.variable_definitions if d.variable.name.value == name)
        problems = [{"path": path, "explanation": f"Field is not defined on {owner}"} for owner, path in offenders]
        return [
            errors.invalid_variable(
                name, print_ast(definition.type), raw_variables.get(name), problems, node_locations(definition)
            )
        ]
    return [
        errors.input_field_not_accepted(owner, str(path[-1]), node_locations(value_node)) for owner, path in offenders
    ]


def _unknown_input_fields(
    value: Any, input_type: Any, path: list[str | int], unknown: set[tuple[str, str]]
) -> Iterator[tuple[str, list[str | int]]]:
    named = get_named_type(input_type)
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_input_fields(item, input_type, [*path, index], unknown)
        return
    if not isinstance(value, dict) or not is_input_object_type(named):
        return
    for key, item in value.items():
        if (named.name, key) in unknown:
            yield named.name, [*path, key]
        elif key in named.fields:
            yield from _unknown_input_fields(item, named.fields[key].type, [*path, key], unknown)


def check_input_sizes(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any]) -> None:
    """Input arrays hold at most 250 items (MAX_INPUT_SIZE_EXCEEDED), checked on root fields."""
    root = schema.mutation_type if operation.operation is OperationType.MUTATION else schema.query_type
    if root is None:
        return
    found: list[dict[str, Any]] = []
    for field_node in _root_fields(operation):
        field_definition = root.fields.get(field_node.name.value)
        if field_definition is None:
            continue
        try:
            arguments = get_argument_values(field_definition, field_node, variables)
        except GraphQLError:
            continue  # execution reports bad arguments itself
        key = field_node.alias.value if field_node.alias else field_node.name.value
        for name, value in arguments.items():
            for size, path in _oversized_lists(value, [key, name]):
                found.append(errors.max_input_size_exceeded(size, node_locations(field_node), path))
    if found:
        raise RequestError(found)


def _oversized_lists(value: Any, path: list[str | int]) -> Iterator[tuple[int, list[str | int]]]:
    if isinstance(value, list):
        if len(value) > errors.MAX_INPUT_ITEMS:
            yield len(value), path
            return
        for index, item in enumerate(value):
            yield from _oversized_lists(item, [*path, index])
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _oversized_lists(item, [*path, key])


def _root_fields(operation: OperationDefinitionNode) -> list[FieldNode]:
    # Fragments on the root are rare in adapter documents; execution still handles them.
    return [selection for selection in operation.selection_set.selections if isinstance(selection, FieldNode)]


def _directives_named(document: DocumentNode, name: str) -> list[DirectiveNode]:
    found: list[DirectiveNode] = []

    class Collector(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value == name:
                found.append(node)

    visit(document, Collector())
    return found


def argument_node(field_node: FieldNode, name: str) -> ValueNode | None:
    for argument in field_node.arguments:
        if argument.name.value == name:
            return argument.value
    return None
