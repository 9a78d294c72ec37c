"""The stores' order life-cycle controls (`orders/{id}/cancel | refund | pay | fulfill`), over
real HTTP against a sandbox subprocess: each store changes its own stock and sends the
channel's real, signed webhook, shaped like the reference samples."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jsonschema
import pytest
import requests

from tests.support.receiver import WebhookReceiver
from tests.support.reference import reference_file
from tests.support.sandbox import (
    SandboxControl,
    SandboxControlError,
    SandboxProcess,
    wait_until,
)

SECRET = "lifecycle-secret"
SIGNATURE_HEADERS = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature",
                     "amazon": "X-Sandbox-Signature"}
SELLING_KINDS = ("shopify", "woocommerce", "amazon", "magento")


def _sample(name: str, wrapper: str | None = None) -> dict[str, Any]:
    data = json.loads(reference_file(f"samples/{name}").read_text())
    return data[wrapper] if wrapper else data


@pytest.fixture
def store() -> str:
    return f"life-{uuid.uuid4().hex[:8]}"


def _sold(control: SandboxControl, kind: str, store: str, receiver: WebhookReceiver, *, available: int = 5,
          quantity: int = 3) -> str:
    """A store holding `available` of SKU L-1 that sold `quantity`; the sale's webhook taken."""
    control.config(kind, store, webhook_url=receiver.url, webhook_secret=SECRET)
    control.put_item(kind, store, "L-1", price="10.00", available=available, title="L-1")
    sale = control.sales(kind, store, sku="L-1", quantity=quantity)
    if kind != "magento":
        receiver.next()
    order_id = sale["order"]["increment_id"] if kind == "magento" else sale.get("order_id") or sale["order"]["id"]
    return str(order_id)


def _signed(kind: str, headers: dict[str, str], body: bytes) -> bool:
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(headers[SIGNATURE_HEADERS[kind].lower()], expected)


def _available(control: SandboxControl, kind: str, store: str) -> int:
    return control.item(kind, store, "L-1")["available"]


def _refused(call) -> tuple[int, str]:
    with pytest.raises(SandboxControlError) as refused:
        call()
    return refused.value.status, json.loads(refused.value.body)["error"]


# --- Shopify ------------------------------------------------------------------------------------


def test_shopify_cancel_puts_the_units_back_and_sends_a_signed_orders_cancelled(control, store, receiver):
    # given
    order_id = _sold(control, "shopify", store, receiver)

    # when
    answer = control.order_action("shopify", store, order_id, "cancel", deliveries=2)

    # then: the shop's own stock is back, the order is cancelled
    assert _available(control, "shopify", store) == 5
    assert answer["order"]["state"] == "cancelled"
    assert control.order("shopify", store, order_id)["state"] == "cancelled"
    # then: orders/cancelled, delivered twice as one event, signed, shaped like Shopify's example
    (first_headers, body), (second_headers, again) = receiver.next(), receiver.next()
    assert first_headers["x-shopify-topic"] == "orders/cancelled" and _signed("shopify", first_headers, body)
    assert body == again and first_headers["x-shopify-event-id"] == second_headers["x-shopify-event-id"]
    order, sample = json.loads(body), _sample("shopify-orders-cancelled.rest-example.json", "order")
    assert set(sample) <= set(order)
    assert set(sample["line_items"][0]) <= set(order["line_items"][0])
    assert str(order["id"]) == order_id and order["cancelled_at"] and order["cancel_reason"] == "customer"
    assert order["financial_status"] == "refunded"


def test_shopify_refund_sends_refunds_create_with_the_restock_type_the_admin_api_defines(control, store, receiver):
    # given: 3 sold
    order_id = _sold(control, "shopify", store, receiver)

    # when: one unit refunded and restocked, one refunded and kept off the shelf, then the
    # rest ships and one more comes back
    # (each webhook taken before the next change: separate events may arrive in any order)
    bodies = []
    control.order_action("shopify", store, order_id, "refund", lines=[{"sku": "L-1", "quantity": 1}], restock=True)
    after_restock = _available(control, "shopify", store)
    bodies.append(receiver.next())
    control.order_action("shopify", store, order_id, "refund", lines=[{"sku": "L-1", "quantity": 1}], restock=False)
    after_no_restock = _available(control, "shopify", store)
    bodies.append(receiver.next())
    control.order_action("shopify", store, order_id, "fulfill")
    bodies.append(receiver.next())
    control.order_action("shopify", store, order_id, "refund", restock=True)  # no lines: all that is left
    bodies.append(receiver.next())

    # then: unfulfilled units restocked are `cancel`, kept are `no_restock`, fulfilled ones `return`
    topics = [headers["x-shopify-topic"] for headers, _ in bodies]
    assert topics == ["refunds/create", "refunds/create", "orders/fulfilled", "refunds/create"]
    assert all(_signed("shopify", headers, body) for headers, body in bodies)
    refunds = [json.loads(body) for headers, body in bodies if headers["x-shopify-topic"] == "refunds/create"]
    sample = _sample("shopify-refunds-create.rest-example.json", "refund")
    for refund in refunds:
        assert set(sample) <= set(refund)
        assert set(sample["refund_line_items"][0]) <= set(refund["refund_line_items"][0])
        assert str(refund["order_id"]) == order_id
    assert [(r["refund_line_items"][0]["restock_type"], r["refund_line_items"][0]["quantity"]) for r in refunds] == [
        ("cancel", 1), ("no_restock", 1), ("return", 1)]
    assert {r["refund_line_items"][0]["line_item"]["sku"] for r in refunds} == {"L-1"}
    # then: the shop's stock went up only for the restocked units
    assert (after_restock, after_no_restock, _available(control, "shopify", store)) == (3, 3, 4)
    fulfilled = json.loads(bodies[2][1])
    assert fulfilled["fulfillment_status"] == "fulfilled" and fulfilled["line_items"][0]["fulfillment_status"] == "fulfilled"
    held = control.order("shopify", store, order_id)
    assert held["state"] == "fulfilled"
    assert held["lines"] == [{"line_id": held["lines"][0]["line_id"], "sku": "L-1", "quantity": 3, "refunded": 3,
                              "restocked": 2}]


# --- WooCommerce --------------------------------------------------------------------------------


def test_woocommerce_refund_then_cancel_send_signed_order_updated_as_the_rest_api_shows_the_order(
    control, store, receiver
):
    # given
    order_id = _sold(control, "woocommerce", store, receiver)

    # when
    control.order_action("woocommerce", store, order_id, "refund", lines=[{"sku": "L-1", "quantity": 1}], restock=True)
    refunded_stock = _available(control, "woocommerce", store)
    refund_headers, refund_body = receiver.next()  # before the next change: events may cross
    control.order_action("woocommerce", store, order_id, "cancel")
    cancel_headers, cancel_body = receiver.next()

    # then: order.updated twice, signed, the order resource like the docs example
    sample = _sample("woocommerce-order-updated.json")
    for headers, body in ((refund_headers, refund_body), (cancel_headers, cancel_body)):
        assert headers["x-wc-webhook-topic"] == "order.updated" and _signed("woocommerce", headers, body)
        assert set(sample) <= set(json.loads(body))
    refunded, cancelled = json.loads(refund_body), json.loads(cancel_body)
    # Refunds as the v3 docs list them on an order: id, reason, total (negative).
    [refund] = refunded["refunds"]
    assert set(refund) == {"id", "reason", "total"} and refund["total"] == "-10.00"
    assert refunded["status"] == "processing"  # a partial refund leaves the status
    assert cancelled["status"] == "cancelled" and cancelled["date_modified_gmt"] >= refunded["date_modified_gmt"]
    # then: the restocked unit came back with the refund, the other two with the cancel
    assert (refunded_stock, _available(control, "woocommerce", store)) == (3, 5)


def test_woocommerce_refund_of_everything_turns_the_order_refunded_and_without_restock_keeps_the_stock(
    control, store, receiver
):
    # given
    order_id = _sold(control, "woocommerce", store, receiver)

    # when
    answer = control.order_action("woocommerce", store, order_id, "refund", restock=False)

    # then
    _, body = receiver.next()
    assert json.loads(body)["status"] == "refunded" and answer["order"]["status"] == "refunded"
    assert _available(control, "woocommerce", store) == 2


# --- Amazon -------------------------------------------------------------------------------------


def test_amazon_cancel_sends_order_change_canceled_for_the_same_item_and_puts_the_quantity_back(
    control, store, receiver
):
    # given: the sale's ORDER_CHANGE (taken by _sold) named the order item
    control.config("amazon", store, webhook_url=receiver.url, webhook_secret=SECRET)
    control.put_item("amazon", store, "L-1", price="10.00", available=5, title="L-1")
    sale = control.sales("amazon", store, sku="L-1", quantity=3)
    _, sold_body = receiver.next()
    sold_item = json.loads(sold_body)["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"][0]

    # when
    control.order_action("amazon", store, sale["order_id"], "cancel")

    # then
    headers, body = receiver.next()
    notification = json.loads(body)
    assert _signed("amazon", headers, body)
    jsonschema.validate(notification, json.loads(reference_file("samples/amazon-order-change.schema.json").read_text()))
    change = notification["Payload"]["OrderChangeNotification"]
    assert (change["AmazonOrderId"], change["OrderChangeType"]) == (sale["order_id"], "OrderStatusChange")
    assert change["Summary"]["OrderStatus"] == "Canceled"
    [item] = change["Summary"]["OrderItems"]
    assert (item["OrderItemId"], item["SellerSKU"], item["Quantity"]) == (sold_item["OrderItemId"], "L-1", 3)
    assert _available(control, "amazon", store) == 5


def test_amazon_fulfill_sends_shipped_and_a_refund_is_refused_naming_why(control, store, receiver):
    # given
    order_id = _sold(control, "amazon", store, receiver)

    # when
    control.order_action("amazon", store, order_id, "fulfill")
    status, error = _refused(lambda: control.order_action("amazon", store, order_id, "refund", restock=True))

    # then
    _, body = receiver.next()
    notification = json.loads(body)
    jsonschema.validate(notification, json.loads(reference_file("samples/amazon-order-change.schema.json").read_text()))
    summary = notification["Payload"]["OrderChangeNotification"]["Summary"]
    assert summary["OrderStatus"] == "Shipped" and summary["OrderItems"][0]["QuantityShipped"] == 3
    assert status == 400 and "ORDER_CHANGE" in error and "refund" in error
    assert _available(control, "amazon", store) == 2


# --- Magento ------------------------------------------------------------------------------------


def _polled(sandbox: SandboxProcess, store: str, order_id: str) -> dict[str, Any]:
    answer = requests.get(f"{sandbox.url}/magento/{store}/rest/V1/orders",
                          params={"searchCriteria[filter_groups][0][filters][0][field]": "increment_id",
                                  "searchCriteria[filter_groups][0][filters][0][value]": order_id},
                          headers={"Authorization": "Bearer life-token"}, timeout=10)
    answer.raise_for_status()
    [order] = answer.json()["items"]
    return order


def test_magento_cancel_shows_canceled_on_the_polled_order_with_a_newer_updated_at(sandbox, control, store, receiver):
    # given
    control.config("magento", store, integration_token="life-token")
    order_id = _sold(control, "magento", store, receiver)
    before = _polled(sandbox, store, order_id)

    # when
    control.order_action("magento", store, order_id, "cancel")

    # then
    after = _polled(sandbox, store, order_id)
    assert (before["state"], after["state"], after["status"]) == ("new", "canceled", "canceled")
    assert after["updated_at"] > before["updated_at"]
    assert after["items"][0]["qty_canceled"] == 3
    assert set(before) <= set(after)  # the same resource, now with its cancelled totals
    assert _available(control, "magento", store) == 5
    assert receiver.nothing_unread()  # Magento sends no webhook


def test_magento_pay_then_refund_closes_the_order_and_an_invoiced_order_cannot_be_cancelled(
    sandbox, control, store, receiver
):
    # given
    control.config("magento", store, integration_token="life-token")
    order_id = _sold(control, "magento", store, receiver)

    # when
    control.order_action("magento", store, order_id, "pay")
    paid = _polled(sandbox, store, order_id)
    status, error = _refused(lambda: control.order_action("magento", store, order_id, "cancel"))
    control.order_action("magento", store, order_id, "refund", lines=[{"sku": "L-1", "quantity": 2}], restock=True)
    partly = _polled(sandbox, store, order_id)
    control.order_action("magento", store, order_id, "refund", restock=False)
    closed = _polled(sandbox, store, order_id)

    # then
    assert (paid["state"], paid["items"][0]["qty_invoiced"]) == ("processing", 3)
    assert status == 409 and "invoiced" in error
    assert (partly["state"], partly["items"][0]["qty_refunded"]) == ("processing", 2)
    assert (closed["state"], closed["status"], closed["items"][0]["qty_refunded"]) == ("closed", "closed", 3)
    assert paid["updated_at"] < partly["updated_at"] < closed["updated_at"]
    assert _available(control, "magento", store) == 4  # only the two returned to stock


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SELLING_KINDS)
def test_unknown_order_is_404_and_cancelling_twice_is_409(control, store, receiver, kind):
    # given
    order_id = _sold(control, kind, store, receiver)
    control.order_action(kind, store, order_id, "cancel")

    # when
    unknown = _refused(lambda: control.order_action(kind, store, "999999", "cancel"))
    unknown_view = _refused(lambda: control.order(kind, store, "999999"))
    twice = _refused(lambda: control.order_action(kind, store, order_id, "cancel"))

    # then
    assert unknown[0] == unknown_view[0] == 404
    assert twice == (409, f"order {order_id} is already cancelled")
    assert _available(control, kind, store) == 5  # put back once


@pytest.mark.parametrize("kind", ["shopify", "woocommerce", "magento"])
def test_refunding_more_than_was_sold_is_409_and_bad_input_is_400_naming_the_field(control, store, receiver, kind):
    # given
    order_id = _sold(control, kind, store, receiver)
    if kind == "magento":
        control.order_action(kind, store, order_id, "pay")

    def refund(**body: Any) -> tuple[int, str]:
        return _refused(lambda: control.order_action(kind, store, order_id, "refund", **body))

    # when / then
    assert refund(lines=[{"sku": "L-1", "quantity": 4}], restock=True)[0] == 409
    assert refund(lines=[{"sku": "L-1", "quantity": 2}])[1].startswith("restock is missing")
    assert "restock" in refund(restock="yes")[1]
    assert "lines[0].quantity" in refund(lines=[{"sku": "L-1", "quantity": 0}], restock=True)[1]
    assert "lines[0].sku" in refund(lines=[{"sku": "OTHER", "quantity": 1}], restock=True)[1]
    assert "lines" in refund(lines=[], restock=True)[1]
    assert "reason" in refund(restock=True, reason="x")[1]
    assert "deliveries" in _refused(lambda: control.order_action(kind, store, order_id, "cancel", deliveries=0))[1]
    assert _available(control, kind, store) == 2  # nothing refused changed the stock
    assert control.order(kind, store, order_id)["lines"][0]["refunded"] == 0


def test_a_cancelled_order_has_nothing_to_refund_and_a_kind_that_does_not_sell_has_no_orders(control, store, receiver):
    # given
    order_id = _sold(control, "shopify", store, receiver)
    control.order_action("shopify", store, order_id, "cancel")

    # when
    cancelled = _refused(lambda: control.order_action("shopify", store, order_id, "refund", restock=True))
    webhook_kind = _refused(lambda: control.order_action("webhook", store, "1", "cancel"))
    unknown_action = _refused(lambda: control.order_action("shopify", store, order_id, "archive"))

    # then
    assert cancelled[0] == 409 and "cancelled" in cancelled[1]
    assert webhook_kind[0] == 400 and "does not sell" in webhook_kind[1]
    assert unknown_action[0] == 404


def test_shopify_pay_is_409_because_a_sale_is_paid_at_checkout_and_fulfilling_twice_is_409(control, store, receiver):
    # given
    order_id = _sold(control, "shopify", store, receiver)

    # when
    paid = _refused(lambda: control.order_action("shopify", store, order_id, "pay"))
    control.order_action("shopify", store, order_id, "fulfill")
    twice = _refused(lambda: control.order_action("shopify", store, order_id, "fulfill"))
    cancel_shipped = _refused(lambda: control.order_action("shopify", store, order_id, "cancel"))

    # then
    assert paid[0] == twice[0] == cancel_shipped[0] == 409
    assert "paid at checkout" in paid[1] and "fulfilled" in cancel_shipped[1]
    wait_until(lambda: not receiver.nothing_unread(), message="orders/fulfilled was not sent")
