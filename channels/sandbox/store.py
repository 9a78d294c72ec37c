"""The emulated store every channel kind builds on: items, request log, faults and config.

A kind subclasses `Store`, sets `kind`, and overrides `handle` (its real API) plus whichever
hooks differ (`describe`, `item_defaults`, `item_field_parsers`, `config_fields`,
`record_sale` and the order life cycle: `order_view`, `cancel_order`, `refund_order`,
`pay_order`, `fulfill_order`). Everything in the control API is generic and lives here.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .clock import iso
from .faults import Faults, InjectedFault
from .messages import HttpError, Request, Response
from .request_log import RequestLog
from .validation import decimal_text, integer, reject_unknown_fields, text

FieldParser = Callable[[Any, str], Any]


class Store:
    """One emulated shop of one kind, created on first use and kept in memory.

    `lock` guards all state. Kinds hold it only while reading or changing state, never while
    sleeping or doing I/O, so one slow request does not stall the store's other clients.
    """

    kind: ClassVar[str] = ""
    config_fields: ClassVar[frozenset[str]] = frozenset({"webhook_url", "webhook_secret", "plan", "secret"})
    # Echoed as "***" when set: the control API should not become a way to read credentials.
    secret_config_fields: ClassVar[frozenset[str]] = frozenset({"webhook_secret", "secret"})
    request_log_limit: ClassVar[int] = 10_000

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {}
        self.config: dict[str, Any] = {}
        self.faults = Faults()
        self.request_log = RequestLog(self.request_log_limit)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}/{self.name}>"

    # --- the real API -----------------------------------------------------------------------

    def serve(self, request: Request) -> Response:
        """Answer one real-API request: injected latency, then an injected fault or `handle`."""
        with self.lock:
            latency_s = self.faults.latency_s
        if latency_s:
            time.sleep(latency_s)  # the one deliberate wait: a merchant asked for a slow store
        with self.lock:
            fault = self.faults.take(time.monotonic())
        if fault is not None:
            self.describe(request)
            response = self.fault_response(fault, request)
        else:
            try:
                response = self.handle(request)
            except HttpError as error:
                response = error.response()
        with self.lock:
            self.request_log.record(request, response, time.time())
        return response

    def handle(self, request: Request) -> Response:
        """The kind's real API. `request.subpath` is the path after `/{kind}/{store}`."""
        raise HttpError(404, f"no route {request.method} {request.path}")

    def describe(self, request: Request) -> None:
        """Fill `request.log` for a request answered by a fault (so `handle` did not run)."""

    def fault_response(self, fault: InjectedFault, request: Request) -> Response:
        """An injected fault as this kind's real API would say it (kinds override the body shape)."""
        return fault.response()

    # --- items ------------------------------------------------------------------------------

    def item_defaults(self) -> dict[str, Any]:
        """Fields a kind keeps per item beyond the common ones, with their empty values."""
        return {}

    def item_field_parsers(self) -> dict[str, FieldParser]:
        """Fields a merchant may set with `PUT items/{sku}`, each with its check."""
        return {
            "price": lambda value, field: decimal_text(value, field, nullable=True, allow_number=True),
            "available": lambda value, field: None if value is None else integer(value, field),
            "title": lambda value, field: text(value, field, nullable=True),
        }

    def item_for_update(self, sku: str) -> dict[str, Any]:
        """The item to change, created empty if new. Call with `lock` held."""
        item = self.items.get(sku)
        if item is None:
            item = {
                "sku": sku,
                "price": None,
                "available": None,
                "title": None,
                "updated_at": None,
                "writes": 0,
                **self.item_defaults(),
            }
            self.items[sku] = item
        return item

    def item_view(self, sku: str) -> dict[str, Any]:
        with self.lock:
            item = self.items.get(sku)
            if item is None:
                raise HttpError(404, f"no item {sku!r} in {self.kind}/{self.name}")
            return dict(item)

    def items_view(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(item) for item in self.items.values()]

    def put_item(self, sku: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merchant edits the item in the channel's own admin: the fields given are
        overwritten, the others kept. Not a write by syncsvc, so `writes` does not move."""
        parsers = self.item_field_parsers()
        reject_unknown_fields(body, parsers)
        values = {name: parsers[name](value, name) for name, value in body.items()}
        with self.lock:
            item = self.item_for_update(sku)
            item.update(values)
            item["updated_at"] = iso(time.time())
            return dict(item)

    # --- control ----------------------------------------------------------------------------

    def requests_view(self, since: float | None) -> list[dict[str, Any]]:
        with self.lock:
            return self.request_log.since(since)

    def faults_view(self) -> dict[str, Any]:
        with self.lock:
            return self.faults.view(time.monotonic())

    def set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = time.monotonic()
            self.faults.configure(body, now)
            return self.faults.view(now)

    def config_view(self) -> dict[str, Any]:
        with self.lock:
            return {
                name: "***" if name in self.secret_config_fields and value is not None else value
                for name, value in self.config.items()
            }

    def set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Merge the given settings (null removes one) and answer the whole config."""
        reject_unknown_fields(body, self.config_fields)
        for name, value in body.items():
            text(value, name, nullable=True)
        with self.lock:
            for name, value in body.items():
                if value is None:
                    self.config.pop(name, None)
                else:
                    self.config[name] = value
        return self.config_view()

    def config_value(self, name: str) -> Any:
        with self.lock:
            return self.config.get(name)

    def record_sale(self, body: dict[str, Any]) -> Response:
        """A customer buys on this store (kinds that sell override this)."""
        raise HttpError(400, f"the {self.kind} kind does not sell")

    def order_view(self, order_id: str) -> dict[str, Any]:
        """The order as the store holds it (kinds that sell override the order hooks)."""
        raise HttpError(400, f"the {self.kind} kind does not sell, so it holds no orders")

    def cancel_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The store cancels the order: its stock comes back and it says so as the channel does."""
        raise HttpError(400, f"the {self.kind} kind does not sell, so it holds no orders")

    def refund_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The store refunds units of the order, putting them back on its shelf when `restock`."""
        raise HttpError(400, f"the {self.kind} kind does not sell, so it holds no orders")

    def pay_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The order's payment is captured (for kinds whose sales start unpaid)."""
        raise HttpError(400, f"the {self.kind} kind does not sell, so it holds no orders")

    def fulfill_order(self, order_id: str, body: dict[str, Any]) -> Response:
        """The order ships."""
        raise HttpError(400, f"the {self.kind} kind does not sell, so it holds no orders")

    def control_resource(self, request: Request, resource: str) -> Response | None:
        """A kind's own control view `/_sandbox/{kind}/{store}/{resource}`; None when it has none."""
        return None
