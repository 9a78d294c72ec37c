"""Orders from channels without webhooks (Magento), fetched on a beat schedule.

The cursor is not kept anywhere of its own: it is the newest `updated_at` among the orders
already stored for the channel, less an overlap (orders updated within the same second, a
clock a little behind), and what the overlap fetches again is deduplicated by its key
(order id, `updated_at` and a digest of its lines). A channel polled for the first time looks back
`settings.orders_lookback_s` (default one day).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db.models import Max
from django.utils import timezone

from ..adapters.base import ChannelThrottled
from ..inbound.magento import TOPIC
from ..models import Channel, InboundEvent
from .flush import adapter_for_channel
from .inbound import inbound_store_polled

log = logging.getLogger(__name__)

POLLED_KINDS = ("magento",)
OVERLAP = timedelta(minutes=2)
DEFAULT_LOOKBACK_S = 24 * 3600


def channels_to_poll() -> list[int]:
    return list(Channel.objects.filter(kind__in=POLLED_KINDS, enabled=True).values_list("pk", flat=True))


def orders_poll(*, channel_id: int) -> int:
    """Fetch the channel's orders updated since its cursor and store the new versions.
    Returns how many were new."""
    channel = Channel.objects.filter(pk=channel_id, enabled=True, kind__in=POLLED_KINDS).first()
    if channel is None:
        return 0
    newest = InboundEvent.objects.filter(channel=channel, topic=TOPIC).aggregate(at=Max("triggered_at"))["at"]
    lookback = float(channel.settings.get("orders_lookback_s", DEFAULT_LOOKBACK_S))
    since = newest - OVERLAP if newest else timezone.now() - timedelta(seconds=lookback)
    try:
        orders = adapter_for_channel(channel).orders_updated_since(_magento_time(since))
    except ChannelThrottled as throttled:
        log.info("channel %s: order poll throttled for %.1f s", channel.name, throttled.retry_after)
        return 0
    return sum(inbound_store_polled(channel=channel, body=order.body) for order in orders)


def _magento_time(value: datetime) -> str:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
