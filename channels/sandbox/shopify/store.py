"""The `shopify` kind's store: its real API route, its control API, its sales and webhooks.

    POST /shopify/{store}/admin/api/{version}/graphql.json
         X-Shopify-Access-Token: <the configured access_token; any non-empty one if none>

Control API extras beyond the shared ones:
    GET  /_sandbox/shopify/{store}/stats        {"calls", "throttled", "max_cost_exceeded",
                                                 "points_spent", "throttle_status"}
    GET  /_sandbox/shopify/{store}/deliveries   every webhook delivery attempt and its status
    POST /_sandbox/shopify/{store}/orders/{id}/cancel    orders/cancelled; committed units back
                                                         to available
    POST /_sandbox/shopify/{store}/orders/{id}/refund    refunds/create; restock_type `cancel`
                                                         (unfulfilled) or `return` (fulfilled)
                                                         when restocking, else `no_restock`
    POST /_sandbox/shopify/{store}/orders/{id}/fulfill   orders/fulfilled; committed units leave
    (`pay` is 409: a sale is paid at checkout, `financial_status: paid`)
    PUT  items/{sku} also takes "compare_at_price", and "product" (a handle: a new SKU
         becomes a variant of that product, created on first use, instead of a product of
         its own); an item shows its GIDs and levels.

Config (`POST /_sandbox/shopify/{store}/config`), all optional:
    access_token             the token the API accepts (secret; echoed as ***)
    plan                     standard | advanced | plus | commerce_components (restore rate
                             100/200/1000/2000 points/s); "basic", "shopify", "shopify_plus",
                             "enterprise"... are taken as their tier
    bucket_size              bucket capacity in points (default 2000)
    restore_rate             points/s, overriding the plan's
    max_query_cost           single-query limit (default 1000, never above the bucket size)
    locations                extra location names (the shop always has "Shop location")
    webhook_url, webhook_secret   where order webhooks go and what signs them
    webhook_api_version      X-Shopify-API-Version of webhooks (default 2026-07)
    send_orders_paid         a sale also sends orders/paid (default false)
    send_inventory_webhooks  send inventory_levels/update when a level changes through a
                             sale, a merchant edit or the API (default false)
    bulk_lines_per_s         how fast a bulk mutation runs its lines (default 250)
    bulk_fail_after_lines    bulk mutations started from now on FAIL (INTERNAL_SERVER_ERROR)
                             after this many lines (unset: they do not fail)
    staged_upload_max_bytes  the staged upload policy's size limit (default 20 MB)

Bulk import (`bulk.py`): `stagedUploadsCreate` hands out targets at `{store}/_staged/`
(multipart POST, GCS-style), bulk mutation results are served at `{store}/_bulk/{id}.jsonl`.
Neither needs the access token: both are authorised by what the signed URL/policy carries.
Items show `description_html`, `metafields` ({"namespace.key": value}) and `media` (URLs).
"""

from __future__ import annotations

import hmac
import itertools
import re
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..faults import InjectedFault
from ..messages import HttpError, Request, Response
from ..order_book import Order, OrderBook, OrderLine, deliveries_of, refund_of, refuse_payment
from ..store import FieldParser, Store
from ..typed_config import (
    ConfigParser,
    TypedConfig,
    choice,
    positive_integer,
    positive_number,
    text_list,
)
from ..validation import decimal_text, integer, reject_unknown_fields
from .api import GraphqlAnswer, GraphqlRequest, ShopState, answer
from .bucket import PLAN_ALIASES, RESTORE_RATE_BY_PLAN, BucketSettings, LeakyBucket
from .bulk import RESULTS_PATH, STAGED_PATH, BulkOperations, parse_form
from .catalog import Catalog, InventoryLevel, Variant
from .graphql_schema import warm_up_in_background
from .versions import SUPPORTED_VERSIONS, ApiVersion
from .views import Shop
from .webhooks import (
    Destination,
    Sale,
    Webhook,
    WebhookSender,
    inventory_level_body,
    order_body,
    order_body_now,
    refund_body,
)

GRAPHQL_PATH = re.compile(r"/admin/api/(?P<version>[^/]+)/graphql\.json")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
# What Shopify says with these statuses (the REST 429 text; GraphQL normally throttles in a 200).
FAULT_MESSAGES = {
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
DEFAULT_WEBHOOK_API_VERSION = "2026-07"
MAX_DELIVERIES = 20
# Realistic, JS-safe ids for what a sale creates.
ORDER_ID_BASE = 6_100_000_000_000
LINE_ITEM_ID_BASE = 16_000_000_000_000
CUSTOMER_ID_BASE = 7_700_000_000_000
# Refunds, their lines and transactions, and fulfillments share one sequence.
AFTER_SALE_ID_BASE = 9_800_000_000_000


def plan_name(value: Any, field: str) -> str:
    """A rate-limit tier, also by the plan names merchants know ("basic", "shopify_plus")."""
    name = value.strip().lower().replace(" ", "_") if isinstance(value, str) else value
    name = PLAN_ALIASES.get(name, name)
    if name not in RESTORE_RATE_BY_PLAN:
        known = ", ".join([*RESTORE_RATE_BY_PLAN, *PLAN_ALIASES])
        raise HttpError(400, f"{field} must be one of {known}, got {value!r}")
    return str(name)


def non_negative_integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HttpError(400, f"{field} must be a whole number of 0 or more, got {value!r}")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise HttpError(400, f"{field} must be true or false, got {value!r}")
    return value


class ShopifyStore(TypedConfig, Store):
    """A Shopify shop: GraphQL Admin API with cost-based throttling, and order webhooks."""

    kind = "shopify"
    config_fields = frozenset(
        {
            "webhook_url",
            "webhook_secret",
            "plan",
            "access_token",
            "bucket_size",
            "restore_rate",
            "max_query_cost",
            "locations",
            "webhook_api_version",
            "send_orders_paid",
            "send_inventory_webhooks",
            "bulk_lines_per_s",
            "bulk_fail_after_lines",
            "staged_upload_max_bytes",
        }
    )
    secret_config_fields = frozenset({"webhook_secret", "access_token"})
    config_parsers: ClassVar[dict[str, ConfigParser]] = {
        "plan": plan_name,
        "bucket_size": positive_number,
        "restore_rate": positive_number,
        "max_query_cost": positive_integer,
        "locations": text_list,
        "webhook_api_version": choice(*SUPPORTED_VERSIONS),
        "send_orders_paid": boolean,
        "send_inventory_webhooks": boolean,
        "bulk_lines_per_s": positive_number,
        "bulk_fail_after_lines": non_negative_integer,
        "staged_upload_max_bytes": positive_integer,
    }

    def __init__(self, name: str) -> None:
        super().__init__(name)
        now = time.time()
        shop = Shop(
            Catalog(now),
            name=name,
            domain=f"{name}.myshopify.com",
            currency="USD",
            shop_id=zlib.crc32(name.encode()) + 60_000_000_000,
        )
        self.state = ShopState(shop, LeakyBucket(BucketSettings.from_config({}), time.monotonic()))
        self.bulk = BulkOperations(self.lock, lambda: self.config, shop, self.state.idempotency)
        shop.bulk = self.bulk
        self.webhooks = WebhookSender()
        self._order_numbers = itertools.count(1)
        self._order_ids = itertools.count(ORDER_ID_BASE + 1)
        self._line_item_ids = itertools.count(LINE_ITEM_ID_BASE + 1)
        self._customer_ids = itertools.count(CUSTOMER_ID_BASE + 1)
        self._after_sale_ids = itertools.count(AFTER_SALE_ID_BASE + 1)
        self.orders = OrderBook(f"{self.kind}/{self.name}")
        warm_up_in_background()

    # --- the real API ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.bulk.public_url = self._public_url(request)
        if request.subpath.rstrip("/") == STAGED_PATH and request.method == "POST":
            form = parse_form(request.header("Content-Type") or "", request.body)
            with self.lock:
                return self.bulk.receive_upload(form, time.time())
        if request.subpath.startswith(RESULTS_PATH) and request.method == "GET":
            with self.lock:
                return self.bulk.serve_result(request)
        match = GRAPHQL_PATH.fullmatch(request.subpath)
        if match is None:
            return _shopify_error(404, "Not Found")
        version = ApiVersion.parse(match["version"])
        request.log["api_version"] = match["version"]
        if version is None:
            return _shopify_error(404, "Not Found")
        if request.method != "POST":
            return _shopify_error(405, "GraphQL requests to the Admin API must be POSTed", {"Allow": "POST"})
        if not self._authorized(request):
            return _shopify_error(401, INVALID_TOKEN)
        graphql_request = self._graphql_request(request, version)
        if isinstance(graphql_request, Response):
            return graphql_request
        result = answer(self.state, self.lock, graphql_request, self._bucket_settings())
        request.log.update(result.log)
        self._announce_level_changes(result)
        headers = {"X-Shopify-API-Version": version.name, "X-Request-Id": str(uuid.uuid4())}
        return Response(200, result.body, headers)

    def describe(self, request: Request) -> None:
        match = GRAPHQL_PATH.fullmatch(request.subpath)
        if match:
            request.log["api_version"] = match["version"]

    def fault_response(self, fault: InjectedFault, request: Request) -> Response:
        """Injected failures in Shopify's shape, `{"errors": "..."}` (the real 401 text for 401)."""
        generic = fault.response()
        message = INVALID_TOKEN if fault.status == 401 else FAULT_MESSAGES.get(fault.status, generic.error)
        return Response(fault.status, {"errors": message}, generic.headers)

    def _public_url(self, request: Request) -> str:
        """This store's base URL as the client reached it (where staged targets and result
        files are handed out)."""
        host = request.header("Host") or "127.0.0.1"
        return f"http://{host}/shopify/{self.name}"

    def _authorized(self, request: Request) -> bool:
        token = (request.header("X-Shopify-Access-Token") or "").strip()
        expected = self.config_value("access_token")
        return bool(token) and (expected is None or hmac.compare_digest(token.encode(), str(expected).encode()))

    def _graphql_request(self, request: Request, version: ApiVersion) -> GraphqlRequest | Response:
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        missing_query = _shopify_error(400, {"query": "Required parameter missing or invalid"})
        if content_type == "application/graphql":
            text_query = request.body.decode("utf-8", errors="replace")
            return GraphqlRequest(text_query, {}, None, version) if text_query.strip() else missing_query
        try:
            payload = request.json_object()
        except HttpError:
            return missing_query
        query = payload.get("query")
        if not isinstance(query, str) or not query.strip():
            return missing_query
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            return _shopify_error(400, {"variables": "must be a JSON object"})
        operation_name = payload.get("operationName")
        return GraphqlRequest(query, variables, operation_name if isinstance(operation_name, str) else None, version)

    def _bucket_settings(self) -> BucketSettings:
        with self.lock:
            return BucketSettings.from_config(self.config)

    # --- config ------------------------------------------------------------------------------

    def set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Typed settings (numbers, booleans, lists, choices); new location names become locations."""
        view = super().set_config(body)
        with self.lock:
            self.state.catalog.ensure_locations(self.config.get("locations") or [], time.time())
        return view

    # --- items (merchant edits and what the shop shows) --------------------------------------

    def item_field_parsers(self) -> dict[str, FieldParser]:
        return {
            **super().item_field_parsers(),
            "compare_at_price": lambda value, field: decimal_text(value, field, nullable=True, allow_number=True),
            "product": _product_handle,
        }

    def put_item(self, sku: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the product, variant, inventory item and level if new; else overwrite (drift)."""
        parsers = self.item_field_parsers()
        reject_unknown_fields(body, parsers)
        values = {name: parsers[name](value, name) for name, value in body.items()}
        with self.lock:
            catalog = self.state.catalog
            variant = catalog.upsert_item(sku, values, time.time())
            view = catalog.item_view(variant)
            levels = catalog.levels_of_item(variant.inventory_item_id) if values.get("available") is not None else []
        self._send_inventory_webhooks(levels)
        return view

    def item_view(self, sku: str) -> dict[str, Any]:
        with self.lock:
            variant = self.state.catalog.variant_by_sku(sku)
            if variant is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            return self.state.catalog.item_view(variant)

    def items_view(self) -> list[dict[str, Any]]:
        with self.lock:
            catalog = self.state.catalog
            return [catalog.item_view(variant) for variant in catalog.variants_in_order()]

    # --- control extras ----------------------------------------------------------------------

    def control_resource(self, request: Request, resource: str) -> Response | None:
        if resource == "stats":
            _only_get(request)
            settings = self._bucket_settings()
            with self.lock:
                now = time.monotonic()
                self.state.bucket.reconfigure(settings, now)
                return Response(200, {**self.state.stats.view(), "throttle_status": self.state.bucket.status(now)})
        if resource == "deliveries":
            _only_get(request)
            return Response(200, {"deliveries": self.webhooks.log()})
        return None

    # --- sales -------------------------------------------------------------------------------

    def record_sale(self, body: dict[str, Any]) -> Response:
        """A customer orders: stock at the primary location drops, order webhooks go out."""
        reject_unknown_fields(body, ("sku", "quantity", "order_id", "deliveries"))
        sku = body.get("sku")
        if not isinstance(sku, str) or not sku:
            raise HttpError(400, "sku must be a non-empty string")
        quantity = integer(body.get("quantity"), "quantity", minimum=1)
        deliveries = integer(body.get("deliveries", 1), "deliveries", minimum=1)
        if deliveries > MAX_DELIVERIES:
            raise HttpError(400, f"deliveries must be at most {MAX_DELIVERIES}, got {deliveries}")
        order_id = _order_id(body.get("order_id"))
        with self.lock:
            config = dict(self.config)
            if not config.get("webhook_url"):
                raise HttpError(
                    409, 'no webhook_url configured: POST /_sandbox/shopify/{store}/config {"webhook_url": ...} first'
                )
            catalog = self.state.catalog
            variant = catalog.variant_by_sku(sku)
            if variant is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            level = catalog.level(variant.inventory_item_id, catalog.primary_location.id)
            available = level.states["available"] if level else 0
            if level is None or available < quantity:
                raise HttpError(409, f"not enough stock of {sku!r}: {available} available, {quantity} ordered")
            now = time.time()
            # An unfulfilled order commits its units: available drops, on_hand stays.
            level.states["available"] -= quantity
            level.states["committed"] += quantity
            level.updated_at = now
            sale = self._sale(variant, quantity, order_id, now)
            self.orders.add(
                Order(
                    str(sale.order_id),
                    [OrderLine(str(sale.line_item_id), sku, quantity)],
                    paid=True,
                    created_at=now,
                    updated_at=now,
                    resource=ShopifyOrder(sale),
                )
            )
            inventory_body = inventory_level_body(
                level.item_id, level.location_id, level.states["available"], level.id, now
            )
            remaining = level.states["available"]
        webhooks = [Webhook("orders/create", order_body(sale), str(uuid.uuid4()))]
        if config.get("send_orders_paid"):
            webhooks.append(Webhook("orders/paid", order_body(sale), str(uuid.uuid4())))
        if config.get("send_inventory_webhooks"):
            webhooks.append(Webhook("inventory_levels/update", inventory_body, str(uuid.uuid4())))
        self.webhooks.send(self._destination(config), webhooks, deliveries)
        return Response(
            200,
            {
                "order_id": sale.order_id,
                "order_name": f"#{1000 + sale.number}",
                "sku": sku,
                "quantity": quantity,
                "available": remaining,
                "deliveries": deliveries,
                "webhooks": [{"topic": webhook.topic, "event_id": webhook.event_id} for webhook in webhooks],
            },
        )

    def _sale(self, variant: Variant, quantity: int, order_id: int | None, now: float) -> Sale:
        catalog = self.state.catalog
        return Sale(
            order_id=order_id or next(self._order_ids),
            number=next(self._order_numbers),
            line_item_id=next(self._line_item_ids),
            customer_id=next(self._customer_ids),
            variant_id=variant.id,
            product_id=variant.product_id,
            sku=variant.sku,
            title=catalog.products[variant.product_id].title,
            quantity=quantity,
            price=variant.price,
            currency=self.state.shop.currency,
            shop_domain=self.state.shop.domain,
            at=now,
            location_id=catalog.primary_location.id,
        )

    # --- the order life cycle ----------------------------------------------------------------

    def order_view(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            return self.orders.get(order_id).view()

    def cancel_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The merchant cancels an unfulfilled order: its committed units go back to
        available and `orders/cancelled` goes out."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        with self.lock:
            config = self._webhook_config()
            order = self.orders.get(order_id)
            order.check_can_cancel()
            now = time.time()
            levels = [self._move_units(line.sku, line.refundable, to_available=True) for line in order.lines]
            order.cancelled, order.updated_at = True, now
            webhooks = [Webhook("orders/cancelled", self._order_body(order, now), str(uuid.uuid4()))]
            webhooks += self._level_webhooks(config, levels, now)
            view = order.view()
        return self._send_after_sale(config, webhooks, deliveries, view)

    def refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The merchant refunds units: `refunds/create`. Unfulfilled units leave the order's
        committed count; restocked ones come back to available."""
        with self.lock:
            config = self._webhook_config()
            order = self.orders.get(order_id)
            refund = refund_of(body, order, MAX_DELIVERIES)
            now = time.time()
            record: ShopifyOrder = order.resource
            refund_json = refund_body(
                record.sale, refund, ids=self._after_sale_ids, fulfilled=order.fulfilled, at=now
            )
            levels = [
                self._move_units(line.sku, quantity, to_available=refund.restock, committed=not order.fulfilled)
                for line, quantity in refund.lines
            ]
            order.apply_refund(refund, refund_id=str(refund_json["id"]), at=now)
            record.refunds.append(refund_json)
            webhooks = [Webhook("refunds/create", refund_json, str(uuid.uuid4()))]
            webhooks += self._level_webhooks(config, levels, now)
            view = order.view()
        return self._send_after_sale(config, webhooks, refund.deliveries, view)

    def pay_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """Nothing to pay: a sale here is paid at checkout (`financial_status: paid`)."""
        refuse_payment(
            self.lock,
            self.orders,
            order_id,
            body,
            maximum_deliveries=MAX_DELIVERIES,
            why="a Shopify sale here is paid at checkout",
        )

    def fulfill_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The order ships: its committed units leave the shop (on_hand drops), `orders/fulfilled`."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        with self.lock:
            config = self._webhook_config()
            order = self.orders.get(order_id)
            order.check_can_fulfill()
            now = time.time()
            for line in order.lines:
                self._move_units(line.sku, line.refundable, to_available=False)
            order.fulfilled, order.updated_at = True, now
            record: ShopifyOrder = order.resource
            record.fulfillment_id = next(self._after_sale_ids)
            webhooks = [Webhook("orders/fulfilled", self._order_body(order, now), str(uuid.uuid4()))]
            view = order.view()
        return self._send_after_sale(config, webhooks, deliveries, view)

    def _webhook_config(self) -> dict[str, Any]:
        """The config, refusing (409) when there is nowhere to send webhooks. Call with `lock` held."""
        if not self.config.get("webhook_url"):
            raise HttpError(
                409, f'no webhook_url configured: POST /_sandbox/shopify/{self.name}/config {{"webhook_url": ...}} first'
            )
        return dict(self.config)

    def _order_body(self, order: Order, now: float) -> dict[str, Any]:
        record: ShopifyOrder = order.resource
        return order_body_now(record.sale, order, record.refunds, fulfillment_id=record.fulfillment_id, at=now)

    def _move_units(
        self, sku: str, units: int, *, to_available: bool, committed: bool = True
    ) -> InventoryLevel | None:
        """Take `units` out of committed (when they were committed) and, when `to_available`,
        put them back on sale at the primary location. Call with `lock` held."""
        catalog = self.state.catalog
        variant = catalog.variant_by_sku(sku)
        level = catalog.level(variant.inventory_item_id, catalog.primary_location.id) if variant else None
        if level is None or units <= 0:
            return None
        if committed:
            level.states["committed"] = max(0, level.states["committed"] - units)
        if to_available:
            level.states["available"] += units
        level.updated_at = time.time()
        return level

    def _level_webhooks(
        self, config: dict[str, Any], levels: list[InventoryLevel | None], now: float
    ) -> list[Webhook]:
        if not config.get("send_inventory_webhooks"):
            return []
        return [
            Webhook(
                "inventory_levels/update",
                inventory_level_body(level.item_id, level.location_id, level.states["available"], level.id, now),
                str(uuid.uuid4()),
            )
            for level in levels
            if level is not None
        ]

    def _send_after_sale(
        self, config: dict[str, Any], webhooks: list[Webhook], deliveries: int, view: dict[str, Any]
    ) -> Response:
        self.webhooks.send(self._destination(config), webhooks, deliveries)
        return Response(
            200,
            {
                "order": view,
                "deliveries": deliveries,
                "webhooks": [{"topic": webhook.topic, "event_id": webhook.event_id} for webhook in webhooks],
            },
        )

    # --- inventory webhooks ------------------------------------------------------------------

    def _announce_level_changes(self, result: GraphqlAnswer) -> None:
        if result.changed_levels:
            self._send_inventory_webhooks(result.changed_levels)

    def _send_inventory_webhooks(self, levels: list[InventoryLevel]) -> None:
        with self.lock:
            config = dict(self.config)
            now = time.time()
            bodies = [
                inventory_level_body(level.item_id, level.location_id, level.states["available"], level.id, now)
                for level in levels
            ]
        if bodies and config.get("send_inventory_webhooks") and config.get("webhook_url"):
            webhooks = [Webhook("inventory_levels/update", body, str(uuid.uuid4())) for body in bodies]
            self.webhooks.send(self._destination(config), webhooks)

    def _destination(self, config: dict[str, Any]) -> Destination:
        return Destination(
            url=config["webhook_url"],
            # Shopify always signs; with no secret configured we sign with an empty key.
            secret=config.get("webhook_secret") or "",
            shop_domain=self.state.shop.domain,
            api_version=config.get("webhook_api_version") or DEFAULT_WEBHOOK_API_VERSION,
        )


@dataclass
class ShopifyOrder:
    """What a Shopify order's later webhooks are built from."""

    sale: Sale
    refunds: list[dict[str, Any]] = field(default_factory=list)
    fulfillment_id: int | None = None


def _shopify_error(status: int, errors: Any, headers: dict[str, str] | None = None) -> Response:
    """Shopify's non-GraphQL failures: `{"errors": "..."}` with an HTTP status."""
    return Response(status, {"errors": errors}, headers or {})


def _product_handle(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, f"{field} must be a product handle (a non-empty string), got {value!r}")
    return value.strip()


def _only_get(request: Request) -> None:
    if request.method != "GET":
        raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": "GET"})


def _order_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise HttpError(400, f"order_id must be a positive integer (Shopify order ids are numbers), got {value!r}")
