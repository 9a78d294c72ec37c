"""Orders fetched on a beat schedule: all of Magento's (it sends no order webhooks), and
WooCommerce's as a safety net beside its webhooks (WooCommerce never retries a delivery that
failed, so a sale whose webhook we could not take would otherwise be lost).

The cursor is not kept anywhere of its own: it is the newest `triggered_at` among the events
this poll stored for the channel (the kind's poll topic; never its webhooks, so an order that
came by webhook cannot move the cursor past an earlier one whose webhook was lost), less an
overlap (orders updated within the same second, a clock a little behind). What the overlap
fetches again is deduplicated by its key (order id, update time and a digest of its lines). A
channel polled for the first time looks back `settings.orders_lookback_s` (default one day).
An order that comes both by webhook and by poll is two events and one set of order lines:
the order service applies each line's news once.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from ..adapters.base import ChannelThrottled
from ..inbound.registry import poll_topic, polled_kinds
from ..models import Channel, InboundEvent
from .flush import adapter_for_channel
from .inbound import inbound_store_polled

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=2)
DEFAULT_LOOKBACK_S = 24 * 3600


def channels_to_poll() -> list[int]:
    return list(Channel.objects.filter(kind__in=polled_kinds(), enabled=True).values_list("pk", flat=True))


def orders_poll(*, channel_id: int) -> int:
    """Fetch the channel's orders updated since its cursor and store the new versions.
    Returns how many were new."""
    channel = Channel.objects.filter(pk=channel_id, enabled=True, kind__in=polled_kinds()).first()
    if channel is None:
        return 0
    polled = InboundEvent.objects.filter(channel=channel, topic=poll_topic(channel.kind))
    newest = polled.aggregate(at=Max("triggered_at"))["at"]
    lookback = float(channel.settings.get("orders_lookback_s", DEFAULT_LOOKBACK_S))
    since = newest - OVERLAP if newest else timezone.now() - timedelta(seconds=lookback)
    try:
        orders = adapter_for_channel(channel).orders_updated_since(since)
    except ChannelThrottled as throttled:
        log.info("channel %s: order poll throttled for %.1f s", channel.name, throttled.retry_after)
        return 0
    return sum(inbound_store_polled(channel=channel, body=order.body) for order in orders)
