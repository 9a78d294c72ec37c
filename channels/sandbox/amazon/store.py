"""The `amazon` kind: one seller on Amazon, as SP-API and Login with Amazon show it.

    /amazon/{store}/auth/o2/token                       LWA (auth.py)
    /amazon/{store}/listings/2021-08-01/items/...       Listings Items (listings_api.py)
    /amazon/{store}/feeds/2021-06-30/...                Feeds (feeds_api.py, feeds.py)
    /amazon/{store}/_upload/{id}, /_download/{id}       presigned document URLs (S3 stand-ins)

Every SP-API call needs a live `x-amz-access-token` (403 otherwise), then passes its
operation's token bucket (429 `QuotaExceeded` otherwise); every answer carries
`x-amzn-RequestId`, and `x-amzn-RateLimit-Limit` once the operation's plan is known.
Control extras: `GET /_sandbox/amazon/{store}/stats` (calls that passed authorization and
how many were throttled, per operation), `/deliveries` (notification delivery attempts) and
`/feeds`. The order life cycle: `orders/{id}/cancel` (ORDER_CHANGE `Canceled`, the quantity
back on the listing), `orders/{id}/fulfill` (ORDER_CHANGE `Shipped`); `refund` is 400 (an
ORDER_CHANGE has no refund) and `pay` 409 (a sale is `Unshipped`, paid, already).
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import unquote

from ..clock import iso
from ..faults import InjectedFault
from ..messages import HttpError, Request, Response
from ..order_book import Order, OrderBook, OrderLine, deliveries_of, refuse_payment
from ..store import FieldParser, Store
from ..typed_config import TypedConfig
from ..validation import integer, reject_unknown_fields, text
from . import feeds_api, listings_api, settings
from .attributes import Marketplace, PatchOperation, apply_operations, partial_update
from .auth import (
    ACCESS_TOKEN_HEADER,
    AccessTokens,
    Credentials,
    check_token_request,
    token_answer,
    token_request_fields,
)
from .errors import QUOTA_EXCEEDED, LwaError, SpApiError, error_list, invalid_input
from .feeds import Feed, FeedDocument, MessagePlan, build_report, check_feed, new_document_id
from .listing import (
    DEFAULT_PRODUCT_TYPE,
    Listing,
    price_of,
    quantity_of,
    render,
    title_of,
    with_price,
    with_quantity,
    with_title,
)
from .notifications import (
    DeliveryLog,
    Subscriber,
    deliver_in_background,
    mfn_quantity_change,
    new_order_id,
    new_order_item_id,
    order_change,
)
from .throttle import USAGE_PLANS, Throttle, rate_header
from .times import amazon_time

logger = logging.getLogger("channels.sandbox.amazon")

REQUEST_ID_HEADER = "x-amzn-RequestId"
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
MAX_DELIVERIES = 100
# Injected faults answered in SP-API's own words, so clients parse them as they would Amazon's.
FAULT_CODES = {
    400: ("InvalidInput", "Request has missing or invalid parameters and cannot be parsed."),
    401: ("Unauthorized", "Access to requested resource is denied."),
    403: ("Unauthorized", "Access to requested resource is denied."),
    404: ("NotFound", "The requested resource was not found."),
    429: ("QuotaExceeded", QUOTA_EXCEEDED),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
}

Handler = Callable[[], Response]


class AmazonStore(TypedConfig, Store):
    """One selling partner in one marketplace: listings, LWA tokens, usage plans and feeds.

    Settings (`POST /_sandbox/amazon/{store}/config`) are listed in `settings.py`; the
    defaults follow Amazon's documentation.
    """

    kind = "amazon"
    config_fields: ClassVar[frozenset[str]] = frozenset(settings.PARSERS)
    config_parsers = settings.PARSERS
    secret_config_fields: ClassVar[frozenset[str]] = settings.SECRET_FIELDS

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.listings: dict[str, Listing] = {}
        self.tokens = AccessTokens()
        self.throttle = Throttle()
        self.documents: dict[str, FeedDocument] = {}
        self.feeds: dict[str, Feed] = {}
        self.deliveries = DeliveryLog()
        self.orders = OrderBook(f"{self.kind}/{self.name}")
        self._last_feed_id = 50_000_000_000 + secrets.randbelow(10**9)
        self._subscription_id = str(uuid.uuid4())

    # --- settings ---------------------------------------------------------------------------

    def setting(self, name: str) -> Any:
        with self.lock:
            return settings.setting(self.config, name)

    def market(self) -> Marketplace:
        with self.lock:
            return self._market()

    def _market(self) -> Marketplace:
        return Marketplace(
            settings.setting(self.config, "seller_id"),
            settings.setting(self.config, "marketplace_id"),
            settings.currency_for(self.config),
        )

    # --- the real API -----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            response = self._route(request)
        except SpApiError as error:
            response = error.response()
        except LwaError as error:
            response = error.response()
        response.headers.setdefault(REQUEST_ID_HEADER, str(uuid.uuid4()))
        return response

    def fault_response(self, fault: InjectedFault, request: Request) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
        segments = self._segments(request)
        if segments[:3] == ["auth", "o2", "token"]:
            error = "server_error" if fault.status >= 500 else "invalid_request"
            return Response(fault.status, {"error": error, "error_description": "Injected by the sandbox"}, headers)
        if segments[:1] in (["_upload"], ["_download"]):
            code = {429: "SlowDown", 503: "SlowDown", 500: "InternalError"}.get(fault.status, "AccessDenied")
            return Response(fault.status, {"Code": code, "Message": "Injected by the sandbox"}, headers)
        code, message = FAULT_CODES.get(fault.status, ("InternalFailure", "Injected failure."))
        return Response(fault.status, error_list(code, message, "Injected by the sandbox"), headers)

    @staticmethod
    def _segments(request: Request) -> list[str]:
        # Split before decoding so an encoded slash stays inside its segment (a SKU "A/B").
        return [unquote(part) for part in request.subpath.split("/")[1:]] if request.subpath else []

    def _route(self, request: Request) -> Response:
        segments = self._segments(request)
        method = request.method
        match segments:
            case ["auth", "o2", "token"]:
                self._allow(request, "POST")
                return self._issue_token(request)
            case ["_upload", document_id]:
                return feeds_api.upload_document(self, request, document_id)
            case ["_download", document_id]:
                return feeds_api.download_document(self, request, document_id)
            case ["listings", "2021-08-01", "items", seller_id, sku] if sku:
                self._allow(request, "GET", "PATCH", "PUT", "DELETE")
                if method == "GET":
                    return self._call(
                        request, "getListingsItem", lambda: listings_api.get_listing(self, request, seller_id, sku)
                    )
                if method == "PATCH":
                    operation = listings_api.submission_operation(request, "patchListingsItem")
                    return self._call(
                        request, operation, lambda: listings_api.patch_listing(self, request, seller_id, sku)
                    )
                if method == "PUT":
                    operation = listings_api.submission_operation(request, "putListingsItem")
                    return self._call(
                        request, operation, lambda: listings_api.put_listing(self, request, seller_id, sku)
                    )
                return self._call(
                    request, "deleteListingsItem", lambda: listings_api.delete_listing(self, request, seller_id, sku)
                )
            case ["feeds", "2021-06-30", "documents"]:
                self._allow(request, "POST")
                return self._call(request, "createFeedDocument", lambda: feeds_api.create_feed_document(self, request))
            case ["feeds", "2021-06-30", "documents", document_id]:
                self._allow(request, "GET")
                return self._call(
                    request, "getFeedDocument", lambda: feeds_api.get_feed_document(self, request, document_id)
                )
            case ["feeds", "2021-06-30", "feeds"]:
                self._allow(request, "GET", "POST")
                if method == "POST":
                    return self._call(request, "createFeed", lambda: feeds_api.create_feed(self, request))
                return self._call(request, "getFeeds", lambda: feeds_api.get_feeds(self, request))
            case ["feeds", "2021-06-30", "feeds", feed_id]:
                self._allow(request, "GET", "DELETE")
                if method == "GET":
                    return self._call(request, "getFeed", lambda: feeds_api.get_feed(self, request, feed_id))
                return self._call(request, "cancelFeed", lambda: feeds_api.cancel_feed(self, request, feed_id))
        raise SpApiError(
            404,
            "NotFound",
            "The requested resource was not found.",
            f"No SP-API operation at {request.method} {request.path}",
        )

    @staticmethod
    def _allow(request: Request, *methods: str) -> None:
        if request.method not in methods:
            raise SpApiError(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed on this resource.",
                f"Allowed: {', '.join(methods)}",
                {"Allow": ", ".join(methods)},
            )

    def _call(self, request: Request, operation: str, handler: Handler) -> Response:
        """An SP-API operation: authorize, take a token from its bucket, then answer."""
        request.log["operation"] = operation
        plan = USAGE_PLANS[operation]
        with self.lock:
            self.tokens.check(request.header(ACCESS_TOKEN_HEADER), time.monotonic())
            rate = float(settings.setting(self.config, plan.rate_key))
            burst = float(settings.setting(self.config, plan.burst_key))
            admitted = self.throttle.admit(operation, rate, burst, time.monotonic())
        headers = {RATE_LIMIT_HEADER: rate_header(rate)}
        if not admitted:
            raise SpApiError(429, "QuotaExceeded", QUOTA_EXCEEDED, "", headers)
        try:
            response = handler()
        except SpApiError as error:
            error.headers = {**headers, **error.headers}
            raise
        response.headers.update(headers)
        return response

    def json_body(self, request: Request) -> Any:
        """The JSON body, fractions as Decimal so prices keep their digits; 415/400 otherwise."""
        media_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise SpApiError(
                415,
                "UnsupportedMediaType",
                "The request's Content-Type is not supported.",
                f"Use application/json, not {media_type or 'none'!r}.",
            )
        try:
            return json.loads(request.body.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise invalid_input(f"The body is not valid JSON: {error}.") from None

    # --- LWA --------------------------------------------------------------------------------

    def _issue_token(self, request: Request) -> Response:
        request.log["operation"] = "lwa.token"
        fields = token_request_fields(request)
        with self.lock:
            expected = Credentials(
                self.config.get("client_id"), self.config.get("client_secret"), self.config.get("refresh_token")
            )
            refresh_token = check_token_request(fields, expected)
            lifetime = float(settings.setting(self.config, "token_lifetime_s"))
            access_token = self.tokens.issue(lifetime, time.monotonic())
        return Response(
            200,
            token_answer(access_token, refresh_token, lifetime),
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # --- listings ---------------------------------------------------------------------------

    def write_listing(
        self, sku: str, product_type: str | None, change: Callable[[dict[str, Any]], dict[str, Any]], now: float
    ) -> None:
        """Apply an accepted submission to the listing (created if new); counts as a write."""
        with self.lock:
            quantities = self._change_listing(sku, product_type, change, now, counts_as_write=True)
        self._notify_quantity_changes([quantities])

    def delete_listing(self, sku: str) -> None:
        with self.lock:
            self.listings.pop(sku, None)
            self.items.pop(sku, None)

    def _change_listing(
        self,
        sku: str,
        product_type: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        now: float,
        *,
        counts_as_write: bool,
    ) -> tuple[str, int | None, int | None]:
        """Change a listing with the lock held; answers (sku, quantity before, quantity after)."""
        listing = self.listings.get(sku)
        if listing is None:
            listing = self.listings[sku] = Listing(sku, product_type or DEFAULT_PRODUCT_TYPE, {}, now, now)
        before = quantity_of(listing.attributes)
        listing.attributes = change(listing.attributes)
        if product_type:
            listing.product_type = product_type
        listing.updated_at = now
        item = self._sync_item(listing)
        if counts_as_write:
            item["writes"] += 1
        return sku, before, quantity_of(listing.attributes)

    def _sync_item(self, listing: Listing) -> dict[str, Any]:
        """Refresh the control view of a listing from its attributes. Call with the lock held."""
        market = self._market()
        item = self.item_for_update(listing.sku)
        item.update(
            price=price_of(listing.attributes, market),
            available=quantity_of(listing.attributes),
            title=title_of(listing.attributes),
            updated_at=iso(listing.updated_at),
            product_type=listing.product_type,
            asin=listing.asin,
            currency=market.currency,
            marketplace_id=market.marketplace_id,
        )
        return item

    def item_defaults(self) -> dict[str, Any]:
        return {"product_type": None, "asin": None, "currency": None, "marketplace_id": None}

    def item_field_parsers(self) -> dict[str, FieldParser]:
        return {**super().item_field_parsers(), "product_type": lambda value, field: text(value, field)}

    def put_item(self, sku: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merchant edits the listing in Seller Central: price, quantity, title, product type."""
        parsers = self.item_field_parsers()
        reject_unknown_fields(body, parsers)
        values = {name: parsers[name](value, name) for name, value in body.items()}
        with self.lock:
            market = self._market()

            def edit(attributes: dict[str, Any]) -> dict[str, Any]:
                if "price" in values:
                    attributes = with_price(attributes, values["price"], market)
                if "available" in values:
                    attributes = with_quantity(attributes, values["available"])
                if "title" in values:
                    attributes = with_title(attributes, values["title"], market)
                return attributes

            quantities = self._change_listing(sku, values.get("product_type"), edit, time.time(), counts_as_write=False)
            item = dict(self.items[sku])
        self._notify_quantity_changes([quantities])
        return item

    # --- feeds ------------------------------------------------------------------------------

    def next_feed_id(self) -> str:
        """Call with the lock held."""
        self._last_feed_id += 1
        return str(self._last_feed_id)

    def schedule_feed(self, feed_id: str) -> None:
        """IN_QUEUE for half the processing time, IN_PROGRESS for the other half, then done."""
        half = float(self.setting("feed_processing_ms")) / 2000.0
        self._later(half, lambda: self._start_feed(feed_id, half))

    @staticmethod
    def _later(delay_s: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay_s, action)
        timer.daemon = True  # a pending feed must not keep the sandbox from exiting
        timer.start()

    def _start_feed(self, feed_id: str, remaining_s: float) -> None:
        with self.lock:
            feed = self.feeds.get(feed_id)
            if feed is None or feed.status != "IN_QUEUE":  # cancelled meanwhile
                return
            feed.status = "IN_PROGRESS"
            feed.started_time = amazon_time(time.time())
        self._later(remaining_s, lambda: self._finish_feed(feed_id))

    def _finish_feed(self, feed_id: str) -> None:
        try:
            self._process_feed(feed_id)
        except Exception:  # a bug here must end the feed, not leave it IN_PROGRESS forever
            logger.exception("sandbox amazon/%s: processing feed %s failed", self.name, feed_id)
            with self.lock:
                feed = self.feeds.get(feed_id)
                if feed is not None:
                    feed.status, feed.ended_time = "FATAL", amazon_time(time.time())

    def _process_feed(self, feed_id: str) -> None:
        with self.lock:
            feed = self.feeds[feed_id]
            market = self._market()
            document = self.documents.get(feed.input_document_id)
            snapshot = (
                None
                if document is None
                else FeedDocument(document.document_id, document.content_type, document.content)
            )
        # Checking a big feed takes a while: done without the lock, so the API stays responsive.
        checked = check_feed(snapshot, seller_id=market.seller_id, market=market, marketplace_ids=feed.marketplace_ids)
        now = time.time()
        with self.lock:
            quantities = [self._apply_message(plan, now) for plan in checked.plans] if not checked.fatal else []
            items = None
            if checked.included_data and not checked.fatal:
                included = set(checked.included_data)
                skus = dict.fromkeys(plan.sku for plan in checked.plans)
                items = [render(self.listings[sku], market, included) for sku in skus if sku in self.listings]
            report = build_report(checked, seller_id=market.seller_id, feed_id=feed_id, items=items)
            result = FeedDocument(new_document_id(), "application/json", report=report)
            self.documents[result.document_id] = result
            feed.status = "FATAL" if checked.fatal else "DONE"
            feed.ended_time = amazon_time(time.time())
            feed.result_document_id = result.document_id
        self._notify_quantity_changes(quantities)

    def _apply_message(self, plan: MessagePlan, now: float) -> tuple[str, int | None, int | None]:
        """One accepted feed message, with the lock held."""
        if plan.operation_type == "DELETE":
            before = quantity_of(self.listings[plan.sku].attributes) if plan.sku in self.listings else None
            self.listings.pop(plan.sku, None)
            self.items.pop(plan.sku, None)
            return plan.sku, before, None
        if plan.operation_type == "PATCH":
            operations: list[PatchOperation] = list(plan.operations)
            change: Callable[[dict[str, Any]], dict[str, Any]] = lambda attributes: apply_operations(
                attributes, operations
            )  # noqa: E731
        elif plan.operation_type == "PARTIAL_UPDATE":
            change = lambda attributes: partial_update(attributes, plan.attributes or {})  # noqa: E731
        else:
            change = lambda _attributes: dict(plan.attributes or {})  # noqa: E731
        return self._change_listing(plan.sku, plan.product_type, change, now, counts_as_write=True)

    # --- notifications and sales ------------------------------------------------------------

    def _subscriber(self) -> Subscriber:
        market = self._market()
        return Subscriber(
            market.seller_id,
            market.marketplace_id,
            settings.setting(self.config, "application_id"),
            self._subscription_id,
        )

    def _quantity_notifications(
        self, changes: list[tuple[str, int | None, int | None]]
    ) -> list[tuple[dict[str, Any], int]]:
        """LISTINGS_ITEM_MFN_QUANTITY_CHANGE for each changed quantity, when subscribed.

        Amazon sends it for every change of a merchant-fulfilled quantity, whoever made it
        (a sale, Seller Central, this API), so a subscriber also hears its own writes echoed.
        Call with the lock held.
        """
        if not self.config.get("webhook_url") or not settings.setting(self.config, "send_quantity_notifications"):
            return []
        subscriber, now = self._subscriber(), time.time()
        return [
            (mfn_quantity_change(subscriber, sku=sku, quantity=after, now=now), 1)
            for sku, before, after in changes
            if after is not None and after != before
        ]

    def _notify_quantity_changes(self, changes: list[tuple[str, int | None, int | None]]) -> None:
        with self.lock:
            notifications = self._quantity_notifications(changes)
            url, secret = self.config.get("webhook_url"), self.config.get("webhook_secret")
        if notifications and url:
            deliver_in_background(url=url, secret=secret, notifications=notifications, record=self._record_delivery)

    def _record_delivery(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.deliveries.add(entry)

    def record_sale(self, body: dict[str, Any]) -> Response:
        """A buyer orders `quantity` of `sku`: stock goes down and ORDER_CHANGE is delivered."""
        reject_unknown_fields(body, ("sku", "quantity", "order_id", "deliveries"))
        sku = text(body.get("sku"), "sku")
        if not sku:
            raise HttpError(400, "sku must be a non-empty string")
        quantity = integer(body.get("quantity"), "quantity", minimum=1)
        order_id = text(body["order_id"], "order_id") if body.get("order_id") is not None else new_order_id()
        deliveries = integer(body.get("deliveries", 1), "deliveries", minimum=1)
        if deliveries > MAX_DELIVERIES:
            raise HttpError(400, f"deliveries must be at most {MAX_DELIVERIES}, got {deliveries}")
        now = time.time()
        with self.lock:
            url = self._notification_url()
            listing = self.listings.get(sku)
            available = quantity_of(listing.attributes) if listing is not None else None
            if listing is None or available is None or available < quantity:
                raise HttpError(409, f"not enough stock of {sku!r} to sell {quantity}: the store has {available}")
            quantities = self._change_listing(
                sku,
                None,
                lambda attributes: with_quantity(attributes, available - quantity),
                now,
                counts_as_write=False,
            )
            secret = self.config.get("webhook_secret")
            item_id = new_order_item_id()
            order = order_change(
                self._subscriber(), order_id=str(order_id), sku=sku, quantity=quantity, now=now, order_item_id=item_id
            )
            self.orders.add(
                Order(str(order_id), [OrderLine(item_id, sku, quantity)], paid=True, created_at=now, updated_at=now)
            )
            # One thread delivers both, so the order change always arrives before the quantity.
            notifications = [(order, deliveries), *self._quantity_notifications([quantities])]
        deliver_in_background(url=url, secret=secret, notifications=notifications, record=self._record_delivery)
        return Response(
            200,
            {
                "order_id": order_id,
                "sku": sku,
                "quantity": quantity,
                "available": available - quantity,
                "notification_id": order["NotificationMetadata"]["NotificationId"],
                "deliveries": deliveries,
            },
        )

    # --- the order life cycle ----------------------------------------------------------------

    def order_view(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            return self.orders.get(order_id).view()

    def cancel_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The order is cancelled (by the buyer or the seller, before it ships): its quantity
        goes back on the listing and ORDER_CHANGE says `Canceled`."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        with self.lock:
            url = self._notification_url()
            order = self.orders.get(order_id)
            order.check_can_cancel()
            now = time.time()
            changes = []
            for line in order.lines:
                listing = self.listings.get(line.sku)
                available = quantity_of(listing.attributes) if listing is not None else None
                if available is not None:
                    changes.append(
                        self._change_listing(
                            line.sku,
                            None,
                            lambda attributes, after=available + line.quantity: with_quantity(attributes, after),
                            now,
                            counts_as_write=False,
                        )
                    )
            order.cancelled, order.updated_at = True, now
            return self._order_changed(order, "Canceled", deliveries, now, url, changes)

    def refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        raise HttpError(
            400,
            "amazon has no refund to send: an ORDER_CHANGE notification carries order and item "
            "statuses only; SP-API reports refunds in the Finances API (RefundEventList) and returns "
            "in reports, which the sandbox does not emulate. Cancel an unshipped order instead.",
        )

    def pay_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """Nothing to pay: a sale here reaches `Unshipped` (paid) at once."""
        refuse_payment(
            self.lock,
            self.orders,
            order_id,
            body,
            maximum_deliveries=MAX_DELIVERIES,
            why="an Amazon sale here is Unshipped (paid) at once",
        )

    def fulfill_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The seller ships the order: ORDER_CHANGE says `Shipped` (the stock left at the sale)."""
        deliveries = deliveries_of(body, MAX_DELIVERIES)
        with self.lock:
            url = self._notification_url()
            order = self.orders.get(order_id)
            order.check_can_fulfill()
            now = time.time()
            order.fulfilled, order.updated_at = True, now
            return self._order_changed(order, "Shipped", deliveries, now, url, [])

    def _notification_url(self) -> str:
        url = self.config.get("webhook_url")
        if not url:
            raise HttpError(
                409,
                f'no webhook_url configured: POST /_sandbox/amazon/{self.name}/config {{"webhook_url": ...}} first',
            )
        return str(url)

    def _order_changed(
        self,
        order: Order,
        status: str,
        deliveries: int,
        now: float,
        url: str,
        changes: list[tuple[str, int | None, int | None]],
    ) -> Response:
        """Send the ORDER_CHANGE (then any quantity change) from one thread. Call with `lock` held."""
        [line] = order.lines
        notification = order_change(
            self._subscriber(),
            order_id=order.order_id,
            sku=line.sku,
            quantity=line.quantity,
            now=now,
            order_item_id=line.line_id,
            status=status,
            purchased_at=order.created_at,
        )
        notifications = [(notification, deliveries), *self._quantity_notifications(changes)]
        deliver_in_background(
            url=url, secret=self.config.get("webhook_secret"), notifications=notifications, record=self._record_delivery
        )
        return Response(
            200,
            {
                "order": order.view(),
                "notification_id": notification["NotificationMetadata"]["NotificationId"],
                "deliveries": deliveries,
            },
        )

    # --- control extras ---------------------------------------------------------------------

    def control_resource(self, request: Request, resource: str) -> Response | None:
        views: dict[str, Callable[[], Any]] = {
            "stats": self.throttle.view,
            "deliveries": lambda: {"deliveries": self.deliveries.view()},
            "feeds": lambda: {"feeds": [feed.view() for feed in self.feeds.values()]},
        }
        view = views.get(resource)
        if view is None:
            return None
        if request.method != "GET":
            raise HttpError(405, f"{request.method} not allowed on {request.path}", headers={"Allow": "GET"})
        with self.lock:
            return Response(200, view())
