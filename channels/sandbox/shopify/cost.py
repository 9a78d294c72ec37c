"""Query cost, by the rules Shopify publishes ("GraphQL Admin API rate limits").

Per field, by what it returns:
- scalar or enum: 0;
- object: 1, plus its selections;
- interface or union: the most expensive of the concrete types the selection names;
- connection (a `...Connection` type): 2 + n x (cost of one node), where n is its `first` or
  `last` argument when requesting and the number of nodes returned when accounting. The 2
  covers the connection itself and its `pageInfo`; each node is an object (1) plus its own
  selections, whether read through `nodes` or `edges { node }`. This is the "two points plus
  the number of objects" formula of Shopify's engineering write-up on query cost, and matches
  Shopify's library fixture where `products` without `first` is charged 2;
- a plain list of objects: per item; when requesting, the length of its list argument
  (`nodes(ids: [...])` costs one object per id), else one item;
- a mutation root field: 10, plus the selections of its payload.

The requested cost is computed from the document before anything runs and charged up front;
the actual cost walks the data that came back (nulls and empty lists cost nothing) and is
never more than what was requested. `__typename` and introspection fields are free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLIncludeDirective,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.values import get_argument_values, get_directive_values
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

MUTATION_COST = 10
CONNECTION_BASE_COST = 2
OBJECT_COST = 1

GraphQLComposite = GraphQLObjectType | GraphQLInterfaceType


class QueryCost:
    """Costs one operation of a document under given (coerced) variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._collected: dict[tuple[str, tuple[int, ...]], dict[str, list[FieldNode]]] = {}

    @property
    def _root_type(self) -> GraphQLObjectType | None:
        if self.operation.operation is OperationType.MUTATION:
            return self.schema.mutation_type
        return self.schema.query_type

    def requested(self) -> int:
        """The worst case this operation may cost, from the document alone."""
        return self._root_cost(data=None, requesting=True)

    def actual(self, data: dict[str, Any] | None, requested: int) -> int:
        """What the returned `data` cost, capped at the requested cost."""
        if data is None:
            return 0
        return min(self._root_cost(data=data, requesting=False), requested)

    def _root_cost(self, data: dict[str, Any] | None, requesting: bool) -> int:
        root = self._root_type
        if root is None:
            return 0
        fields = self._collect_fields(root, [self.operation.selection_set])
        total = 0
        for key, nodes in fields.items():
            value = data.get(key) if data is not None else None
            if not requesting and data is not None and key not in data:
                continue
            cost = self._field_cost(root, nodes, value, requesting)
            if self.operation.operation is OperationType.MUTATION and not nodes[0].name.value.startswith("__"):
                # A mutation is charged its 10 even when it fails; its payload object is part
                # of those 10, the payload's own selections come on top.
                cost = MUTATION_COST + max(cost - OBJECT_COST, 0)
            total += cost
        return total

    # --- fields -------------------------------------------------------------------------------

    def _field_cost(self, parent: GraphQLComposite, nodes: list[FieldNode], value: Any, requesting: bool) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        selections = [node.selection_set for node in nodes if node.selection_set is not None]
        if _is_connection(named):
            return self._connection_cost(named, selections, self._arguments(definition, nodes[0]), value, requesting)
        if is_list_type(get_nullable_type(definition.type)):
            if requesting:
                count = _list_argument_length(self._arguments(definition, nodes[0]))
                return count * (OBJECT_COST + self._selection_cost(named, selections, None, requesting))
            return sum(
                OBJECT_COST + self._selection_cost(named, selections, item, requesting)
                for item in _flatten(value)
                if item is not None
            )
        if not requesting and value is None:
            return 0
        return OBJECT_COST + self._selection_cost(named, selections, value, requesting)

    def _connection_cost(
        self,
        connection: Any,
        selections: list[SelectionSetNode],
        arguments: dict[str, Any],
        value: Any,
        requesting: bool,
    ) -> int:
        if not requesting and value is None:
            return 0
        node_type = _connection_node_type(connection)
        fields = self._collect_fields(connection, selections)
        if requesting:
            size = arguments.get("first") or arguments.get("last") or 0
            per_node = 0
            for nodes in fields.values():
                per_node = max(per_node, self._node_cost_through(nodes, connection, node_type, None, requesting))
            return CONNECTION_BASE_COST + max(size, 0) * per_node
        # Accounting: the nodes actually returned, read through whichever path was selected.
        spent = 0
        for key, nodes in fields.items():
            spent = max(spent, self._node_cost_through(nodes, connection, node_type, value.get(key), requesting))
        return CONNECTION_BASE_COST + spent

    def _node_cost_through(
        self, nodes: list[FieldNode], connection: Any, node_type: Any, value: Any, requesting: bool
    ) -> int:
        """Cost of the nodes reached through one connection field (`nodes` or `edges`)."""
        name = nodes[0].name.value
        selections = [node.selection_set for node in nodes if node.selection_set is not None]
        if name == "nodes":
            if requesting:
                return OBJECT_COST + self._selection_cost(node_type, selections, None, requesting)
            return sum(
                OBJECT_COST + self._selection_cost(node_type, selections, item, requesting)
                for item in value or ()
                if item is not None
            )
        if name == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            edge_fields = self._collect_fields(edge_type, selections)
            node_selections = [
                node.selection_set
                for key, edge_nodes in edge_fields.items()
                for node in edge_nodes
                if node.name.value == "node" and node.selection_set is not None
            ]
            node_keys = [key for key, edge_nodes in edge_fields.items() if edge_nodes[0].name.value == "node"]
            if requesting:
                return OBJECT_COST + self._selection_cost(node_type, node_selections, None, requesting)
            total = 0
            for edge in value or ():
                if not edge:
                    continue
                item = next((edge.get(key) for key in node_keys if edge.get(key) is not None), None)
                total += OBJECT_COST + (
                    self._selection_cost(node_type, node_selections, item, requesting) if item is not None else 0
                )
            return total
        return 0  # pageInfo and other connection fields are covered by the base cost

    # --- selections ---------------------------------------------------------------------------

    def _selection_cost(self, parent: Any, selections: list[SelectionSetNode], value: Any, requesting: bool) -> int:
        if is_abstract_type(parent):
            candidates = self._concrete_candidates(parent, selections, value)
            return max(
                (self._object_cost(candidate, selections, value, requesting) for candidate in candidates), default=0
            )
        return self._object_cost(parent, selections, value, requesting)

    def _object_cost(
        self, parent: GraphQLComposite, selections: list[SelectionSetNode], value: Any, requesting: bool
    ) -> int:
        total = 0
        for key, nodes in self._collect_fields(parent, selections).items():
            item = value.get(key) if isinstance(value, dict) else None
            total += self._field_cost(parent, nodes, item, requesting)
        return total

    def _concrete_candidates(
        self, abstract: Any, selections: list[SelectionSetNode], value: Any
    ) -> list[GraphQLComposite]:
        """The object types the selection can apply to: those its fragments name, else the interface."""
        if isinstance(value, dict) and isinstance(value.get("__typename"), str):
            named = self.schema.get_type(value["__typename"])
            if isinstance(named, GraphQLObjectType):
                return [named]
        names: set[str] = set()
        for selection_set in selections:
            self._fragment_conditions(selection_set, names)
        candidates: list[GraphQLComposite] = []
        for name in sorted(names):
            named = self.schema.get_type(name)
            if isinstance(named, GraphQLObjectType) and self.schema.is_sub_type(abstract, named):
                candidates.append(named)
        if not candidates and isinstance(abstract, GraphQLInterfaceType):
            candidates.append(abstract)
        return candidates

    def _fragment_conditions(self, selection_set: SelectionSetNode, names: set[str]) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, InlineFragmentNode):
                if selection.type_condition is not None:
                    names.add(selection.type_condition.name.value)
                self._fragment_conditions(selection.selection_set, names)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    names.add(fragment.type_condition.name.value)
                    self._fragment_conditions(fragment.selection_set, names)

    def _collect_fields(self, parent: Any, selections: Iterable[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        selections = tuple(selections)
        # Accounting walks the same selection once per returned item; collect it once.
        memo_key = (parent.name, tuple(id(selection_set) for selection_set in selections))
        fields = self._collected.get(memo_key)
        if fields is None:
            fields = {}
            for selection_set in selections:
                self._collect_into(parent, selection_set, fields, set())
            self._collected[memo_key] = fields
        return fields

    def _collect_into(
        self, parent: Any, selection_set: SelectionSetNode, fields: dict[str, list[FieldNode]], seen: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is None or self._applies(selection.type_condition.name.value, parent):
                    self._collect_into(parent, selection.selection_set, fields, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                seen.add(name)
                if self._applies(fragment.type_condition.name.value, parent):
                    self._collect_into(parent, fragment.selection_set, fields, seen)

    def _applies(self, condition: str, parent: Any) -> bool:
        if condition == parent.name:
            return True
        condition_type = self.schema.get_type(condition)
        return bool(
            condition_type is not None
            and is_abstract_type(condition_type)
            and isinstance(parent, GraphQLObjectType)
            and self.schema.is_sub_type(condition_type, parent)  # type: ignore[arg-type]
        )

    def _included(self, selection: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, selection, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, selection, self.variables)
        return not (include and include.get("if") is False)

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        try:
            return get_argument_values(definition, node, self.variables)
        except GraphQLError:  # bad arguments are execution's to report; cost them as absent
            return {}


def _is_connection(named: Any) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "pageInfo" in named.fields


def _connection_node_type(connection: GraphQLObjectType) -> Any:
    if "nodes" in connection.fields:
        return get_named_type(connection.fields["nodes"].type)
    edge_type: Any = get_named_type(connection.fields["edges"].type)
    return get_named_type(edge_type.fields["node"].type)


def _list_argument_length(arguments: dict[str, Any]) -> int:
    for value in arguments.values():
        if isinstance(value, list):
            return len(value)
    return 1


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield value
