"""The merchandisers see inbound events and order lines in the admin, and can have an event
that needed attention applied again."""
from __future__ import annotations

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
