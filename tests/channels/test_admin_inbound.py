"""The merchandisers see inbound events and order lines in the admin, and can have an event
that needed attention applied again."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from channels.models import InboundEvent, OrderLine
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _event(channel, status, key="k1"):
    return InboundEvent.objects.create(channel=channel, key=key, topic="orders/create", body="{}", status=status,
                                       received_at=timezone.now(), detail="line 1: unknown SKU 'X'")


def test_inbound_events_and_order_lines_are_listed(admin_client):
    channel = ChannelFactory(kind="shopify")
    _event(channel, InboundEvent.Status.NEEDS_ATTENTION)
    OrderLine.objects.create(channel=channel, order_id="1", line_id="2", sku="X", quantity=1, state="unknown_sku")

    events = admin_client.get("/admin/channels/inboundevent/?status=needs_attention")
    lines = admin_client.get("/admin/channels/orderline/?state=unknown_sku")

    assert events.status_code == 200 and b"unknown SKU" in events.content
    assert lines.status_code == 200 and b"unknown_sku" in lines.content


def test_apply_again_queues_only_events_that_needed_attention(admin_client):
    channel = ChannelFactory(kind="shopify")
    stuck = _event(channel, InboundEvent.Status.NEEDS_ATTENTION, key="a")
    done = _event(channel, InboundEvent.Status.APPLIED, key="b")

    response = admin_client.post("/admin/channels/inboundevent/", {
        "action": "apply_again", "_selected_action": [stuck.pk, done.pk],
    })

    assert response.status_code == 302
    stuck.refresh_from_db()
    done.refresh_from_db()
    assert stuck.status == InboundEvent.Status.RECEIVED and done.status == InboundEvent.Status.APPLIED


def test_an_event_with_an_unknown_sku_is_applied_once_the_sku_exists_and_it_is_applied_again(admin_client):
    # given: a sale of a SKU the catalog lacks, flagged for a person
    from channels.services.inbound import inbound_batch_process, inbound_process_due, inbound_receive
    from inventory.models import StockMovement
    from tests.factories import product_with_variants

    channel = ChannelFactory(kind="shopify", credentials={"access_token": "x", "webhook_secret": "s3cret"})
    body = json.dumps({"id": 123456, "financial_status": "paid", "cancelled_at": None,
                       "line_items": [{"id": 1, "sku": "LATE-1", "quantity": 1, "fulfillment_status": None}]}).encode()
    signature = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": "evt-late", "X-Shopify-Hmac-Sha256": signature}
    inbound_receive(channel_id=channel.pk, headers=headers, body=body)
    inbound_batch_process(channel_id=channel.pk)
    event = InboundEvent.objects.get(channel=channel)
    assert event.status == InboundEvent.Status.NEEDS_ATTENTION

    # when: the merchandiser adds the SKU and applies the event again
    product_with_variants(handle="late", skus=["LATE-1"], stock=4)
    admin_client.post("/admin/channels/inboundevent/", {"action": "apply_again", "_selected_action": [event.pk]})
    inbound_process_due(older_than_s=0)

    # then
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.APPLIED, event.detail
    assert StockMovement.objects.filter(variant__sku="LATE-1", reason="sale").count() == 1
    assert OrderLine.objects.get(channel=channel).state == OrderLine.State.COMMITTED
