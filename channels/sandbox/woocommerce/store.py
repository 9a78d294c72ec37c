"""The `woocommerce` kind: a WooCommerce shop's REST API (wc/v3) at
`{sandbox}/woocommerce/{store}/wp-json/wc/v3/...`.

    GET    /products                          ?sku=A,B (products and variations) &type= &stock_status=
                                              &include= &per_page (1-100, default 10) &page &offset
                                              &orderby &order; X-WP-Total, X-WP-TotalPages, Link
    POST   /products                          create (201)
    GET    /products/{id}                     404 woocommerce_rest_product_invalid_id
    PUT    /products/{id}                     (also POST, PATCH) 400 ..._invalid_id; a variation's id
                                              is refused (use the variations route)
    POST   /products/batch                    {create, update, delete}: at most 100 items (413);
                                              per-item errors inside the answer
    GET    /products/{id}/variations          paginated like /products
    POST   /products/{id}/variations          create (201)
    GET    /products/{id}/variations/{vid}
    PUT    /products/{id}/variations/{vid}
    POST   /products/{id}/variations/batch
    GET    /orders, /orders/{id}              the orders made by `sales`; the list takes `after`, `before`,
                                              `modified_after`, `modified_before` (ISO 8601), `dates_are_gmt`,
                                              `orderby` (date, modified, id), `order`, `status`, paging

Control extras: `PUT items/{sku}` takes `parent_sku` (make the SKU a variation of that variable
product), `manage_stock`, `backorders`; `POST sales` takes `topic` (order.created |
order.updated); `GET /_sandbox/woocommerce/{store}/orders` lists the deliveries of each sale
and of each later change (`action`: sale, cancel, refund, fulfill). The order life cycle
(`orders/{id}/cancel | refund | fulfill`) sends `order.updated` with the order as the REST API
shows it then: `cancelled` (the stock it still holds goes back), `refunds` as
`[{"id", "reason", "total": "-9.99"}]` and `refunded` once nothing is left (restocked units go
back), `completed`. `pay` is 409: a sale is paid at checkout (`processing`).

Auth (see `auth.py`): OAuth 1.0a query or header signatures, Basic auth, or `consumer_key` /
`consumer_secret` query parameters, checked against the `consumer_key` / `consumer_secret`
config; with no key configured nothing is checked (logged `"auth": "unchecked"`).
Config: `host_rate_limit_per_s` (and `host_rate_limit_burst`) put a host's 429 in front;
`key_permissions` read | write | read_write; `batch_items_limit` (WooCommerce's
`woocommerce_rest_batch_items_limit` filter, default 100); `site_url` (the `X-WC-Webhook-Source`
and link base; by default the URL the store was last called at); `webhook_id`.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from ..clock import iso
from ..faults import InjectedFault
from ..messages import HttpError, Request, Response
from ..order_book import Order, OrderBook, OrderLine, deliveries_of, refund_of, refuse_payment
from ..store import FieldParser, Store
from ..typed_config import TypedConfig, choice, positive_integer, positive_number
from ..validation import integer, reject_unknown_fields, text
from . import errors as wp
from . import orders as order_webhooks
from .auth import (
    CREDENTIAL_PARAMETERS,
    Authenticator,
    AuthResult,
    Credentials,
    query_parameters,
)
from .catalog import (
    BACKORDERS,
    POST_STATUSES,
    PRODUCT_TYPES,
    STOCK_STATUSES,
    Catalog,
    Product,
    Renderer,
    price_value,
    product_attributes,
    wp_datetime,
)
from .errors import WpError, error_item
from .order_query import order_query
from .params import (
    ParamErrors,
    boolean_value,
    coerce_boolean,
    coerce_decimal_text,
    coerce_stock_amount,
    enum_value,
    integer_list,
    integer_value,
    string_value,
)
from .throttle import TokenBucket

API_PREFIX = "/wp-json/wc/v3"
EDITABLE = ("POST", "PUT", "PATCH")
DEFAULT_BATCH_LIMIT = 100
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
ORDERBY = ("date", "modified", "id", "include", "title", "slug", "price", "popularity", "rating", "menu_order")
VARIATION_STATUSES = ("draft", "pending", "private", "publish")
MAX_DELIVERIES = 20


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: str
    # What the route's permission callback answers an anonymous caller.
    forbidden: Callable[[], WpError]


def _route(methods: tuple[str, ...], path: str, handler: str, forbidden: Callable[[], WpError]) -> Route:
    return Route(methods, re.compile(path), handler, forbidden)


ROUTES = (
    _route(("GET",), r"/products", "list_products", wp.cannot_list),
    _route(("POST",), r"/products", "create_product", wp.cannot_create),
    _route(EDITABLE, r"/products/batch", "batch_products", wp.cannot_batch),
    _route(("GET",), r"/products/(?P<id>\d+)", "get_product", wp.cannot_view),
    _route(EDITABLE, r"/products/(?P<id>\d+)", "update_product", wp.cannot_edit),
    _route(("GET",), r"/products/(?P<product_id>\d+)/variations", "list_variations", wp.cannot_list),
    _route(("POST",), r"/products/(?P<product_id>\d+)/variations", "create_variation", wp.cannot_create),
    _route(EDITABLE, r"/products/(?P<product_id>\d+)/variations/batch", "batch_variations", wp.cannot_batch),
    _route(("GET",), r"/products/(?P<product_id>\d+)/variations/(?P<id>\d+)", "get_variation", wp.cannot_view),
    _route(EDITABLE, r"/products/(?P<product_id>\d+)/variations/(?P<id>\d+)", "update_variation", wp.cannot_edit),
    _route(("GET",), r"/orders", "list_orders", wp.cannot_list),
    _route(("GET",), r"/orders/(?P<id>\d+)", "get_order", wp.cannot_view),
)


def checked_changes(body: dict[str, Any], errors: ParamErrors, *, statuses: tuple[str, ...]) -> dict[str, Any]:
    """The product fields of a single-resource write, checked against the route schema."""
    changes: dict[str, Any] = {}
    for name in ("name", "sku", "regular_price", "sale_price"):
        if name in body:
            value = string_value(errors, name, body[name])
            if value is not None:
                changes[name] = value.strip() if name == "sku" else value
    if "manage_stock" in body and (flag := boolean_value(errors, "manage_stock", body["manage_stock"])) is not None:
        changes["manage_stock"] = flag
    if (
        "stock_quantity" in body
        and (amount := integer_value(errors, "stock_quantity", body["stock_quantity"])) is not None
    ):
        changes["stock_quantity"] = amount
    for name, allowed in (("stock_status", STOCK_STATUSES), ("backorders", BACKORDERS), ("status", statuses)):
        if name in body and (value := enum_value(errors, name, body[name], allowed)) is not None:
            changes[name] = value
    if "description" in body and (text := string_value(errors, "description", body["description"])) is not None:
        changes["description"] = text
    if "attributes" in body:
        attributes = product_attributes(body["attributes"])
        if attributes is None:
            errors.add("attributes", "rest_invalid_type", "attributes is not of type array.")
        else:
            changes["attributes"] = attributes
    return changes


def coerced_changes(item: dict[str, Any]) -> dict[str, Any]:
    """The product fields of a batch item: not schema-checked, coerced by the setters
    (`isset` skips nulls; an unknown stock status becomes `instock`, an unknown post
    status `draft`)."""
    changes: dict[str, Any] = {}
    for name in ("name", "sku"):
        if item.get(name) is not None:
            changes[name] = str(item[name]).strip() if name == "sku" else str(item[name])
    for name in ("regular_price", "sale_price"):
        if item.get(name) is not None:
            changes[name] = coerce_decimal_text(item[name])
    if item.get("manage_stock") is not None:
        changes["manage_stock"] = coerce_boolean(item["manage_stock"])
    if item.get("stock_quantity") is not None:
        changes["stock_quantity"] = coerce_stock_amount(item["stock_quantity"])
    if item.get("stock_status") is not None:
        changes["stock_status"] = item["stock_status"] if item["stock_status"] in STOCK_STATUSES else "instock"
    if item.get("backorders") is not None:
        changes["backorders"] = item["backorders"] if item["backorders"] in BACKORDERS else "no"
    if item.get("status") is not None:
        changes["status"] = item["status"] if item["status"] in POST_STATUSES else "draft"
    if item.get("description") is not None:
        changes["description"] = str(item["description"])
    if (attributes := product_attributes(item.get("attributes"))) is not None:
        changes["attributes"] = attributes
    return changes


def paginate(items: list[Any], per_page: int, page: int, offset: int | None) -> tuple[list[Any], int, int]:
    """The page's items, the total and the page count, as WP_Query finds them."""
    start = offset if offset is not None else (page - 1) * per_page
    total = len(items)
    return items[start : start + per_page], total, math.ceil(total / per_page)


class WooCommerceStore(TypedConfig, Store):
    """One WooCommerce shop: products, variations, API keys, orders and order webhooks."""

    kind = "woocommerce"
    config_fields = Store.config_fields | {
        "consumer_key",
        "consumer_secret",
        "key_permissions",
        "host_rate_limit_per_s",
        "host_rate_limit_burst",
        "batch_items_limit",
        "site_url",
        "webhook_id",
    }
    secret_config_fields = Store.secret_config_fields | {"consumer_secret"}
    config_parsers = {
        "key_permissions": choice("read", "write", "read_write"),
        "host_rate_limit_per_s": positive_number,
        "host_rate_limit_burst": positive_integer,
        "batch_items_limit": positive_integer,
        "webhook_id": positive_integer,
    }

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.catalog = Catalog()
        self.orders: dict[int, dict[str, Any]] = {}
        self.order_book = OrderBook(f"{self.kind}/{self.name}")
        self.sales: list[dict[str, Any]] = []
        self.authenticator = Authenticator()
        self.host_bucket = TokenBucket()
        self._last_site_url: str | None = None
        self._webhook_failures = 0

    # --- the real API -----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            self._throttle()
            return self._dispatch(request)
        except WpError as error:
            request.log["error"] = error.message
            raise

    def _throttle(self) -> None:
        rate = self.config_value("host_rate_limit_per_s")
        if rate is None:
            return
        burst = self.config_value("host_rate_limit_burst") or max(1, math.ceil(rate))
        with self.lock:
            wait_s = self.host_bucket.take(rate, burst, time.monotonic())
        if wait_s is not None:
            raise HttpError(
                429,
                "Too Many Requests",
                headers={"Retry-After": str(wait_s)},
                detail=f"host limit of {rate:g} requests/s",
            )

    def _dispatch(self, request: Request) -> Response:
        if request.subpath != API_PREFIX and not request.subpath.startswith(API_PREFIX + "/"):
            raise wp.no_route()
        site_url = self._site_url(request)
        auth = self._authenticate(request)
        if auth.authenticated:
            self._check_key_permissions(request.method)
        path = request.subpath[len(API_PREFIX) :].rstrip("/")
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match and request.method in route.methods:
                if auth.method == "none":
                    raise route.forbidden()
                handler: Callable[[Request, dict[str, str], Renderer], Response] = getattr(self, route.handler)
                return handler(request, match.groupdict(), Renderer(self.catalog, site_url))
        raise wp.no_route()

    def _authenticate(self, request: Request) -> AuthResult:
        key, secret = self.config_value("consumer_key"), self.config_value("consumer_secret")
        credentials = Credentials(key, secret) if key and secret else None
        auth = self.authenticator.authenticate(request, credentials, time.time())
        request.log["auth"] = auth.method if auth.error is None else f"{auth.method} (rejected)"
        if auth.error is not None:
            raise auth.error
        return auth

    def _check_key_permissions(self, method: str) -> None:
        permissions = self.config_value("key_permissions") or "read_write"
        if method in ("GET", "HEAD") and permissions not in ("read", "read_write"):
            raise wp.authentication_error("The API key provided does not have read permissions.")
        if method in ("POST", "PUT", "PATCH", "DELETE") and permissions not in ("write", "read_write"):
            raise wp.authentication_error("The API key provided does not have write permissions.")

    def _site_url(self, request: Request) -> str:
        configured = self.config_value("site_url")
        if configured:
            return f"{str(configured).rstrip('/')}/"
        scheme = (request.header("X-Forwarded-Proto") or "http").split(",")[0].strip()
        host = request.header("Host") or "localhost"
        self._last_site_url = f"{scheme}://{host}/woocommerce/{quote(self.name, safe='')}/"
        return self._last_site_url

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            return request.json_object()
        except HttpError:
            raise wp.invalid_json() from None

    # --- products ---------------------------------------------------------------------------

    def list_products(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        query = request.query
        errors = ParamErrors()
        paging = self._paging(query, errors)
        product_type = enum_value(errors, "type", query["type"], PRODUCT_TYPES) if "type" in query else None
        stock_status = (
            enum_value(errors, "stock_status", query["stock_status"], STOCK_STATUSES)
            if "stock_status" in query
            else None
        )
        include = integer_list(errors, "include", query["include"]) if query.get("include") else None
        errors.raise_if_any()
        with self.lock:
            if query.get("sku"):
                # An exact-match SKU filter searches variations too (post_type product and
                # product_variation), so a variation can be found by its SKU.
                skus = set(query["sku"].split(","))
                candidates = [product for product in self.catalog.by_id.values() if product.sku in skus]
            else:
                candidates = self.catalog.products()
            candidates = [
                product
                for product in candidates
                if (product_type is None or product.type == product_type)
                and (stock_status is None or product.stock_status == stock_status)
                and (include is None or product.id in include)
            ]
            page_items, total, pages = self._page(candidates, paging)
            body = [render.product(product) for product in page_items]
        return Response(200, body, self._pagination_headers(request, render, "/products", paging, total, pages))

    def get_product(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        with self.lock:
            product = self.catalog.get(int(params["id"]))
            if product is None:
                raise wp.invalid_id("product", 404)
            return Response(200, render.product(product))

    def create_product(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        body = self._body(request)
        errors = ParamErrors()
        changes = checked_changes(body, errors, statuses=POST_STATUSES)
        product_type = enum_value(errors, "type", body.get("type", "simple"), PRODUCT_TYPES)
        errors.raise_if_any()
        with self.lock:
            product = self._create(body.get("id"), product_type or "simple", changes, None)
            response = render.product(product)
        return Response(201, response, {"Location": f"{render.api_url}/products/{product.id}"})

    def update_product(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        body = self._body(request)
        errors = ParamErrors()
        changes = checked_changes(body, errors, statuses=POST_STATUSES)
        if "type" in body:
            enum_value(errors, "type", body["type"], PRODUCT_TYPES)  # checked; changing a type is not emulated
        errors.raise_if_any()
        with self.lock:
            product = self._product_for_update(int(params["id"]))
            self._update(product, changes)
            return Response(200, render.product(product))

    def batch_products(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        return self._batch(request, render, parent_id=None)

    # --- variations -------------------------------------------------------------------------

    def list_variations(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        errors = ParamErrors()
        paging = self._paging(request.query, errors)
        errors.raise_if_any()
        parent_id = int(params["product_id"])
        with self.lock:
            # A parent that does not exist simply has no variations (the query is by post_parent).
            page_items, total, pages = self._page(self.catalog.variations_of(parent_id), paging)
            body = [render.variation(variation) for variation in page_items]
        return Response(
            200,
            body,
            self._pagination_headers(request, render, f"/products/{parent_id}/variations", paging, total, pages),
        )

    def get_variation(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        with self.lock:
            variation = self._variation(int(params["product_id"]), int(params["id"]), missing_status=404)
            return Response(200, render.variation(variation))

    def create_variation(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        body = self._body(request)
        errors = ParamErrors()
        changes = checked_changes(body, errors, statuses=VARIATION_STATUSES)
        errors.raise_if_any()
        with self.lock:
            parent = self._variable_parent(int(params["product_id"]))
            variation = self._create(body.get("id"), "variation", changes, parent)
            response = render.variation(variation)
        return Response(201, response, {"Location": f"{render.api_url}/products/{parent.id}/variations/{variation.id}"})

    def update_variation(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        body = self._body(request)
        errors = ParamErrors()
        changes = checked_changes(body, errors, statuses=VARIATION_STATUSES)
        errors.raise_if_any()
        with self.lock:
            variation = self._variation(int(params["product_id"]), int(params["id"]), missing_status=400)
            self._update(variation, changes)
            return Response(200, render.variation(variation))

    def batch_variations(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        return self._batch(request, render, parent_id=int(params["product_id"]))

    # --- batches ----------------------------------------------------------------------------

    def _batch(self, request: Request, render: Renderer, parent_id: int | None) -> Response:
        """`WC_REST_Controller::batch_items`: check the limit, then create, update and delete
        item by item; a failed item is answered in place and the others still apply."""
        body = self._body(request)
        errors = ParamErrors()
        sections: dict[str, list[Any]] = {}
        for section in ("create", "update", "delete"):
            value = body.get(section)
            if value in (None, [], {}, "", 0, False):  # array_filter drops empty parameters
                continue
            if not isinstance(value, list):
                errors.add(section, "rest_invalid_type", f"{section} is not of type array.")
                continue
            for index, item in enumerate(value):
                if section == "delete":
                    integer_value(errors, f"{section}[{index}]", item)
                elif not isinstance(item, dict):
                    errors.add(section, "rest_invalid_type", f"{section}[{index}] is not of type object.")
            sections[section] = value
        errors.raise_if_any()
        limit = self.config_value("batch_items_limit") or DEFAULT_BATCH_LIMIT
        if sum(len(items) for items in sections.values()) > limit:
            raise wp.batch_too_large(limit)
        render_one = render.product if parent_id is None else render.variation
        answer: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            for item in sections.get("create", []):
                answer.setdefault("create", []).append(self._batch_create(item, parent_id, render_one))
            for item in sections.get("update", []):
                answer.setdefault("update", []).append(self._batch_update(item, parent_id, render_one))
            for item_id in sections.get("delete", []):
                if int(item_id) != 0:  # WooCommerce skips a 0 id silently
                    answer.setdefault("delete", []).append(self._batch_delete(int(item_id), parent_id, render_one))
        request.log["batch"] = {section: len(items) for section, items in sections.items()}
        # An empty PHP array encodes as [], not {}.
        return Response(200, answer or [])

    def _batch_create(
        self, item: dict[str, Any], parent_id: int | None, render_one: Callable[[Product], dict[str, Any]]
    ) -> dict[str, Any]:
        try:
            if parent_id is None:
                product_type = str(item["type"]) if item.get("type") in PRODUCT_TYPES else "simple"
                product = self._create(item.get("id"), product_type, coerced_changes(item), None)
            else:
                product = self._create(
                    item.get("id"), "variation", coerced_changes(item), self._variable_parent(parent_id)
                )
        except WpError as error:
            return error_item(0, error)
        return render_one(product)

    def _batch_update(
        self, item: dict[str, Any], parent_id: int | None, render_one: Callable[[Product], dict[str, Any]]
    ) -> dict[str, Any]:
        item_id = item.get("id")
        try:
            product_id = self._id_value(item_id)
            if parent_id is None:
                product = self._product_for_update(product_id)
            else:
                product = self._variation(parent_id, product_id, missing_status=400)
            self._update(product, coerced_changes(item))
        except WpError as error:
            return error_item(item_id, error)
        return render_one(product)

    def _batch_delete(
        self, item_id: int, parent_id: int | None, render_one: Callable[[Product], dict[str, Any]]
    ) -> dict[str, Any]:
        try:
            if parent_id is None:
                product = self.catalog.get(item_id)
                if product is None:
                    raise wp.invalid_id("product", 404)
            else:
                product = self._variation(parent_id, item_id, missing_status=404)
        except WpError as error:
            return error_item(item_id, error)
        answer = render_one(product)
        self.catalog.delete(product)
        return answer

    # --- product state (call with the lock held) ---------------------------------------------

    @staticmethod
    def _id_value(value: Any) -> int:
        """`(int) $request['id']`: anything that is not a positive integer finds nothing."""
        try:
            return int(value) if not isinstance(value, bool) else 0
        except (TypeError, ValueError):
            return 0

    def _product_for_update(self, product_id: int) -> Product:
        product = self.catalog.get(product_id)
        if product is None:
            raise wp.invalid_id("product", 400)
        if product.type == "variation":
            raise WpError(
                404,
                "woocommerce_rest_invalid_product_id",
                "To manipulate product variations you should use the"
                " /products/&lt;product_id&gt;/variations/&lt;id&gt; endpoint.",
            )
        return product

    def _variation(self, parent_id: int, variation_id: int, *, missing_status: int) -> Product:
        variation = self.catalog.get(variation_id)
        if variation is None or variation.type != "variation":
            raise wp.invalid_id("product_variation", missing_status)
        if variation.parent_id != parent_id:
            # The variation exists under another product: not found under this one.
            raise wp.invalid_id("product_variation", 404)
        return variation

    def _variable_parent(self, parent_id: int) -> Product:
        parent = self.catalog.get(parent_id)
        if parent is None or parent.type != "variable":
            raise wp.invalid_id("product", 404)
        return parent

    def _create(self, requested_id: Any, product_type: str, changes: dict[str, Any], parent: Product | None) -> Product:
        post_type = "product_variation" if parent is not None else "product"
        if requested_id:
            raise WpError(400, f"woocommerce_rest_{post_type}_exists", f"Cannot create existing {post_type}.")
        now = time.time()
        product = self.catalog.create(product_type, changes.get("sku", ""), changes.get("name", ""), now, parent)
        self.catalog.apply(product, changes, now)
        product.writes += 1
        return product

    def _update(self, product: Product, changes: dict[str, Any]) -> None:
        self.catalog.apply(product, changes, time.time())
        product.writes += 1

    # --- orders -----------------------------------------------------------------------------

    def list_orders(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        errors = ParamErrors()
        paging = self._paging(
            request.query, errors, orderby_choices=("date", "id", "include", "title", "slug", "modified")
        )
        dates = order_query(request.query, errors, orderby=paging["orderby"], order=paging["order"])
        errors.raise_if_any()
        with self.lock:
            orders = [copy.deepcopy(order) for order in self.orders.values()]
        status = request.query.get("status")
        if status and status != "any":
            orders = [order for order in orders if order["status"] in status.split(",")]
        page_items, total, pages = paginate(dates.apply(orders), paging["per_page"], paging["page"], paging["offset"])
        return Response(200, page_items, self._pagination_headers(request, render, "/orders", paging, total, pages))

    def get_order(self, request: Request, params: dict[str, str], render: Renderer) -> Response:
        with self.lock:
            order = self.orders.get(int(params["id"]))
            if order is None:
                raise WpError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            return Response(200, dict(order))

    # --- pagination -------------------------------------------------------------------------

    @staticmethod
    def _paging(
        query: dict[str, str], errors: ParamErrors, orderby_choices: tuple[str, ...] = ORDERBY
    ) -> dict[str, Any]:
        return {
            "per_page": integer_value(
                errors, "per_page", query.get("per_page", str(DEFAULT_PER_PAGE)), minimum=1, maximum=MAX_PER_PAGE
            ),
            "page": integer_value(errors, "page", query.get("page", "1"), minimum=1),
            "offset": integer_value(errors, "offset", query["offset"]) if query.get("offset") else None,
            "order": enum_value(errors, "order", query.get("order", "desc"), ("asc", "desc")),
            "orderby": enum_value(errors, "orderby", query.get("orderby", "date"), orderby_choices),
        }

    @staticmethod
    def _page(products: list[Product], paging: dict[str, Any]) -> tuple[list[Product], int, int]:
        orderby = paging["orderby"]
        sort_key: Callable[[Product], Any]
        if orderby in ("title", "slug"):
            sort_key = lambda product: (product.name.lower(), product.id)  # noqa: E731
        elif orderby == "price":
            sort_key = lambda product: (price_value(product.price) or Decimal(0), product.id)  # noqa: E731
        elif orderby == "modified":
            sort_key = lambda product: (product.modified_at, product.id)  # noqa: E731
        else:
            # "date" sorts by date then ID; products made in one request share a second.
            sort_key = lambda product: (product.created_at, product.id)  # noqa: E731
        ordered = sorted(products, key=sort_key, reverse=paging["order"] == "desc")
        return paginate(ordered, paging["per_page"], paging["page"], paging["offset"])

    @staticmethod
    def _pagination_headers(
        request: Request, render: Renderer, path: str, paging: dict[str, Any], total: int, pages: int
    ) -> dict[str, str]:
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        # WooCommerce echoes every query parameter into the links, credentials included; the
        # sandbox leaves credentials out so they do not spread into logs.
        kept = [
            (name, value)
            for name, value in query_parameters(request)
            if name not in CREDENTIAL_PARAMETERS and name != "page"
        ]
        page = paging["page"]
        links = []
        if page > 1:
            links.append(f'<{render.api_url}{path}?{urlencode([*kept, ("page", min(page - 1, pages))])}>; rel="prev"')
        if pages > page:
            links.append(f'<{render.api_url}{path}?{urlencode([*kept, ("page", page + 1)])}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return headers

    # --- control: items ---------------------------------------------------------------------

    def item_field_parsers(self) -> dict[str, FieldParser]:
        def boolean(value: Any, field: str) -> bool:
            if not isinstance(value, bool):
                raise HttpError(400, f"{field} must be true or false, got {value!r}")
            return value

        return {
            **super().item_field_parsers(),
            # Creates the variable product if needed and makes this SKU one of its variations.
            "parent_sku": lambda value, field: text(value, field),
            "manage_stock": boolean,
            "backorders": choice(*BACKORDERS),
        }

    def put_item(self, sku: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merchant edits the product in wp-admin: `price` is the regular price,
        `available` the managed stock quantity (null stops managing stock), `title` the name.
        A new SKU becomes a simple product that manages stock, or a variation of
        `parent_sku`."""
        parsers = self.item_field_parsers()
        reject_unknown_fields(body, parsers)
        values = {name: parsers[name](value, name) for name, value in body.items()}
        with self.lock:
            now = time.time()
            product = self.catalog.find_sku(sku) or self._new_item(sku, values, now)
            parent_sku = values.get("parent_sku")
            if parent_sku is not None:
                parent = self.catalog.get(product.parent_id)
                if parent is None or parent.sku != parent_sku:
                    raise HttpError(409, f"{sku!r} exists and is not a variation of {parent_sku!r}")
            changes: dict[str, Any] = {}
            if "title" in values:
                changes["name"] = values["title"] or ""
            if "price" in values:
                changes["regular_price"] = values["price"] or ""
            if "available" in values:
                changes["manage_stock"] = values["available"] is not None
                if values["available"] is not None:
                    changes["stock_quantity"] = values["available"]
            for name in ("manage_stock", "backorders"):
                if name in values:
                    changes[name] = values[name]
            self.catalog.apply(product, changes, now)
            return self._item(product)

    def _new_item(self, sku: str, values: dict[str, Any], now: float) -> Product:
        parent = None
        parent_sku = values.get("parent_sku")
        if parent_sku is not None:
            parent = self.catalog.find_sku(parent_sku)
            if parent is None:
                parent = self.catalog.create("variable", parent_sku, parent_sku, now)
            elif parent.type != "variable":
                raise HttpError(409, f"{parent_sku!r} is a {parent.type} product, not a variable one")
        product = self.catalog.create("variation" if parent else "simple", sku, values.get("title") or sku, now, parent)
        product.manage_stock = True
        return product

    def item_view(self, sku: str) -> dict[str, Any]:
        with self.lock:
            product = self.catalog.find_sku(sku)
            if product is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            return self._item(product)

    def items_view(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                self._item(product) for product in sorted(self.catalog.by_sku.values(), key=lambda product: product.id)
            ]

    @staticmethod
    def _item(product: Product) -> dict[str, Any]:
        return {
            "sku": product.sku,
            "price": product.regular_price or None,
            "available": product.stock_quantity if product.manage_stock else None,
            "title": product.name,
            "updated_at": iso(product.modified_at),
            "writes": product.writes,
            "id": product.id,
            "type": product.type,
            "parent_id": product.parent_id,
            "manage_stock": product.manage_stock,
            "stock_status": product.stock_status,
            "attributes": {attribute["name"] or str(attribute["id"]): attribute["options"] for attribute in product.attributes},
        }

    # --- control: config and sales ----------------------------------------------------------

    def set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        view = super().set_config(body)
        if "webhook_url" in body:
            with self.lock:
                self._webhook_failures = 0  # saving the webhook again re-activates it
        return view

    def record_sale(self, body: dict[str, Any]) -> Response:
        """A customer checks out: refuse (409) when stock is short, else lower it, record the
        order and deliver `order.created` (or `topic`) `deliveries` times in the background."""
        reject_unknown_fields(body, ("sku", "quantity", "order_id", "deliveries", "topic"))
        sku = text(body.get("sku"), "sku")
        quantity = integer(body.get("quantity"), "quantity", minimum=1)
        deliveries = integer(body.get("deliveries", 1), "deliveries", minimum=1)
        if deliveries > MAX_DELIVERIES:
            raise HttpError(400, f"deliveries must be at most {MAX_DELIVERIES}, got {deliveries}")
        topic = choice(*order_webhooks.TOPICS)(body.get("topic", "order.created"), "topic")
        order_id = self._order_id(body.get("order_id"))
        webhook_url, site_url = self._webhook_target()
        with self.lock:
            product = self.catalog.find_sku(sku or "")
            if product is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            self._take_stock(product, quantity)
            if order_id is None:
                order_id = self.catalog.next_post_id()  # orders are posts too (without HPOS)
            elif order_id in self.orders:
                raise HttpError(409, f"order {order_id} already exists")
            now = time.time()
            order = order_webhooks.order_resource(
                order_id=order_id,
                number=str(order_id),
                product=product,
                parent=self.catalog.get(product.parent_id),
                quantity=quantity,
                now=now,
                site_url=site_url,
            )
            self.orders[order_id] = order
            [line_item] = order["line_items"]
            self.order_book.add(
                Order(
                    str(order_id),
                    [OrderLine(str(line_item["id"]), sku or "", quantity)],
                    paid=True,
                    created_at=now,
                    updated_at=now,
                    resource=order,
                )
            )
            sale = self._delivery_record(order_id, "sale", topic, deliveries, now)
            sale.update(sku=sku, quantity=quantity)
            snapshot = copy.deepcopy(order)
            answer = {"order": snapshot, "sale": _copy_sale(sale)}
        self._deliver_in_background(sale, snapshot, webhook_url, site_url)
        return Response(201, answer)

    def _webhook_target(self) -> tuple[str, str]:
        """Where webhooks go and the site they say they come from; 409 without a webhook_url."""
        webhook_url = self.config_value("webhook_url")
        if not webhook_url:
            raise HttpError(
                409,
                f"no webhook_url configured: POST /_sandbox/{self.kind}/{self.name}/config"
                ' {"webhook_url": ...} first',
            )
        site_url = (
            self.config_value("site_url")
            or self._last_site_url
            or f"http://localhost/woocommerce/{quote(self.name, safe='')}/"
        )
        return webhook_url, site_url.rstrip("/") + "/"

    def _delivery_record(
        self, order_id: int, action: str, topic: str, deliveries: int, now: float
    ) -> dict[str, Any]:
        """A pending delivery of one order event, listed by `GET orders`. Call with `lock` held."""
        record: dict[str, Any] = {
            "order_id": order_id,
            "action": action,
            "topic": topic,
            "recorded_at": iso(now),
            "deliveries": [
                {
                    "delivery_id": order_webhooks.new_delivery_id(),
                    "status": "pending",
                    "http_status": None,
                    "error": None,
                }
                for _ in range(deliveries)
            ],
        }
        self.sales.append(record)
        return record

    def _deliver_in_background(self, record: dict[str, Any], order: dict[str, Any], url: str, source: str) -> None:
        threading.Thread(
            target=self._deliver,
            args=(record, order, url, source),
            name=f"woocommerce-webhook-{self.name}",
            daemon=True,
        ).start()

    # --- control: the order life cycle ------------------------------------------------------

    def order_view(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            order = self.order_book.get(order_id)
            return {**order.view(), "status": order.resource["status"]}

    def cancel_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The shop sets the order `cancelled`: WooCommerce puts back the stock the order still
        holds (`wc_maybe_increase_stock_levels`, less what refunds restocked) and the save
        sends `order.updated`."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        url, site_url = self._webhook_target()
        with self.lock:
            order = self.order_book.get(order_id)
            order.check_can_cancel()
            now = time.time()
            for line in order.lines:
                self._put_back(line.sku, line.quantity - line.restocked, now)
            order.cancelled = True
            return self._order_updated(order, "cancel", deliveries, now, url, site_url, status="cancelled")

    def refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """A refund (`POST /orders/{id}/refunds` with `api_restock`): it shows in the order's
        `refunds` as `{"id", "reason", "total"}` with a negative total, the order turns
        `refunded` once nothing is left to refund, and restocked units go back on the shelf."""
        url, site_url = self._webhook_target()
        with self.lock:
            order = self.order_book.get(order_id)
            refund = refund_of(body, order, MAX_DELIVERIES)
            now = time.time()
            resource = order.resource
            amount = Decimal(0)
            for line, quantity in refund.lines:
                item = next(item for item in resource["line_items"] if str(item["id"]) == line.line_id)
                amount += Decimal(item["subtotal"]) / item["quantity"] * quantity
                if refund.restock:
                    self._put_back(line.sku, quantity, now)
            refund_id = self.catalog.next_post_id()  # a refund is a post (shop_order_refund)
            # Newest first, as WC_Order::get_refunds lists them.
            resource["refunds"].insert(0, {"id": refund_id, "reason": "", "total": f"-{order_webhooks.money(amount)}"})
            order.apply_refund(refund, refund_id=str(refund_id), at=now)
            status = "refunded" if order.fully_refunded else resource["status"]
            return self._order_updated(order, "refund", refund.deliveries, now, url, site_url, status=status)

    def pay_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """Nothing to pay: a sale here is paid at checkout (`processing`)."""
        refuse_payment(
            self.lock,
            self.order_book,
            order_id,
            body,
            maximum_deliveries=MAX_DELIVERIES,
            why="a WooCommerce sale here is paid at checkout",
        )

    def fulfill_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The order ships: status `completed` (its stock was taken at checkout)."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        url, site_url = self._webhook_target()
        with self.lock:
            order = self.order_book.get(order_id)
            order.check_can_fulfill()
            now = time.time()
            order.fulfilled = True
            order.resource["date_completed"] = order.resource["date_completed_gmt"] = wp_datetime(now)
            return self._order_updated(order, "fulfill", deliveries, now, url, site_url, status="completed")

    def _order_updated(
        self, order: Order, action: str, deliveries: int, now: float, url: str, site_url: str, *, status: str
    ) -> Response:
        """Save the order's new status and send `order.updated`. Call with `lock` held."""
        resource = order.resource
        resource["status"] = status
        resource["date_modified"] = resource["date_modified_gmt"] = wp_datetime(now)
        order.updated_at = now
        record = self._delivery_record(resource["id"], action, "order.updated", deliveries, now)
        self._deliver_in_background(record, copy.deepcopy(resource), url, site_url)
        return Response(200, {"order": {**order.view(), "status": status}, "delivery": _copy_sale(record)})

    def _put_back(self, sku: str, units: int, now: float) -> None:
        """Units back in the product's managed stock. Call with `lock` held."""
        product = self.catalog.find_sku(sku)
        if product is None or units <= 0 or not product.manage_stock:
            return
        product.stock_quantity = (product.stock_quantity or 0) + units
        product.refresh_stock_status()
        product.modified_at = now

    @staticmethod
    def _order_id(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return integer(value, "order_id", minimum=1)

    @staticmethod
    def _take_stock(product: Product, quantity: int) -> None:
        if product.type == "variable":
            raise HttpError(409, f"{product.sku!r} is a variable product: sell one of its variations")
        if product.manage_stock:
            on_hand = product.stock_quantity or 0
            if on_hand < quantity and product.backorders == "no":
                raise HttpError(409, f"stock short for {product.sku!r}: {on_hand} available, {quantity} wanted")
            product.stock_quantity = on_hand - quantity
            product.refresh_stock_status()
        elif product.stock_status == "outofstock":
            raise HttpError(409, f"{product.sku!r} is out of stock")
        product.total_sales += quantity
        product.modified_at = time.time()

    def _deliver(self, sale: dict[str, Any], order: dict[str, Any], url: str, source: str) -> None:
        """Send each delivery in turn (no retries, as WooCommerce) and record how it went."""
        body = order_webhooks.wp_json_encode(order)
        secret = self.config_value("webhook_secret") or ""  # WooCommerce signs even with an empty secret
        webhook_id = self.config_value("webhook_id") or 1
        for delivery in sale["deliveries"]:
            with self.lock:
                disabled = self._webhook_failures > order_webhooks.MAX_CONSECUTIVE_FAILURES
            if disabled:
                self._record_delivery(delivery, "skipped", None, "webhook disabled after repeated failures")
                continue
            headers = order_webhooks.delivery_headers(
                topic=sale["topic"],
                source=source,
                webhook_id=webhook_id,
                delivery_id=delivery["delivery_id"],
                secret=secret,
                body=body,
            )
            status, error = order_webhooks.post(url, body, headers)
            delivered = status is not None and 200 <= status < 300
            self._record_delivery(delivery, "delivered" if delivered else "failed", status, error)

    def _record_delivery(self, delivery: dict[str, Any], outcome: str, status: int | None, error: str | None) -> None:
        with self.lock:
            delivery.update(status=outcome, http_status=status, error=error, finished_at=iso(time.time()))
            if outcome == "delivered":
                self._webhook_failures = 0
            elif outcome == "failed":
                self._webhook_failures += 1

    def control_resource(self, request: Request, resource: str) -> Response | None:
        """`GET /_sandbox/woocommerce/{store}/orders`: each sale's and later change's deliveries."""
        if resource != "orders":
            return None
        if request.method != "GET":
            raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": "GET"})
        with self.lock:
            return Response(200, {"orders": [_copy_sale(sale) for sale in self.sales]})

    def fault_response(self, fault: InjectedFault, request: Request) -> Response:
        """An injected 401 reads as WooCommerce's own; other statuses come from the host."""
        if fault.status == 401:
            return wp.authentication_error("Consumer key is invalid.").response()
        return fault.response()


def _copy_sale(sale: dict[str, Any]) -> dict[str, Any]:
    return {**sale, "deliveries": [dict(delivery) for delivery in sale["deliveries"]]}
