"""The Redis broker transport (syncsvc/broker.py): a worker's connection whose Redis went away
while it waited for a message closes as Celery closes it, instead of killing the worker."""
from __future__ import annotations

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from syncsvc import broker
from syncsvc.celery import app
from tests.chaos.private_services import (
    PrivateRedis,
    free_port,
    redis_binary,
    redis_start,
    redis_stop,
)


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own: the test stops it."""
    if redis_binary() is None:
        pytest.skip("no redis-server binary")
    server = PrivateRedis(binary=redis_binary(), port=free_port(), dir=str(tmp_path))
    redis_start(server)
    yield server
    redis_stop(server)


def _waiting_consumer(url: str, transport):
    """A connection set up as a Celery worker's: its default channel carries the task consumer
    (a delivered, unacknowledged message; a BRPOP in flight) and the remote-control consumer
    (an auto-deleted fanout queue)."""
    connection = Connection(url, transport=transport)
    channel = connection.default_channel
    channel.queue_declare("sync")
    channel.basic_publish(channel.prepare_message("wake-up"), exchange="", routing_key="sync")
    assert channel.basic_get("sync", no_ack=False) is not None
    Queue("worker.pidbox", Exchange("pidbox", type="fanout"), auto_delete=True)(channel).declare()
    channel.basic_consume("worker.pidbox", no_ack=True, callback=lambda *_: None, consumer_tag="control")
    channel.basic_consume("sync", no_ack=False, callback=lambda *_: None, consumer_tag="tasks")
    connection.transport.cycle._register_BRPOP(channel)  # as the worker's event loop does
    assert channel._in_poll
    return connection, channel


def _lose_it_as_celery_does(connection) -> None:
    """Celery's consumer on a lost broker connection: collect, then close."""
    connection.collect(socket_timeout=1)
    connection.close()


def test_a_connection_whose_redis_went_away_mid_poll_closes(private_redis):
    # given
    connection, channel = _waiting_consumer(private_redis.url, broker.Transport)

    # when: Redis goes away, and the worker handles the lost connection
    redis_stop(private_redis)
    _lose_it_as_celery_does(connection)

    # then: no error escaped (Celery would have called it unrecoverable and exited)
    assert channel.closed


def test_kombus_own_transport_still_fails_there(private_redis):
    """Why syncsvc/broker.py exists; when this fails, kombu fixed it and the module can go."""
    connection, channel = _waiting_consumer(private_redis.url, None)
    redis_stop(private_redis)
    with pytest.raises(AttributeError):
        _lose_it_as_celery_does(connection)
    channel.qos._on_collect.cancel()  # kombu would try that restore again at exit


def test_a_redis_broker_url_gets_our_transport():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the broker is not plain Redis")
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, broker.Transport)
