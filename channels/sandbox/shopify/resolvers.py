"""The root fields of QueryRoot and Mutation, and the resolvers graphql-core calls.

`resolve_field` reads a field from whatever the parent resolved to: a dict key, or a view
method named like the field in snake_case. Root fields live on `Root`, which gets the
coerced arguments as GraphQL names them; a root field it does not define answers a clear
NOT_IMPLEMENTED_IN_SANDBOX error, while an unknown field of an emulated object is null.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import GraphQLResolveInfo
from graphql.execution.values import get_directive_values

from . import errors
from .catalog import InventoryLevel, parse_gid
from .content import product_set, product_update
from .idempotency import MISMATCH_MESSAGE, PREVIOUS_ATTEMPT_FAILED_MESSAGE, IdempotencyKeys, fingerprint
from .mutations import (
    Outcome,
    inventory_adjust_quantities,
    inventory_set_quantities,
    product_variants_bulk_update,
    user_error,
)
from .versions import ApiVersion
from .views import (
    InventoryItemView,
    InventoryLevelView,
    LocationView,
    ProductView,
    Shop,
    ShopView,
    VariantView,
    View,
    connection,
    count,
    node_for_gid,
    search_items,
    search_products,
    search_variants,
)

AnyView = TypeVar("AnyView", bound=View)

IDEMPOTENCY_REQUIRED_MESSAGE = "The @idempotent directive is required for this mutation but was not provided."


@dataclass
class RequestContext:
    """One GraphQL request's view of the store; mutations record their effects here."""

    shop: Shop
    version: ApiVersion
    idempotency: IdempotencyKeys
    now: float
    written_skus: list[str] = field(default_factory=list)
    changed_levels: list[InventoryLevel] = field(default_factory=list)

    def record(self, outcome: Outcome) -> None:
        self.written_skus.extend(outcome.written_skus)
        self.changed_levels.extend(outcome.changed_levels)


@functools.lru_cache(maxsize=2048)
def python_name(graphql_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", graphql_name).lower()


def resolve_field(source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
    """graphql-core's field resolver for every field without its own (all of ours)."""
    if isinstance(source, Mapping):
        return source.get(info.field_name)
    name = python_name(info.field_name)
    attribute = None if name.startswith("_") else getattr(source, name, None)
    if isinstance(source, Root):
        if attribute is None:
            raise errors.field_error(
                f"{info.parent_type.name}.{info.field_name} is not emulated by the syncsvc sandbox",
                "NOT_IMPLEMENTED_IN_SANDBOX",
            )
        return attribute(info, arguments)
    if callable(attribute):
        return attribute(**{python_name(key): value for key, value in arguments.items()})
    return attribute


def resolve_type(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    return value.graphql_type if isinstance(value, View) else None


class Root:
    """QueryRoot and Mutation fields over the request's shop."""

    def __init__(self, context: RequestContext) -> None:
        self.context = context
        self._shop = context.shop  # not `shop`: that name is the QueryRoot.shop field

    # --- queries ------------------------------------------------------------------------------

    def product_variants(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        variants = search_variants(self._shop.catalog, arguments.get("query"))
        return connection(
            variants, lambda variant: VariantView(self._shop, variant), field_name=info.field_name, **_page(arguments)
        )

    def product_variants_count(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        return count(len(search_variants(self._shop.catalog, arguments.get("query"))))

    def product_variant(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> VariantView | None:
        return _node_of(self._shop, arguments["id"], VariantView)

    def products(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        products = search_products(self._shop.catalog, arguments.get("query"))
        return connection(
            products, lambda product: ProductView(self._shop, product), field_name=info.field_name, **_page(arguments)
        )

    def products_count(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        return count(len(search_products(self._shop.catalog, arguments.get("query"))))

    def product(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> ProductView | None:
        return _node_of(self._shop, arguments["id"], ProductView)

    def inventory_items(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        items = search_items(self._shop.catalog, arguments.get("query"))
        return connection(
            items, lambda item: InventoryItemView(self._shop, item), field_name=info.field_name, **_page(arguments)
        )

    def inventory_item(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> InventoryItemView | None:
        return _node_of(self._shop, arguments["id"], InventoryItemView)

    def inventory_level(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> InventoryLevelView | None:
        return _node_of(self._shop, arguments["id"], InventoryLevelView)

    def locations(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        locations = sorted(self._shop.catalog.locations.values(), key=lambda location: location.id)
        return connection(
            locations,
            lambda location: LocationView(self._shop, location),
            field_name=info.field_name,
            **_page(arguments),
        )

    def locations_count(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        return count(len(self._shop.catalog.locations))

    def location(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> LocationView | None:
        if arguments.get("id") is None:  # no id: the shop's primary location
            return LocationView(self._shop, self._shop.catalog.primary_location)
        return _node_of(self._shop, arguments["id"], LocationView)

    def node(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> View | None:
        return node_for_gid(self._shop, arguments["id"])

    def nodes(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> list[View | None]:
        return [node_for_gid(self._shop, text) for text in arguments["ids"]]

    def shop(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> ShopView:
        return ShopView(self._shop)

    def current_bulk_operation(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> View | None:
        found: View | None = self._shop.bulk.current(self._shop, arguments.get("type") or "QUERY")
        return found

    # --- mutations ----------------------------------------------------------------------------

    def product_update(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        outcome = product_update(self._shop, arguments, self.context.now)
        self.context.record(outcome)
        return outcome.payload

    def product_set(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        outcome = product_set(self._shop, arguments, self.context.now)
        self.context.record(outcome)
        return outcome.payload

    def staged_uploads_create(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = self._shop.bulk.staged_uploads_create(arguments["input"], self.context.now)
        return payload

    def bulk_operation_run_mutation(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = self._shop.bulk.run_mutation(
            self._shop, arguments, self.context.version, self.context.now
        )
        return payload

    def bulk_operation_cancel(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = self._shop.bulk.cancel(self._shop, arguments["id"])
        return payload

    def product_variants_bulk_update(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        outcome = product_variants_bulk_update(self.context.shop, arguments, self.context.now)
        self.context.record(outcome)
        return outcome.payload

    def inventory_set_quantities(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        self._require_change_from_quantity(arguments["input"]["quantities"], "InventoryQuantityInput")
        return self._idempotent(
            info,
            arguments,
            lambda: inventory_set_quantities(self.context.shop, arguments, self.context.version, self.context.now),
        )

    def inventory_adjust_quantities(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        self._require_change_from_quantity(arguments["input"]["changes"], "InventoryChangeInput")
        return self._idempotent(
            info,
            arguments,
            lambda: inventory_adjust_quantities(self.context.shop, arguments, self.context.version, self.context.now),
        )

    def _require_change_from_quantity(self, entries: list[dict[str, Any]], input_type: str) -> None:
        """From 2026-04 every quantity must carry changeFromQuantity, even if null (seen live)."""
        if self.context.version.requires_change_from_quantity and any(
            "changeFromQuantity" not in entry for entry in entries
        ):
            raise errors.field_error(
                f"{input_type} must include the following argument: changeFromQuantity.", "INVALID_FIELD_ARGUMENTS"
            )

    def _idempotent(
        self, info: GraphQLResolveInfo, arguments: dict[str, Any], run: Callable[[], Outcome]
    ) -> dict[str, Any]:
        key = _idempotency_key(info)
        if key is None:
            if self.context.version.requires_idempotent_directive:
                raise errors.bad_request(IDEMPOTENCY_REQUIRED_MESSAGE)
            outcome = run()
            self.context.record(outcome)
            return outcome.payload
        keys, now = self.context.idempotency, self.context.now
        request_print = fingerprint(info.field_name, arguments)
        remembered = keys.recall(key, now)
        if remembered is not None:
            if remembered.fingerprint != request_print:
                problem = user_error(MISMATCH_MESSAGE, None, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
                return {"inventoryAdjustmentGroup": None, "userErrors": [problem]}
            if remembered.failed:
                problem = user_error(PREVIOUS_ATTEMPT_FAILED_MESSAGE, None, "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED")
                return {"inventoryAdjustmentGroup": None, "userErrors": [problem]}
            return remembered.payload  # a replay: nothing is applied or counted again
        outcome = run()
        self.context.record(outcome)
        keys.remember(key, request_print, outcome.payload, outcome.failed, now)
        return outcome.payload


def _idempotency_key(info: GraphQLResolveInfo) -> str | None:
    directive = info.schema.get_directive("idempotent")
    if directive is None:
        return None
    for node in info.field_nodes:
        values = get_directive_values(directive, node, info.variable_values)
        if values and values.get("key") is not None:
            return str(values["key"])
    return None


def _node_of(shop: Shop, text: str, view_type: type[AnyView]) -> AnyView | None:
    if parse_gid(text) is None:
        raise errors.field_error(
            f"Invalid global id '{text}'", "argumentLiteralsIncompatible", typeName="CoercionError"
        )
    found = node_for_gid(shop, text)
    return found if isinstance(found, view_type) else None


def _page(arguments: dict[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in ("first", "last", "after", "before", "reverse") if name in arguments}
