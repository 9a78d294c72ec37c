"""One GraphQL Admin API request, end to end.

    parse + validate (cached per document)  -> errors, nothing charged
    coerce variables, version rules, input sizes -> errors, nothing charged
    requested cost > single-query limit     -> MAX_COST_EXCEEDED, nothing charged
    bucket short of the requested cost      -> THROTTLED, nothing charged, nothing runs
    charge, execute, refund requested - actual

Every answer is HTTP 200 with `extensions.cost` (requested/actual cost and throttleStatus);
where nothing was costed the costs read 0 and the status shows the bucket as it stands.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode, execute_sync

from . import errors
from .bucket import BucketSettings, LeakyBucket
from .catalog import Catalog, InventoryLevel
from .cost import QueryCost
from .documents import (
    RequestError,
    check_input_sizes,
    check_version_rules,
    coerce_variables,
    compile_document,
    select_operation,
)
from .graphql_schema import admin_schema
from .idempotency import IdempotencyKeys
from .resolvers import RequestContext, Root, resolve_field, resolve_type
from .versions import ApiVersion
from .views import Shop


@dataclass
class ApiStats:
    """What a store's API was asked, for the control API's `stats`."""

    calls: int = 0
    throttled: int = 0
    max_cost_exceeded: int = 0
    points_spent: int = 0

    def view(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "throttled": self.throttled,
            "max_cost_exceeded": self.max_cost_exceeded,
            "points_spent": self.points_spent,
        }


@dataclass
class ShopState:
    """Everything one emulated shop's API reads and changes; guarded by the store's lock."""

    shop: Shop
    bucket: LeakyBucket
    idempotency: IdempotencyKeys = field(default_factory=IdempotencyKeys)
    stats: ApiStats = field(default_factory=ApiStats)

    @property
    def catalog(self) -> Catalog:
        return self.shop.catalog


@dataclass
class GraphqlRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None
    version: ApiVersion


@dataclass
class GraphqlAnswer:
    body: dict[str, Any]
    log: dict[str, Any]
    changed_levels: list[InventoryLevel] = field(default_factory=list)


def answer(state: ShopState, lock: threading.Lock, request: GraphqlRequest, settings: BucketSettings) -> GraphqlAnswer:
    """Run one request against the shop; the lock is held only to charge, execute and refund."""
    schema = admin_schema()
    log: dict[str, Any] = {"api_version": request.version.name}
    compiled = compile_document(request.query)
    if compiled.errors or compiled.document is None:
        return _refused(state, lock, settings, list(compiled.errors), log)
    document = compiled.document
    try:
        operation = select_operation(document, request.operation_name)
        log["operations"] = [
            selection.name.value for selection in operation.selection_set.selections if isinstance(selection, FieldNode)
        ]
        variables = coerce_variables(schema, operation, request.variables)
        check_version_rules(schema, document, operation, request.variables, request.version)
        check_input_sizes(schema, operation, variables)
    except RequestError as refusal:
        return _refused(state, lock, settings, refusal.errors, log)
    cost = QueryCost(schema, document, operation, variables)
    requested = cost.requested()
    log["requested_cost"] = requested
    with lock:
        now = time.monotonic()
        state.bucket.reconfigure(settings, now)
        state.stats.calls += 1
        if requested > settings.max_query_cost:
            state.stats.max_cost_exceeded += 1
            log["max_cost_exceeded"] = True
            too_costly = {"errors": [errors.max_cost_exceeded(requested, settings.max_query_cost)]}
            return GraphqlAnswer(_with_cost(too_costly, requested, None, state.bucket.status(now)), log)
        if not state.bucket.try_take(requested, now):
            state.stats.throttled += 1
            log["throttled"] = True
            return GraphqlAnswer(
                _with_cost({"errors": [errors.throttled()]}, requested, None, state.bucket.status(now)), log
            )
        context = RequestContext(state.shop, request.version, state.idempotency, time.time())
        result = execute_sync(
            schema,
            document,
            root_value=Root(context),
            context_value=context,
            variable_values=request.variables,
            operation_name=request.operation_name,
            field_resolver=resolve_field,
            type_resolver=resolve_type,
        )
        actual = cost.actual(result.data, requested)
        state.bucket.refund(requested - actual, time.monotonic())
        state.stats.points_spent += actual
        for sku in context.written_skus:
            variant = state.catalog.variant_by_sku(sku)
            if variant is not None:
                variant.writes += 1
        status = state.bucket.status(time.monotonic())
    log["actual_cost"] = actual
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [dict(error.formatted) for error in result.errors]
    body["data"] = result.data
    return GraphqlAnswer(_with_cost(body, requested, actual, status), log, context.changed_levels)


def _refused(
    state: ShopState,
    lock: threading.Lock,
    settings: BucketSettings,
    error_list: list[dict[str, Any]],
    log: dict[str, Any],
) -> GraphqlAnswer:
    with lock:
        now = time.monotonic()
        state.bucket.reconfigure(settings, now)
        state.stats.calls += 1
        status = state.bucket.status(now)
    log["refused"] = True
    return GraphqlAnswer(_with_cost({"errors": error_list}, 0, 0, status), log)


def _with_cost(body: dict[str, Any], requested: int, actual: int | None, status: dict[str, Any]) -> dict[str, Any]:
    body["extensions"] = {
        "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}
    }
    return body
