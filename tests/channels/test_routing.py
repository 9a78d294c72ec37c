"""Per-channel routing: a channel's flushes go to its dedicated queue (`sync_queue`), others to
`sync`; the wake-ups on commit and the sweep's both follow the route, through the real broker."""
from __future__ import annotations

import uuid

import pytest

from channels.models import Channel
from channels.routing import dedicated_sync_queues, flush_queue
from channels.tasks import sweep
from channels.wakeups import wake_channel, wake_flag_clear
from syncsvc.celery import app as celery_app
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db

BODY = {"name": "big", "kind": "webhook", "base_url": "http://127.0.0.1:8765/webhook/big", "credentials": {"secret": "abc"}}


@pytest.fixture
def dedicated_queue():
    """A queue name no worker consumes (unique per test), emptied and forgotten afterwards."""
    name = f"sync.test-{uuid.uuid4().hex[:8]}"
    yield name
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_delete(name)


def _flushes_waiting(queue: str) -> list[int]:
    """The channel ids of the flushes waiting on `queue` (taken off it)."""
    ids = []
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue)) is not None:
            assert message.headers["task"] == "channels.flush"
            args, _kwargs, _embed = message.decode()
            ids.append(args[0])
            message.ack()
    return ids


def test_a_wake_up_sends_a_routed_channels_flush_to_its_dedicated_queue(dedicated_queue):
    # given
    channel = ChannelFactory(settings={"sync_queue": dedicated_queue})
    wake_flag_clear(channel.pk, both=True)  # a flag an earlier run left for the same id

    # when
    sent = wake_channel(channel.pk)

    # then
    assert sent is True
    assert _flushes_waiting(dedicated_queue) == [channel.pk]


def test_a_channel_without_a_route_is_flushed_from_the_shared_queue(dedicated_queue):
    # given
    routed = ChannelFactory(settings={"sync_queue": dedicated_queue})
    shared = ChannelFactory(settings={"rate_per_s": 5})
    explicit = ChannelFactory(settings={"sync_queue": "sync"})

    # then
    assert flush_queue(shared.pk) == "sync"
    assert flush_queue(explicit.pk) == "sync"
    assert flush_queue(routed.pk) == dedicated_queue
    assert flush_queue(10**9) == "sync"  # gone: its flush returns at once wherever it runs
    assert dedicated_sync_queues() == [dedicated_queue]


def test_the_sweep_wakes_a_routed_channel_on_its_dedicated_queue(dedicated_queue):
    # given: a change owed to the channel whose wake-up on commit was lost
    channel = ChannelFactory(settings={"sync_queue": dedicated_queue})
    wake_flag_clear(channel.pk, both=True)
    product_with_variants(skus=["ROUTE-1"])  # no commit in this test: nothing was woken

    # when
    sweep()

    # then
    assert _flushes_waiting(dedicated_queue) == [channel.pk]


@pytest.mark.parametrize("queue", ["maintenance", "bulk", "sync.", "Sync.Big", "sync big", "sync.big;rm", 5, ""])
def test_the_api_refuses_a_route_outside_the_sync_queues(ops, queue):
    # when
    response = ops.post("/api/v1/channels/", {**BODY, "settings": {"sync_queue": queue}}, format="json")

    # then
    assert response.status_code == 400, response.content
    assert "sync_queue" in str(response.json()["errors"])
    assert not Channel.objects.exists()


def test_the_api_routes_a_channel_to_a_dedicated_queue(ops):
    # when
    response = ops.post("/api/v1/channels/", {**BODY, "settings": {"sync_queue": "sync.big-store"}}, format="json")

    # then
    assert response.status_code == 201, response.content
    assert flush_queue(response.json()["id"]) == "sync.big-store"
