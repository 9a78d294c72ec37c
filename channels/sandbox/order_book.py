"""The orders a store holds after its `sales` control, and what every kind's life-cycle
controls check the same way:

    GET  /_sandbox/{kind}/{store}/orders/{order_id}           the order as the store holds it
    POST /_sandbox/{kind}/{store}/orders/{order_id}/cancel    {"deliveries"?}
    POST /_sandbox/{kind}/{store}/orders/{order_id}/refund    {"lines"?: [{"sku", "quantity"}],
                                                               "restock": bool, "deliveries"?}
    POST /_sandbox/{kind}/{store}/orders/{order_id}/pay       {"deliveries"?}
    POST /_sandbox/{kind}/{store}/orders/{order_id}/fulfill   {"deliveries"?}

Each kind keeps its own channel-shaped resource and sends its own webhook; this module only
holds the units (ordered, refunded, put back on the shelf) and the refusals: 404 for an
unknown order, 409 for a change the order's state does not allow (cancelling twice,
refunding more than was sold), 400 naming the field for bad input.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .clock import iso
from .messages import HttpError
from .validation import integer, reject_unknown_fields

ACTIONS = ("cancel", "refund", "pay", "fulfill")


@dataclass
class OrderLine:
    line_id: str
    sku: str
    quantity: int
    refunded: int = 0
    restocked: int = 0  # units a refund put back on the store's shelf

    @property
    def refundable(self) -> int:
        return self.quantity - self.refunded


@dataclass
class Order:
    """One order's life cycle as the store sees it. Not locked itself: the store's lock guards it."""

    order_id: str
    lines: list[OrderLine]
    paid: bool
    created_at: float
    updated_at: float
    fulfilled: bool = False
    cancelled: bool = False
    refunds: list[dict[str, Any]] = field(default_factory=list)
    # The kind's own record of the order (its sale, its REST resource), which it builds its
    # webhooks and API answers from.
    resource: Any = None

    @property
    def state(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.fulfilled:
            return "fulfilled"
        return "paid" if self.paid else "open"

    @property
    def fully_refunded(self) -> bool:
        return all(line.refundable == 0 for line in self.lines)

    def view(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "state": self.state,
            "paid": self.paid,
            "fulfilled": self.fulfilled,
            "cancelled": self.cancelled,
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "refunded": line.refunded,
                    "restocked": line.restocked,
                }
                for line in self.lines
            ],
            "refunds": [dict(refund) for refund in self.refunds],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def check_can_cancel(self) -> None:
        if self.cancelled:
            raise HttpError(409, f"order {self.order_id} is already cancelled")
        if self.fulfilled:
            raise HttpError(409, f"order {self.order_id} is fulfilled and can no longer be cancelled: refund it")

    def check_can_pay(self) -> None:
        if self.cancelled:
            raise HttpError(409, f"order {self.order_id} is cancelled")
        if self.paid:
            raise HttpError(409, f"order {self.order_id} is already paid")

    def check_can_fulfill(self) -> None:
        if self.cancelled:
            raise HttpError(409, f"order {self.order_id} is cancelled")
        if self.fulfilled:
            raise HttpError(409, f"order {self.order_id} is already fulfilled")

    def apply_refund(self, refund: Refund, *, refund_id: str, at: float) -> None:
        for line, quantity in refund.lines:
            line.refunded += quantity
            if refund.restock:
                line.restocked += quantity
        self.refunds.append(
            {
                "id": refund_id,
                "lines": [{"sku": line.sku, "quantity": quantity} for line, quantity in refund.lines],
                "restock": refund.restock,
                "at": iso(at),
            }
        )
        self.updated_at = at


@dataclass(frozen=True)
class Refund:
    """A checked refund request: which lines, how many units of each, back on the shelf or not."""

    lines: list[tuple[OrderLine, int]]
    restock: bool
    deliveries: int


class OrderBook:
    """A store's orders by id (as text: the path names them so). `where` names the store in a 404."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._orders: dict[str, Order] = {}

    def add(self, order: Order) -> None:
        self._orders[order.order_id] = order

    def get(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise HttpError(404, f"no order {order_id!r} in {self._where}")
        return order


def refuse_payment(
    lock: threading.Lock, book: OrderBook, order_id: str, body: dict[str, Any], *, maximum_deliveries: int, why: str
) -> NoReturn:
    """`pay` for a kind whose sales are paid at once: the body is checked as for any change, then
    409 with the order's state (404 for an unknown order) and `why`."""
    deliveries_of(body, maximum_deliveries)
    with lock:
        state = book.get(order_id).state
    raise HttpError(409, f"order {order_id} is {state}: {why}")


def deliveries_of(body: dict[str, Any], maximum: int) -> int:
    """`deliveries` (default 1) of a cancel, pay or fulfill body, which takes nothing else."""
    reject_unknown_fields(body, ("deliveries",))
    return _deliveries(body, maximum)


def _deliveries(body: dict[str, Any], maximum: int) -> int:
    deliveries = integer(body.get("deliveries", 1), "deliveries", minimum=1)
    if deliveries > maximum:
        raise HttpError(400, f"deliveries must be at most {maximum}, got {deliveries}")
    return deliveries


def refund_of(body: dict[str, Any], order: Order, maximum_deliveries: int) -> Refund:
    """Check a refund body against the order: without `lines`, everything not refunded yet."""
    reject_unknown_fields(body, ("lines", "restock", "deliveries"))
    deliveries = _deliveries(body, maximum_deliveries)
    if "restock" not in body:
        raise HttpError(400, "restock is missing (true puts the units back on the store's shelf)")
    restock = body["restock"]
    if not isinstance(restock, bool):
        raise HttpError(400, f"restock must be true or false, got {restock!r}")
    if order.cancelled:
        raise HttpError(409, f"order {order.order_id} is cancelled: there is nothing left to refund")
    raw_lines = body.get("lines")
    wanted: dict[str, int] = {}
    if raw_lines is None:
        wanted = {line.sku: line.refundable for line in order.lines if line.refundable}
    else:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise HttpError(400, f"lines must be a non-empty list of {{\"sku\", \"quantity\"}}, got {raw_lines!r}")
        for index, raw in enumerate(raw_lines):
            where = f"lines[{index}]"
            if not isinstance(raw, dict):
                raise HttpError(400, f"{where} must be an object with sku and quantity, got {raw!r}")
            reject_unknown_fields(raw, ("sku", "quantity"), where)
            sku = raw.get("sku")
            if not isinstance(sku, str) or not sku:
                raise HttpError(400, f"{where}.sku must be a non-empty string, got {sku!r}")
            if not any(line.sku == sku for line in order.lines):
                raise HttpError(400, f"{where}.sku: order {order.order_id} has no line for {sku!r}")
            wanted[sku] = wanted.get(sku, 0) + integer(raw.get("quantity"), f"{where}.quantity", minimum=1)
    if not wanted:
        raise HttpError(409, f"order {order.order_id} is refunded in full already")
    lines: list[tuple[OrderLine, int]] = []
    for sku, quantity in wanted.items():
        line = next(line for line in order.lines if line.sku == sku)
        if quantity > line.refundable:
            raise HttpError(
                409,
                f"cannot refund {quantity} of {sku!r} in order {order.order_id}: "
                f"{line.quantity} sold, {line.refunded} refunded already",
            )
        lines.append((line, quantity))
    return Refund(lines, restock, deliveries)
