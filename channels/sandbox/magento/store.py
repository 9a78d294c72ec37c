"""The `magento` kind: Magento 2.4 / Adobe Commerce REST at
`{sandbox}/magento/{store}/rest/{store_code}/V1/...`.

Store codes: `all` (the admin scope, store 0), `default` (store 1), and those in the
`store_codes` config (stores 2, 3, ...); `/rest/V1/...` means `default`. An unknown code is
read as part of the path, as Magento does, so it ends in 404 "Request does not match any route."

    POST /V1/integration/admin/token                {"username", "password"} -> "<JWT>" (anonymous)
    POST /V1/products/base-prices                   {"prices": [{"sku", "price", "store_id"}]} -> [] or failures
    POST /V1/products/base-prices-information       {"skus": [...]} -> [{"sku", "price", "store_id"}]
    GET  /V1/products/{sku}                         the product in that store's scope
    PUT  /V1/products/{sku}                         {"product": {...}}; price lands in the store's scope
    POST /V1/inventory/source-items                 {"sourceItems": [{"sku", "source_code", "quantity",
                                                    "status"}]} -> []
    GET  /V1/inventory/source-items?searchCriteria  {"items", "search_criteria", "total_count"}
    GET  /V1/orders?searchCriteria                  the orders made by `sales` (no webhooks in Magento)
    GET  /V1/orders/{id}
    GET  /V1/bulk/{uuid}/detailed-status, /status
    POST /rest/{code}/async/bulk/V1/products/base-prices       [body, body, ...] -> 202
    POST /rest/{code}/async/bulk/V1/inventory/source-items     [body, ...] -> 202
    PUT  /rest/{code}/async/bulk/V1/products/bySku             [{"product": {"sku", ...}}, ...] -> 202

Every route but the token one needs `Authorization: Bearer` with an admin token (valid
`admin_token_lifetime_s`, default 4 h) or the configured `integration_token`; else 401
`The consumer isn't authorized to access %resources.`
Config: `admin_username`, `admin_password`, `admin_token_lifetime_s`, `integration_token`,
`store_codes`, `bulk_delay_ms` (default 200), `price_scope` (global | website).
Control extras: `GET /_sandbox/magento/{store}/orders` lists the recorded sales. The order life
cycle changes the polled order, with a newer `updated_at` (Magento sends no webhook):
`orders/{id}/pay` invoices it (`processing`), `fulfill` ships an invoiced order (`complete`),
`cancel` cancels an uninvoiced one (`canceled`, `qty_canceled`, the stock back on the default
source), `refund` makes a credit memo for an invoiced one (`qty_refunded`, `closed` once all is
refunded; `restock` is its "Return to Stock"). `{id}` is the order's increment id.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from ..clock import iso
from ..faults import InjectedFault
from ..messages import HttpError, Request, Response
from ..order_book import Order, OrderBook, OrderLine, deliveries_of, refund_of
from ..store import Store
from ..typed_config import (
    TypedConfig,
    choice,
    non_negative_number,
    positive_number,
    text_list,
)
from ..validation import integer, reject_unknown_fields, text
from . import schema, search
from .bulk import BulkQueue
from .catalog import (
    ADMIN_STORE_ID,
    DEFAULT_SOURCE,
    DEFAULT_STORE_ID,
    IN_STOCK,
    OUT_OF_STOCK,
    MagentoCatalog,
    MagentoProduct,
    SourceItem,
    magento_datetime,
    number,
)
from .errors import MagentoError, no_route, product_not_found, unauthorized
from .orders import order_resource
from .tokens import DEFAULT_ADMIN_TOKEN_LIFETIME_S, Tokens

DEFAULT_BULK_DELAY_MS = 200.0
# Magento sends no webhook, so `deliveries` on a sale or order change is checked and ignored.
MAX_POLL_DELIVERIES = 100
CATALOG_RESOURCE = "Magento_Catalog::products"
INVENTORY_RESOURCE = "Magento_InventoryApi::source"
SALES_RESOURCE = "Magento_Sales::actions_view"
BULK_RESOURCE = "Magento_Logging::system_magento_logging_bulk_operations"
SIGN_IN_FAILED = (
    "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later."
)


@dataclass(frozen=True)
class Scope:
    """The store a request addresses and its path parameters."""

    code: str
    store_id: int
    path: dict[str, str]


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]
    handler: str
    resource: str | None  # None: anonymous
    parameters: dict[str, tuple[schema.FieldType, bool]] | None = None  # a JSON body route
    topic: str | None = None  # reachable through /async/bulk

    def match(self, method: str, parts: list[str], bulk: bool) -> dict[str, str] | None:
        if method != self.method or len(parts) != len(self.segments) or (bulk and self.topic is None):
            return None
        found: dict[str, str] = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith(":"):
                if bulk:  # a path parameter becomes by<Param> and moves into each body
                    if part != "by" + pattern[1:2].upper() + pattern[2:]:
                        return None
                    continue
                found[pattern[1:]] = part
            elif pattern != part:
                return None
        return found


ROUTES = (
    Route("POST", ("integration", "admin", "token"), "admin_token", None, schema.ADMIN_TOKEN_PARAMETERS),
    Route(
        "POST",
        ("products", "base-prices"),
        "update_base_prices",
        CATALOG_RESOURCE,
        schema.BASE_PRICES_PARAMETERS,
        "async.magento.catalog.api.basepricestorageinterface.update.post",
    ),
    Route(
        "POST",
        ("products", "base-prices-information"),
        "base_prices_information",
        CATALOG_RESOURCE,
        schema.BASE_PRICES_INFORMATION_PARAMETERS,
    ),
    Route("GET", ("products", ":sku"), "get_product", CATALOG_RESOURCE),
    Route(
        "PUT",
        ("products", ":sku"),
        "save_product",
        CATALOG_RESOURCE,
        schema.PRODUCT_SAVE_PARAMETERS,
        "async.magento.catalog.api.productrepositoryinterface.save.put",
    ),
    Route(
        "POST",
        ("inventory", "source-items"),
        "save_source_items",
        INVENTORY_RESOURCE,
        schema.SOURCE_ITEMS_PARAMETERS,
        "async.magento.inventoryapi.api.sourceitemssaveinterface.execute.post",
    ),
    Route("GET", ("inventory", "source-items"), "list_source_items", INVENTORY_RESOURCE),
    Route("GET", ("orders",), "list_orders", SALES_RESOURCE),
    Route("GET", ("orders", ":id"), "get_order", SALES_RESOURCE),
    Route("GET", ("bulk", ":uuid", "detailed-status"), "bulk_detailed_status", BULK_RESOURCE),
    Route("GET", ("bulk", ":uuid", "status"), "bulk_status", BULK_RESOURCE),
)


def control_price(value: Decimal | None) -> str | None:
    """A price for the control API: decimal text with at least two places."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    return format(value.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else value, "f")


def control_quantity(item: SourceItem | None) -> int | float | None:
    return None if item is None else number(item.quantity)


class MagentoStore(TypedConfig, Store):
    """One Magento installation: products, prices per store, MSI source items, orders, bulks."""

    kind = "magento"
    config_fields = Store.config_fields | {
        "admin_username",
        "admin_password",
        "admin_token_lifetime_s",
        "integration_token",
        "store_codes",
        "bulk_delay_ms",
        "price_scope",
    }
    secret_config_fields = Store.secret_config_fields | {"admin_password", "integration_token"}
    config_parsers = {
        "admin_token_lifetime_s": positive_number,
        "store_codes": text_list,
        "bulk_delay_ms": non_negative_number,
        "price_scope": choice("global", "website"),
    }

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.catalog = MagentoCatalog()
        self.tokens = Tokens()
        self.bulks = BulkQueue(self.lock)
        self.orders: list[dict[str, Any]] = []
        self.order_book = OrderBook(f"{self.kind}/{self.name}")
        self.sales: list[dict[str, Any]] = []

    # --- routing ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except MagentoError as error:
            request.log["error"] = error.message
            raise

    def store_ids(self) -> dict[str, int]:
        """Store view codes to ids; `all` is the admin scope."""
        ids = {"all": ADMIN_STORE_ID, "default": DEFAULT_STORE_ID}
        for code in self.config_value("store_codes") or []:
            ids.setdefault(code, len(ids))
        return ids

    def _dispatch(self, request: Request) -> Response:
        raw = request.subpath.split("/")[1:]
        if not raw or raw[0] != "rest":
            raise no_route()
        parts = raw[1:]
        store_ids = self.store_ids()
        code = "default"
        if parts and parts[0] not in ("V1", "async"):
            code = unquote(parts[0])
            if code not in store_ids:
                raise no_route()  # not a store code: Magento keeps it in the path, which then matches nothing
            parts = parts[1:]
        bulk = parts[:2] == ["async", "bulk"]
        if bulk:
            parts = parts[2:]
        if not parts or parts[0] != "V1":
            raise no_route()
        request.log["store_code"] = code
        segments = [unquote(part) for part in parts[1:]]
        for route in ROUTES:
            path = route.match(request.method, segments, bulk)
            if path is not None:
                self._authorize(request, route)
                scope = Scope(code, store_ids[code], path)
                if bulk:
                    return self._schedule(request, route, scope)
                if route.parameters is not None:
                    parameters = schema.parse_parameters(self._json(request), route.parameters)
                    runner: Callable[[dict[str, Any], Scope], Any] = getattr(self, route.handler)
                    return Response(200, runner(parameters, scope))
                reader: Callable[[Request, Scope], Any] = getattr(self, route.handler)
                return Response(200, reader(request, scope))
        raise no_route()

    def _authorize(self, request: Request, route: Route) -> None:
        if route.resource is None:
            return
        verdict = self.tokens.check(
            request.header("Authorization"), self.config_value("integration_token"), time.time()
        )
        request.log["token"] = verdict.value
        if not verdict.authorized:
            raise unauthorized(route.resource)

    @staticmethod
    def _json(request: Request) -> Any:
        if not request.body.strip():
            return {}
        try:
            return json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MagentoError(400, "Decoding error.") from None

    def _schedule(self, request: Request, route: Route, scope: Scope) -> Response:
        """An async bulk request: check every body now, run them later (202 Accepted)."""
        bodies = self._json(request)
        if not isinstance(bodies, list):
            raise MagentoError(400, "The request body must be an array of request bodies, one per operation.")
        assert route.parameters is not None and route.topic is not None
        parsed = [schema.parse_parameters(body, route.parameters) for body in bodies]
        runner: Callable[[dict[str, Any], Scope], Any] = getattr(self, route.handler)

        def run(parameters: dict[str, Any]) -> Any:
            path = {"sku": parameters["product"].get("sku") or ""} if route.handler == "save_product" else {}
            return runner(parameters, Scope(scope.code, scope.store_id, path))

        if route.handler == "save_product" and any(not parameters["product"].get("sku") for parameters in parsed):
            raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "sku"})
        delay_s = (self.config_value("bulk_delay_ms") or DEFAULT_BULK_DELAY_MS) / 1000.0
        answer = self.bulks.schedule(route.topic, parsed, run, delay_s, time.time())
        request.log["bulk_uuid"] = answer["bulk_uuid"]
        return Response(202, answer)

    # --- token ------------------------------------------------------------------------------

    def admin_token(self, parameters: dict[str, Any], scope: Scope) -> str:
        username, password = self.config_value("admin_username"), self.config_value("admin_password")
        if not (
            username
            and password
            and hmac.compare_digest(str(parameters["username"]).encode(), username.encode())
            and hmac.compare_digest(str(parameters["password"]).encode(), password.encode())
        ):
            raise MagentoError(401, SIGN_IN_FAILED)
        lifetime = self.config_value("admin_token_lifetime_s") or DEFAULT_ADMIN_TOKEN_LIFETIME_S
        return self.tokens.issue(username, lifetime, time.time())

    # --- prices -----------------------------------------------------------------------------

    def update_base_prices(self, parameters: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        store_ids = set(self.store_ids().values())
        price_scope = self.config_value("price_scope") or "global"
        with self.lock:
            return self.catalog.update_base_prices(parameters["prices"], store_ids, price_scope, time.time())

    def base_prices_information(self, parameters: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        with self.lock:
            return self.catalog.base_prices_information(parameters["skus"])

    # --- products ---------------------------------------------------------------------------

    def get_product(self, request: Request, scope: Scope) -> dict[str, Any]:
        with self.lock:
            product = self.catalog.products.get(scope.path["sku"])
            if product is None:
                raise product_not_found()
            return self._product_json(product, scope.store_id)

    def save_product(self, parameters: dict[str, Any], scope: Scope) -> dict[str, Any]:
        """`ProductRepository::save`: the SKU in the path names the product (created if new);
        a price lands in the addressed store's scope unless prices are global."""
        data = parameters["product"]
        sku = scope.path["sku"]
        price = data.get("price")
        if price is not None and price < 0:
            raise MagentoError(400, "Please enter a number 0 or greater in this field.")
        price_scope = self.config_value("price_scope") or "global"
        with self.lock:
            now = time.time()
            product = self.catalog.products.get(sku)
            if product is None:
                if not data.get("name"):
                    raise MagentoError(
                        400, 'The "%1" attribute value is empty. Set the attribute and try again.', ["name"]
                    )
                product = self.catalog.create_product(sku, data["name"], now)
            for name in ("name", "status", "visibility", "type_id", "attribute_set_id", "weight"):
                if data.get(name) is not None:
                    setattr(product, name, data[name])
            if price is not None:
                product.prices[ADMIN_STORE_ID if price_scope == "global" else scope.store_id] = Decimal(str(price))
            for attribute in data.get("custom_attributes") or []:
                if attribute.get("attribute_code"):
                    product.custom_attributes[attribute["attribute_code"]] = attribute.get("value")
            stock_item = (data.get("extension_attributes") or {}).get("stock_item") or {}
            self._apply_legacy_stock(sku, stock_item)
            self.catalog.record_write(sku, now)
            return self._product_json(product, scope.store_id)

    def _apply_legacy_stock(self, sku: str, stock_item: dict[str, Any]) -> None:
        """The legacy stock item mirrors the default source (single-source mode)."""
        if stock_item.get("qty") is None and stock_item.get("is_in_stock") is None:
            return
        current = self.catalog.source_item(sku)
        quantity = stock_item["qty"] if stock_item.get("qty") is not None else (current.quantity if current else 0.0)
        if stock_item.get("is_in_stock") is not None:
            status = IN_STOCK if stock_item["is_in_stock"] else OUT_OF_STOCK
        else:
            status = current.status if current else IN_STOCK
        if quantity <= 0:
            status = OUT_OF_STOCK
        self.catalog.source_items[(sku, DEFAULT_SOURCE)] = SourceItem(sku, DEFAULT_SOURCE, float(quantity), status)

    def _product_json(self, product: MagentoProduct, store_id: int) -> dict[str, Any]:
        price = self.catalog.price(product, store_id)
        source = self.catalog.source_item(product.sku)
        body: dict[str, Any] = {
            "id": product.id,
            "sku": product.sku,
            "name": product.name,
            "attribute_set_id": product.attribute_set_id,
            "status": product.status,
            "visibility": product.visibility,
            "type_id": product.type_id,
            "created_at": magento_datetime(product.created_at),
            "updated_at": magento_datetime(product.updated_at),
        }
        if price is not None:
            body["price"] = number(price)
        if product.weight is not None:
            body["weight"] = product.weight
        body["extension_attributes"] = {
            "website_ids": [1],
            "category_links": [],
            "stock_item": {
                "item_id": product.id,
                "product_id": product.id,
                "stock_id": 1,
                "qty": number(source.quantity) if source else 0,
                "is_in_stock": bool(source and source.status == IN_STOCK),
                "is_qty_decimal": False,
                "show_default_notification_message": False,
                "use_config_min_qty": True,
                "min_qty": 0,
                "use_config_min_sale_qty": 1,
                "min_sale_qty": 1,
                "use_config_max_sale_qty": True,
                "max_sale_qty": 10000,
                "use_config_backorders": True,
                "backorders": 0,
                "use_config_notify_stock_qty": True,
                "notify_stock_qty": 1,
                "use_config_qty_increments": True,
                "qty_increments": 0,
                "use_config_enable_qty_inc": True,
                "enable_qty_increments": False,
                "use_config_manage_stock": True,
                "manage_stock": True,
                "low_stock_date": None,
                "is_decimal_divided": False,
                "stock_status_changed_auto": 0,
            },
        }
        body.update(product_links=[], options=[], media_gallery_entries=[], tier_prices=[])
        body["custom_attributes"] = [
            {"attribute_code": "url_key", "value": product.sku.lower()},
            *({"attribute_code": code, "value": value} for code, value in product.custom_attributes.items()),
        ]
        return body

    # --- inventory --------------------------------------------------------------------------

    def save_source_items(self, parameters: dict[str, Any], scope: Scope) -> list[Any]:
        with self.lock:
            self.catalog.save_source_items(parameters["sourceItems"], {DEFAULT_SOURCE}, time.time())
        return []  # a void service method answers []

    def list_source_items(self, request: Request, scope: Scope) -> dict[str, Any]:
        criteria = search.parse(urlsplit(request.target).query)
        with self.lock:
            rows = [item.as_json() for item in self.catalog.source_items.values()]
        items, total = search.apply(criteria, rows)
        return {"items": items, "search_criteria": criteria.echo(), "total_count": total}

    # --- orders and bulks -------------------------------------------------------------------

    def list_orders(self, request: Request, scope: Scope) -> dict[str, Any]:
        criteria = search.parse(urlsplit(request.target).query)
        with self.lock:
            rows = [dict(order) for order in self.orders]
        items, total = search.apply(criteria, rows)
        return {"items": items, "search_criteria": criteria.echo(), "total_count": total}

    def get_order(self, request: Request, scope: Scope) -> dict[str, Any]:
        with self.lock:
            for order in self.orders:
                if str(order["entity_id"]) == scope.path["id"]:
                    return dict(order)
        raise MagentoError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")

    def bulk_detailed_status(self, request: Request, scope: Scope) -> dict[str, Any]:
        return self.bulks.view(scope.path["uuid"], detailed=True)

    def bulk_status(self, request: Request, scope: Scope) -> dict[str, Any]:
        return self.bulks.view(scope.path["uuid"], detailed=False)

    # --- control ----------------------------------------------------------------------------

    def item_view(self, sku: str) -> dict[str, Any]:
        with self.lock:
            if sku not in self.catalog.products and self.catalog.source_item(sku) is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            return self._item(sku)

    def items_view(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._item(sku) for sku in self.catalog.skus()]

    def _item(self, sku: str) -> dict[str, Any]:
        product = self.catalog.products.get(sku)
        source = self.catalog.source_item(sku)
        touched = self.catalog.touched_at.get(sku) or (product.updated_at if product else None)
        return {
            "sku": sku,
            "price": control_price(product.prices.get(ADMIN_STORE_ID)) if product else None,
            "available": control_quantity(source),
            "title": product.name if product else None,
            "updated_at": iso(touched) if touched else None,
            "writes": self.catalog.writes.get(sku, 0),
            "id": product.id if product else None,
            "source_status": source.status if source else None,
            "store_prices": {str(store): control_price(price) for store, price in sorted(product.prices.items())}
            if product
            else {},
        }

    def put_item(self, sku: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merchant edits the product in the admin: `price` is the global (store 0) price,
        `available` the default source's quantity (in stock when above 0), `title` the name."""
        parsers = self.item_field_parsers()
        reject_unknown_fields(body, parsers)
        values = {name: parsers[name](value, name) for name, value in body.items()}
        with self.lock:
            now = time.time()
            product = self.catalog.products.get(sku) or self.catalog.create_product(
                sku, values.get("title") or sku, now
            )
            if values.get("title") is not None:
                product.name = values["title"]
            if "price" in values:
                if values["price"] is None:
                    product.prices.pop(ADMIN_STORE_ID, None)
                else:
                    product.prices[ADMIN_STORE_ID] = Decimal(values["price"])
            if "available" in values:
                if values["available"] is None:
                    self.catalog.source_items.pop((sku, DEFAULT_SOURCE), None)
                else:
                    quantity = values["available"]
                    status = IN_STOCK if quantity > 0 else OUT_OF_STOCK
                    self.catalog.source_items[(sku, DEFAULT_SOURCE)] = SourceItem(
                        sku, DEFAULT_SOURCE, float(quantity), status
                    )
            product.updated_at = now
            self.catalog.touched_at[sku] = now
            return self._item(sku)

    def record_sale(self, body: dict[str, Any]) -> Response:
        """A customer orders on the storefront: refuse (409) when the default source is short,
        else lower it and record an order that `GET /V1/orders` returns. Magento sends no
        webhook, so `deliveries` is accepted and ignored."""
        reject_unknown_fields(body, ("sku", "quantity", "order_id", "deliveries"))
        sku = text(body.get("sku"), "sku") or ""
        quantity = integer(body.get("quantity"), "quantity", minimum=1)
        if body.get("deliveries") is not None:
            integer(body["deliveries"], "deliveries", minimum=1)
        increment_id = body.get("order_id")
        if increment_id is not None and not isinstance(increment_id, (str, int)) or isinstance(increment_id, bool):
            raise HttpError(400, f"order_id must be a string or an integer, got {increment_id!r}")
        with self.lock:
            product = self.catalog.products.get(sku)
            if product is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            source = self.catalog.source_item(sku)
            on_hand = source.quantity if source and source.status == IN_STOCK else 0.0
            if on_hand < quantity:
                raise HttpError(409, f"stock short for {sku!r}: {number(on_hand)} salable, {quantity} wanted")
            assert source is not None
            source.quantity -= quantity
            if source.quantity <= 0:
                source.status = OUT_OF_STOCK
            now = time.time()
            entity_id = len(self.orders) + 1
            order = order_resource(
                entity_id=entity_id,
                increment_id=str(increment_id) if increment_id is not None else f"{entity_id:09d}",
                item_id=entity_id,
                product=product,
                unit_price=self.catalog.price(product, DEFAULT_STORE_ID) or Decimal(0),
                quantity=quantity,
                store_id=DEFAULT_STORE_ID,
                now=now,
            )
            self.orders.append(order)
            self.order_book.add(
                Order(
                    order["increment_id"],
                    [OrderLine(str(order["items"][0]["item_id"]), sku, quantity)],
                    paid=False,
                    created_at=now,
                    updated_at=now,
                    resource=order,
                )
            )
            self.catalog.touched_at[sku] = now
            self.sales.append(
                {
                    "order_id": order["increment_id"],
                    "entity_id": entity_id,
                    "sku": sku,
                    "quantity": quantity,
                    "recorded_at": iso(now),
                }
            )
        return Response(201, {"order": order})

    # --- control: the order life cycle ------------------------------------------------------

    def order_view(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            order = self.order_book.get(order_id)
            return {**order.view(), "entity_id": order.resource["entity_id"], "status": order.resource["status"]}

    def cancel_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """`POST /V1/orders/{id}/cancel`: only an order with nothing invoiced can be cancelled;
        its items show `qty_canceled` and the units go back on the default source."""
        deliveries_of(body, MAX_POLL_DELIVERIES)
        with self.lock:
            order = self.order_book.get(order_id)
            order.check_can_cancel()
            if order.paid:
                raise HttpError(409, f"order {order_id} is invoiced: Magento cannot cancel it, refund it instead")
            now = time.time()
            for line, item in self._lines(order):
                item["qty_canceled"] = line.quantity
                self._put_back(line.sku, line.quantity, now)
            resource = order.resource
            resource["total_canceled"] = resource["base_total_canceled"] = resource["grand_total"]
            order.cancelled = True
            return self._order_changed(order, "canceled", "canceled", now)

    def refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """`POST /V1/order/{id}/refund` (a credit memo): only an invoiced order has anything to
        refund; `restock` is the credit memo's "Return to Stock"."""
        with self.lock:
            order = self.order_book.get(order_id)
            refund = refund_of(body, order, MAX_POLL_DELIVERIES)
            if not order.paid:
                raise HttpError(409, f"order {order_id} has no invoice: Magento refunds only what was invoiced (pay first)")
            now = time.time()
            resource = order.resource
            amount = Decimal(0)
            for line, quantity in refund.lines:
                item = next(item for item in resource["items"] if str(item["item_id"]) == line.line_id)
                refunded = Decimal(str(item["price"])) * quantity
                amount += refunded
                item["qty_refunded"] = line.refunded + quantity
                item["amount_refunded"] = item["base_amount_refunded"] = number(
                    Decimal(str(item["amount_refunded"])) + refunded
                )
                if refund.restock:
                    self._put_back(line.sku, quantity, now)
            total = Decimal(str(resource.get("total_refunded", 0))) + amount
            resource["total_refunded"] = resource["base_total_refunded"] = number(total)
            order.apply_refund(refund, refund_id=str(len(order.refunds) + 1), at=now)
            state = "closed" if order.fully_refunded else resource["state"]
            return self._order_changed(order, state, state, now)

    def pay_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """`POST /V1/order/{id}/invoice`: the order is paid, `processing`."""
        deliveries_of(body, MAX_POLL_DELIVERIES)
        with self.lock:
            order = self.order_book.get(order_id)
            order.check_can_pay()
            now = time.time()
            for line, item in self._lines(order):
                item["qty_invoiced"] = line.quantity
            resource = order.resource
            resource["total_paid"] = resource["base_total_paid"] = resource["grand_total"]
            resource["total_invoiced"] = resource["base_total_invoiced"] = resource["grand_total"]
            resource["total_due"] = resource["base_total_due"] = 0
            order.paid = True
            return self._order_changed(order, "processing", "processing", now)

    def fulfill_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """`POST /V1/order/{id}/ship`: an invoiced and shipped order is `complete`."""
        deliveries_of(body, MAX_POLL_DELIVERIES)
        with self.lock:
            order = self.order_book.get(order_id)
            order.check_can_fulfill()
            if not order.paid:
                # Magento would ship it and stay `processing`; the sandbox keeps one path.
                raise HttpError(409, f"order {order_id} is not invoiced: pay it first, then fulfill")
            now = time.time()
            for line, item in self._lines(order):
                item["qty_shipped"] = line.refundable
            order.fulfilled = True
            return self._order_changed(order, "complete", "complete", now)

    @staticmethod
    def _lines(order: Order) -> list[tuple[OrderLine, dict[str, Any]]]:
        items = {str(item["item_id"]): item for item in order.resource["items"]}
        return [(line, items[line.line_id]) for line in order.lines]

    def _put_back(self, sku: str, units: int, now: float) -> None:
        """Units back on the default source. Call with `lock` held."""
        source = self.catalog.source_item(sku)
        if source is None or units <= 0:
            return
        source.quantity += units
        if source.quantity > 0:
            source.status = IN_STOCK
        self.catalog.touched_at[sku] = now

    def _order_changed(self, order: Order, state: str, status: str, now: float) -> Response:
        """The order's new state, status and history, with an `updated_at` later than before.
        Call with `lock` held."""
        resource = order.resource
        # A poller keys on `updated_at`, which Magento keeps to the second: two changes within
        # one second would read as one, so the sandbox moves it on by at least a second.
        stamp = max(magento_datetime(now), magento_datetime(_parse_magento_datetime(resource["updated_at"]) + 1))
        resource["state"], resource["status"], resource["updated_at"] = state, status, stamp
        for item in resource["items"]:
            item["updated_at"] = stamp
        shipping_items = {str(item["item_id"]): item for item in resource["items"]}
        for assignment in resource["extension_attributes"]["shipping_assignments"]:
            assignment["items"] = [dict(shipping_items.get(str(item["item_id"]), item)) for item in assignment["items"]]
        resource["status_histories"].insert(
            0,
            {
                "comment": None,
                "created_at": stamp,
                "entity_id": len(resource["status_histories"]) + 1,
                "entity_name": "order",
                "is_customer_notified": 0,
                "is_visible_on_front": 0,
                "parent_id": resource["entity_id"],
                "status": status,
            },
        )
        order.updated_at = now
        return Response(200, {"order": {**order.view(), "status": status}, "updated_at": stamp})

    def control_resource(self, request: Request, resource: str) -> Response | None:
        """`GET /_sandbox/magento/{store}/orders`: the sales recorded so far."""
        if resource != "orders":
            return None
        if request.method != "GET":
            raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": "GET"})
        with self.lock:
            return Response(200, {"orders": [dict(sale) for sale in self.sales]})

    def fault_response(self, fault: InjectedFault, request: Request) -> Response:
        """An injected 401 reads as Magento's own; other statuses come from the web server."""
        if fault.status == 401:
            return unauthorized(CATALOG_RESOURCE).response()
        return fault.response()


def _parse_magento_datetime(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
