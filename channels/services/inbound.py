"""Inbound webhooks: verify, store raw, acknowledge; then apply in a task.

`inbound_receive` runs in the web request and does only what must happen before the answer
(Shopify gives 5 s): check the signature on the raw bytes, parse enough to refuse a malformed
body, store the event once (a duplicate delivery finds its row), and queue its processing
after commit. In a worker, `inbound_drain` / `inbound_batch_process` turn batches of stored
events into ledger movements through the order service, in one transaction with the events'
new statuses, so a crash halfway leaves them to be processed again by the sweep.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from inventory.services.sqlarrays import int_array, text_array
from syncsvc.dbconnections import Reconnecting

from ..inbound.base import MalformedPayload, ParsedWebhook, StockReport, WebhookRefused, body_digest
from ..inbound.registry import inbound_parser, parse_stored, polled_beside_webhooks
from ..marks import db_time
from ..metrics.counters import caught_count, inbound_count
from ..models import Channel, InboundEvent, Listing
from ..safety import shown_quantities
from ..wakeups import flag_claim, flags_clear
from .orders import EventLines, orders_apply_batch

log = logging.getLogger(__name__)

# Headers kept with the event (what parsing needs and what a person debugging wants to see);
# signatures are not kept.
_KEPT_PREFIXES = ("x-shopify-", "x-wc-webhook-", "x-sandbox-", "content-type", "user-agent")
_SIGNATURES = {"x-shopify-hmac-sha256", "x-wc-webhook-signature", "x-sandbox-signature"}
# An event that cannot be applied yet (a refund before its order) is retried this long.
DEFER_LIMIT = timedelta(hours=1)
# How long a delivery waits for a database that dropped its connection to come back before it
# is answered 500: under Shopify's 5 s delivery timeout, WooCommerce's is 10 s.
STORE_RETRY_S = 4.0


class UnknownChannel(WebhookRefused):
    status = 404


@dataclass(frozen=True)
class Receipt:
    """What the webhook endpoint answers."""

    status: int
    body: dict = field(default_factory=dict)


def inbound_receive(*, channel_id: int, headers: Mapping[str, str], body: bytes) -> Receipt:
    """Verify and store one delivery. Raises `WebhookRefused` (with its HTTP status) for a
    bad signature, a malformed body or an unknown channel; nothing is stored then. A database
    that is restarting is waited for (briefly, within the channels' delivery timeouts): some
    channels never deliver again what was answered with an error."""
    reconnecting = Reconnecting(within_s=STORE_RETRY_S)
    channel = reconnecting(lambda: _receiving_channel(channel_id))
    parser = inbound_parser(channel.kind, webhook=True)
    if getattr(parser, "is_ping", None) and parser.is_ping(headers=headers, body=body):
        return Receipt(200, {"ping": True})
    parser.verify(secret=channel.secret, headers=headers, body=body)
    parsed = parser.parse(headers=headers, body=body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("body is not UTF-8") from None
    # Idempotent (the insert does nothing for a stored key): an insert that committed just
    # before the connection dropped is found again, as a duplicate the sweep processes.
    event, created = reconnecting(lambda: _store(channel, parsed, headers, text))
    if created:
        transaction.on_commit(lambda: _enqueue(channel.pk))
    return Receipt(200, {"id": event.pk, "duplicate": not created})


# The channel a webhook names (its kind and decrypted webhook secret), kept a few seconds per
# process: the answer then costs one statement (the insert) and no Fernet decryption. A
# changed secret or a deleted channel is seen within that time (a deleted one's insert fails
# its foreign key and is answered 404).
_CHANNEL_TTL_S = 5.0


@dataclass(frozen=True)
class _Receiver:
    pk: int
    kind: str
    secret: str
    at: float


_RECEIVERS: dict[int, _Receiver] = {}


def _receiving_channel(channel_id: int) -> _Receiver:
    cached = _RECEIVERS.get(channel_id)
    now = time.monotonic()
    if cached and now - cached.at < _CHANNEL_TTL_S:
        return cached
    channel = Channel.objects.filter(pk=channel_id).only("pk", "kind", "credentials_encrypted").first()
    if channel is None:
        _RECEIVERS.pop(channel_id, None)
        raise UnknownChannel(f"no channel {channel_id}")
    if len(_RECEIVERS) > 1000:
        _RECEIVERS.clear()
    receiver = _RECEIVERS[channel_id] = _Receiver(
        channel.pk, channel.kind, str(channel.credentials.get("webhook_secret") or ""), now
    )
    return receiver


def inbound_store_polled(*, channel: Channel, body: bytes) -> bool:
    """Store one order the channel gave us when asked (its order poll), like a webhook, under
    the kind's poll topic; True when it is new (its processing is queued), False when that
    version of it was stored before. An order we cannot read is stored all the same, keyed by
    its digest: its processing sets it aside for a person (nobody would see a refusal), and
    the poll goes on with the others."""
    parser = inbound_parser(channel.kind)
    try:
        parsed = parser.parse_polled(body=body)
    except MalformedPayload:
        parsed = ParsedWebhook(key=f"{parser.POLL_TOPIC}:unreadable:{body_digest(body)}", topic=parser.POLL_TOPIC)
    _, created = _store(channel, parsed, {}, body.decode("utf-8"))
    if created:
        transaction.on_commit(lambda: _enqueue(channel.pk))
    return created


def _store(channel: Channel | _Receiver, parsed: ParsedWebhook, headers: Mapping[str, str],
           text: str) -> tuple[InboundEvent, bool]:
    kept = {
        name: value for name, value in headers.items()
        if name.lower().startswith(_KEPT_PREFIXES) and name.lower() not in _SIGNATURES
    }
    key = parsed.key[:255]
    # One statement (no savepoint): a duplicate delivery inserts nothing and is counted.
    table = InboundEvent._meta.db_table
    received_at = timezone.now()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (channel_id, key, topic, headers, body, triggered_at, received_at, deliveries,"
                " status, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, '')"
                " ON CONFLICT (channel_id, key) DO NOTHING RETURNING id",
                [channel.pk, key, parsed.topic[:100], json.dumps(kept), text,
                 db_time(parsed.triggered_at), db_time(received_at), InboundEvent.Status.RECEIVED],
            )
            row = cursor.fetchone()
    except IntegrityError:  # the channel was deleted a moment ago (its foreign key)
        _RECEIVERS.pop(channel.pk, None)
        raise UnknownChannel(f"no channel {channel.pk}") from None
    if row is not None:
        return InboundEvent(pk=row[0], channel_id=channel.pk, key=key), True
    InboundEvent.objects.filter(channel_id=channel.pk, key=key).update(deliveries=F("deliveries") + 1)
    return InboundEvent.objects.only("pk").get(channel_id=channel.pk, key=key), False



# One queued drain per channel: set when a drain is queued, cleared when it starts (so an
# event stored while it runs queues the next). Expires, so a lost task costs a sweep interval.
_QUEUED_TTL_S = 30


def _queued_flag(channel_id: int) -> str:
    return f"syncsvc:inbound:queued:{channel_id}"


def _enqueue(channel_id: int) -> None:
    """Queue a drain of the channel's stored events unless one is queued already (the flag
    mechanism of the flushes' wake-ups). Never raises: the row is stored, and the sweep
    applies what no task did."""
    from redis.exceptions import RedisError

    from ..tasks import inbound_process

    try:
        if not flag_claim(_queued_flag(channel_id), _QUEUED_TTL_S):
            return
    except RedisError as exc:
        log.warning("inbound drain flag of channel %s not set (%s); queueing anyway", channel_id, exc)
    try:
        inbound_process.delay(channel_id=channel_id)
    except Exception:  # the broker is down: the rows are stored, the sweep will process them
        log.warning("inbound events of channel %s stored; their drain could not be queued (the sweep will)", channel_id)


def inbound_drain_started(channel_id: int) -> None:
    """A drain clears its channel's flag before it claims, so what commits after is queued anew."""
    flags_clear(_queued_flag(channel_id))


def _stock_report_note(channel: Channel, report: StockReport) -> str:
    """Stock figures from a channel are never written back (the ledger is the truth; a
    channel-side edit is drift for reconciliation). An echo of our own write is recognised."""
    from inventory.models import Variant

    if report.sku:
        variant_id = Variant.objects.filter(sku=report.sku).values_list("pk", flat=True).first()
    else:
        variant_id = (
            Listing.objects.filter(channel=channel, external_ids__inventory_item_id=report.external_id)
            .values_list("variant_id", flat=True)
            .first()
        )
    name = report.sku or report.external_id
    if variant_id is None:
        return f"stock of {name} on the channel ({report.available}): not a SKU we sync, ignored"
    shown = shown_quantities(channel, None, [variant_id])[variant_id]
    if report.available == shown:
        return f"echo of our own write ({name}: {shown}), ignored"
    return (
        f"stock of {name} changed on the channel ({report.available} there, {shown} here): "
        "not written back; reconciliation reports the drift"
    )


def inbound_process_due(*, older_than_s: float = 5.0, limit: int = 500, budget_s: float = 5.0) -> int:
    """Apply events stored but not applied for a while (their task was lost, or they wait
    for their order), oldest first, in batches, for at most `budget_s`. Returns how many
    were applied (or otherwise settled)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    deadline = time.monotonic() + budget_s
    settled, after = 0, 0
    while time.monotonic() < deadline and limit > 0:
        batch = inbound_batch_process(received_before=cutoff, after_id=after, limit=min(BATCH_SIZE, limit))
        settled += batch.settled
        limit -= batch.claimed
        if batch.claimed == 0:
            break
        after = batch.last_id
    return settled


BATCH_SIZE = 200


@dataclass(frozen=True)
class BatchOutcome:
    claimed: int = 0    # events locked and looked at
    settled: int = 0    # of them, no longer RECEIVED (applied, ignored, needs attention)
    last_id: int = 0    # the highest id claimed (the sweep pages on it)


def inbound_batch_process(
    *, channel_id: int | None = None, limit: int = BATCH_SIZE, fresh_only: bool = False,
    received_before=None, after_id: int = 0,
) -> BatchOutcome:
    """Claim up to `limit` RECEIVED events, oldest first (`FOR UPDATE SKIP LOCKED`: a batch
    another worker holds is left to it) and apply them all in one transaction: their order
    lines and ledger movements set-based (`orders_apply_batch`), then their statuses in one
    statement. A deadlock or a dropped connection rolls all of it back (the caller retries).

    `fresh_only` claims only events never tried (a deferred event, e.g. a refund waiting
    for its order, has its reason in `detail` and is left to the sweep), so a drain never
    spins on events that cannot be applied yet."""
    with transaction.atomic():
        claim = InboundEvent.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=InboundEvent.Status.RECEIVED, pk__gt=after_id
        )
        if channel_id is not None:
            claim = claim.filter(channel_id=channel_id)
        if fresh_only:
            claim = claim.filter(detail="")
        if received_before is not None:
            claim = claim.filter(received_at__lt=received_before)
        events = list(claim.order_by("pk")[:limit])
        if not events:
            return BatchOutcome()
        channels = {c.pk: c for c in Channel.objects.filter(pk__in={e.channel_id for e in events})}
        parsed: list[ParsedWebhook | None] = []
        results: dict[int, tuple[str, str]] = {}
        for event in events:
            event.channel = channels[event.channel_id]
            if event.channel.mode == Channel.Mode.SHADOW:
                # A shadow channel runs beside the integration that still counts its orders:
                # they are kept, readable, and move no stock here.
                parsed.append(None)
                results[event.pk] = (InboundEvent.Status.IGNORED, "shadow channel: orders are recorded, not applied")
                continue
            try:
                parsed.append(parse_stored(event.channel.kind, topic=event.topic, headers=event.headers,
                                           body=event.body.encode("utf-8")))
            # Stored by an older version that parsed less, or a polled order we cannot read.
            except WebhookRefused as error:
                parsed.append(None)
                results[event.pk] = (InboundEvent.Status.NEEDS_ATTENTION, error.message)
        work = [(event, p) for event, p in zip(events, parsed) if p is not None]
        try:
            with transaction.atomic():
                lines = orders_apply_batch(events=[(event.channel, p) for event, p in work])
        except OperationalError:
            raise
        except Exception:  # one event the batch cannot apply (e.g. a release below zero): find it
            log.exception("inbound batch of %s events failed; applying them one by one", len(work))
            lines = [_apply_alone(event, p) for event, p in work]
        caught = []
        for (event, p), outcome in zip(work, lines):
            status, detail = _status(event, p, outcome)
            if status == InboundEvent.Status.APPLIED and _caught_by_poll(event, outcome):
                caught.append(event.channel_id)
                detail = f"{CAUGHT_NOTE}: {detail}"
            results[event.pk] = (status, detail)
        now = timezone.now()
        for event in events:
            status, detail = results[event.pk]
            event.status, event.detail = status, detail[:2000]
            event.processed_at = now if status != InboundEvent.Status.RECEIVED else None
        _events_save(events, now)
        settled = [(e.channel_id, e.status) for e in events if e.status != InboundEvent.Status.RECEIVED]
        transaction.on_commit(lambda: inbound_count(statuses=settled))  # /metrics, counted once committed
        if caught:
            log.warning("order poll applied %d order events no webhook had brought (channels %s): are the "
                        "channel's webhooks failing or disabled?", len(caught), sorted(set(caught)))
            transaction.on_commit(lambda: caught_count(channel_ids=caught))
        return BatchOutcome(
            claimed=len(events), last_id=max(e.pk for e in events),
            settled=sum(e.status != InboundEvent.Status.RECEIVED for e in events),
        )


CAUGHT_NOTE = "caught by the order poll: no webhook had brought it"


def _caught_by_poll(event: InboundEvent, outcome: EventLines) -> bool:
    """A polled order of a kind with webhooks that moved a line: its webhook did not come (or
    not yet: a poll can overtake a webhook by a moment, rarely)."""
    return bool(outcome.moved) and polled_beside_webhooks(event.channel.kind, event.topic)


def _events_save(events: list[InboundEvent], now) -> None:
    if connection.vendor != "postgresql":
        InboundEvent.objects.bulk_update(events, ["status", "detail", "processed_at"])
        return
    with connection.cursor() as cursor:  # one statement (bulk_update compiles a CASE per row and field)
        cursor.execute(
            f"UPDATE {InboundEvent._meta.db_table} AS e SET status = d.s, detail = d.dt,"
            " processed_at = CASE WHEN d.s = %s THEN NULL ELSE %s::timestamptz END"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS d(id, s, dt) WHERE e.id = d.id",
            [InboundEvent.Status.RECEIVED.value, now, int_array(e.pk for e in events),
             text_array(e.status for e in events), text_array(e.detail for e in events)],
        )


def _apply_alone(event: InboundEvent, parsed: ParsedWebhook) -> EventLines | Exception:
    try:
        with transaction.atomic():
            return orders_apply_batch(events=[(event.channel, parsed)])[0]
    except OperationalError:
        raise
    except Exception as error:
        log.exception("inbound event %s could not be applied", event.pk)
        return error


def _status(event: InboundEvent, parsed: ParsedWebhook, outcome: EventLines | Exception) -> tuple[str, str]:
    if isinstance(outcome, Exception):
        return InboundEvent.Status.NEEDS_ATTENTION, f"could not be applied: {outcome}"
    if parsed.ignored:
        return InboundEvent.Status.IGNORED, parsed.ignored
    notes = outcome.notes + [_stock_report_note(event.channel, report) for report in parsed.stock]
    if outcome.deferred:
        detail = "; ".join(outcome.deferred)
        if timezone.now() - event.received_at > DEFER_LIMIT:
            return InboundEvent.Status.NEEDS_ATTENTION, f"gave up waiting: {detail}"
        return InboundEvent.Status.RECEIVED, detail
    if outcome.problems:
        return InboundEvent.Status.NEEDS_ATTENTION, "; ".join(outcome.problems + notes)
    if parsed.stock and not parsed.lines and not parsed.restocks:
        return InboundEvent.Status.IGNORED, "; ".join(notes)
    return InboundEvent.Status.APPLIED, "; ".join(notes) or "nothing to change (already applied)"


def inbound_drain(*, channel_id: int, budget_s: float = 5.0) -> tuple[int, bool]:
    """Apply the channel's events not tried yet, batch after batch, for at most `budget_s`.
    Returns (events settled, whether some are still waiting)."""
    deadline = time.monotonic() + budget_s
    settled = 0
    while True:
        batch = inbound_batch_process(channel_id=channel_id, fresh_only=True)
        settled += batch.settled
        if batch.claimed < BATCH_SIZE:
            return settled, False
        if time.monotonic() > deadline:
            return settled, True
