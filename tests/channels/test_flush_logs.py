"""Structured logs: every line of a change's way (recorded, pushed over HTTP, settled) carries
its change id, the channel and, in a task, the Celery task id. The flush runs in this process
(`flush_channel` against a real sandbox store) so that its records can be captured."""
from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from pythonjsonlogger.json import JsonFormatter

from channels.models import SyncAttempt, SyncMark
from channels.redis_client import get_redis
from channels.services.flush import flush_channel
from channels.tasks import flush as flush_task
from inventory import services
from inventory.models import Variant
from syncsvc.logcontext import ContextFilter, TextFormatter, log_context
from tests.factories import product_with_variants, webhook_channel
from tests.support.sandbox import wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
def captured(caplog):
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    return caplog


@pytest.fixture
def quiet_channel(live, store_name):
    """A channel the real worker leaves alone: its wake flag held, so neither a commit nor the
    sweep queues a flush of it; this test process flushes it."""
    channel = webhook_channel(live, store_name, name=f"logs-{store_name}")
    flag = f"syncsvc:wake:{channel.pk}"
    get_redis().set(flag, "1", ex=120)
    yield channel
    get_redis().delete(flag)


def _flush_records(records):
    return [r for r in records if r.name.startswith("channels.")]


def test_every_line_of_a_flush_carries_its_change_ids_and_channel(live, quiet_channel, captured):
    # given: changes recorded (their line names them)
    product_with_variants(skus=["LOG-1", "LOG-2"], price="10.00")
    recorded = [r for r in captured.records if r.name == "inventory.services.changes"]
    assert recorded and all(r.change_id for r in recorded)
    change_ids = {c for r in recorded for c in r.change_id}
    owed = set(SyncMark.objects.pending().filter(channel=quiet_channel).values_list("version", flat=True))
    assert owed and owed <= change_ids
    captured.clear()

    # when
    outcome = flush_channel(channel_id=quiet_channel.pk)

    # then: lines from the flush and its adapter's HTTP calls, every one naming the changes
    assert outcome.delivered == len(owed)
    records = _flush_records(captured.records)
    assert {r.name for r in records} >= {"channels.services.flush", "channels.adapters.http"}, [r.name for r in records]
    for record in records:
        assert record.channel == quiet_channel.name, record.getMessage()
        assert record.change_id and set(record.change_id) <= owed, (record.getMessage(), record.__dict__)
    assert {c for r in records for c in r.change_id} == owed
    assert set(SyncAttempt.objects.filter(channel=quiet_channel).values_list("version", flat=True)) == owed

    # and both formats show them
    http_line = next(r for r in records if r.name == "channels.adapters.http")
    text = TextFormatter("%(levelname)s %(name)s %(message)s").format(http_line)
    assert f"channel={quiet_channel.name}" in text and "change_id=" in text and " -> 200 in " in text
    as_json = json.loads(JsonFormatter("%(levelname)s %(name)s %(message)s").format(http_line))
    assert set(as_json["change_id"]) <= owed and as_json["channel"] == quiet_channel.name


def test_a_failed_push_is_logged_with_the_change_that_failed(live, quiet_channel, store_name, captured):
    # given: delivered once, then the store answers 503 to the next push
    product_with_variants(skus=["LOG-9"], price="10.00")
    flush_channel(channel_id=quiet_channel.pk)
    live.sandbox.fault("webhook", store_name, status=503, count=1)
    captured.clear()
    services.variant_update(variant=Variant.objects.get(sku="LOG-9"), fields={"price": Decimal("11.00")})
    change_id = SyncMark.objects.get(channel=quiet_channel, variant__sku="LOG-9", aspect="price").version

    # when: flushed once it is due (a SKU changed right after a send waits a little: it is hot)
    wait_until(lambda: flush_channel(channel_id=quiet_channel.pk).failed, message="the push never failed")

    # then
    warnings = [r for r in _flush_records(captured.records) if r.levelno == logging.WARNING]
    assert warnings, [r.getMessage() for r in captured.records]
    assert all(r.change_id == [change_id] and r.channel == quiet_channel.name for r in warnings)
    assert any("503" in r.getMessage() for r in _flush_records(captured.records) if r.name == "channels.adapters.http")


def test_a_task_s_lines_carry_its_task_id(live, quiet_channel, captured):
    # given
    product_with_variants(skus=["LOG-T"], price="10.00")
    captured.clear()

    # when: the flush task itself, run here (Celery's task_prerun/postrun signals fire as in a worker)
    result = flush_task.apply(args=(quiet_channel.pk,))

    # then
    records = _flush_records(captured.records)
    assert records and all(r.task_id == result.id for r in records)
    with log_context(channel="after"):
        logging.getLogger("channels.test").info("after the task")
    assert not hasattr(captured.records[-1], "task_id") and captured.records[-1].channel == "after"
