"""Inbound webhooks: verify, store raw, acknowledge; then apply in a task.

`inbound_receive` runs in the web request and does only what must happen before the answer
(Shopify gives 5 s): check the signature on the raw bytes, parse enough to refuse a malformed
body, store the event once (a duplicate delivery finds its row), and queue its processing
after commit. `inbound_event_process` runs in a worker and turns the event into ledger
movements through the order service, in one transaction with the event's new status, so a
crash halfway leaves the event to be processed again by the sweep.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..inbound.base import MalformedPayload, ParsedWebhook, StockReport, WebhookRefused
from ..inbound.registry import inbound_parser
from ..models import Channel, InboundEvent, Listing
from ..safety import shown_quantities
from .orders import order_line_apply, order_restock_apply

log = logging.getLogger(__name__)

# Headers kept with the event (what parsing needs and what a person debugging wants to see);
# signatures are not kept.
_KEPT_PREFIXES = ("x-shopify-", "x-wc-webhook-", "x-sandbox-", "content-type", "user-agent")
_SIGNATURES = {"x-shopify-hmac-sha256", "x-wc-webhook-signature", "x-sandbox-signature"}
# An event that cannot be applied yet (a refund before its order) is retried this long.
DEFER_LIMIT = timedelta(hours=1)


class UnknownChannel(WebhookRefused):
    status = 404


@dataclass(frozen=True)
class Receipt:
    """What the webhook endpoint answers."""

    status: int
    body: dict = field(default_factory=dict)


def inbound_receive(*, channel_id: int, headers: Mapping[str, str], body: bytes) -> Receipt:
    """Verify and store one delivery. Raises `WebhookRefused` (with its HTTP status) for a
    bad signature, a malformed body or an unknown channel; nothing is stored then."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise UnknownChannel(f"no channel {channel_id}")
    parser = inbound_parser(channel.kind, webhook=True)
    if getattr(parser, "is_ping", None) and parser.is_ping(headers=headers, body=body):
        return Receipt(200, {"ping": True})
    parser.verify(secret=str(channel.credentials.get("webhook_secret") or ""), headers=headers, body=body)
    parsed = parser.parse(headers=headers, body=body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("body is not UTF-8") from None
    event, created = _store(channel, parsed, headers, text)
    if created:
        transaction.on_commit(lambda: _enqueue(event.pk))
    return Receipt(200, {"id": event.pk, "duplicate": not created})


def inbound_store_polled(*, channel: Channel, body: bytes) -> bool:
    """Store one order the channel gave us when asked (Magento), like a webhook; True when it
    is new (its processing is queued), False when that version of it was stored before."""
    parsed = inbound_parser(channel.kind).parse(headers={}, body=body)
    event, created = _store(channel, parsed, {}, body.decode("utf-8"))
    if created:
        transaction.on_commit(lambda: _enqueue(event.pk))
    return created


def _store(channel: Channel, parsed: ParsedWebhook, headers: Mapping[str, str], text: str) -> tuple[InboundEvent, bool]:
    kept = {
        name: value for name, value in headers.items()
        if name.lower().startswith(_KEPT_PREFIXES) and name.lower() not in _SIGNATURES
    }
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                channel=channel, key=parsed.key[:255], topic=parsed.topic[:100], headers=kept, body=text,
                triggered_at=parsed.triggered_at, received_at=timezone.now(),
            )
        return event, True
    except IntegrityError:
        InboundEvent.objects.filter(channel=channel, key=parsed.key[:255]).update(deliveries=F("deliveries") + 1)
        return InboundEvent.objects.get(channel=channel, key=parsed.key[:255]), False


def _enqueue(event_id: int) -> None:
    from ..tasks import inbound_process

    try:
        inbound_process.delay(event_id)
    except Exception:  # the broker is down: the row is stored, the sweep will process it
        log.warning("inbound event %s stored; its task could not be queued (the sweep will pick it up)", event_id)


def inbound_event_process(*, event_id: int) -> str | None:
    """Apply a stored event once. Returns its new status, or None when it was not due."""
    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=event_id, status=InboundEvent.Status.RECEIVED)
            .first()
        )
        if event is None:
            return None  # done already, or another worker holds it
        parser = inbound_parser(event.channel.kind)
        try:
            parsed = parser.parse(headers=event.headers, body=event.body.encode("utf-8"))
        except WebhookRefused as error:  # stored by an older version that parsed less
            return _finish(event, InboundEvent.Status.NEEDS_ATTENTION, error.message)
        status, detail = _apply(event.channel, parsed)
        if status == InboundEvent.Status.RECEIVED and timezone.now() - event.received_at > DEFER_LIMIT:
            status, detail = InboundEvent.Status.NEEDS_ATTENTION, f"gave up waiting: {detail}"
        return _finish(event, status, detail)


def _finish(event: InboundEvent, status: str, detail: str) -> str:
    event.status, event.detail = status, detail[:2000]
    event.processed_at = timezone.now() if status != InboundEvent.Status.RECEIVED else None
    event.save(update_fields=["status", "detail", "processed_at"])
    return status


def _apply(channel: Channel, parsed: ParsedWebhook) -> tuple[str, str]:
    if parsed.ignored:
        return InboundEvent.Status.IGNORED, parsed.ignored
    notes, problems, deferred = [], [], []
    # Lines in SKU order, so two events lock the same stock rows in the same order.
    for report in sorted(parsed.lines, key=lambda r: (r.sku, r.line_id)):
        outcome = order_line_apply(channel=channel, order_id=parsed.order_id, report=report, at=parsed.triggered_at)
        if outcome.problem:
            problems.append(f"line {report.line_id}: {outcome.problem}")
        elif outcome.moved:
            notes.append(f"line {report.line_id} ({outcome.sku}) -> {outcome.state}")
    for restock in sorted(parsed.restocks, key=lambda r: (r.sku, r.line_id)):
        outcome = order_restock_apply(channel=channel, order_id=parsed.order_id, restock=restock)
        if outcome.deferred:
            deferred.append(f"line {restock.line_id}: {outcome.deferred}")
        elif outcome.moved:
            notes.append(f"line {restock.line_id} ({outcome.sku}) restocked")
    for report in parsed.stock:
        notes.append(_stock_report_note(channel, report))
    if deferred:
        return InboundEvent.Status.RECEIVED, "; ".join(deferred)
    if problems:
        return InboundEvent.Status.NEEDS_ATTENTION, "; ".join(problems + notes)
    if parsed.stock and not parsed.lines and not parsed.restocks:
        return InboundEvent.Status.IGNORED, "; ".join(notes)
    return InboundEvent.Status.APPLIED, "; ".join(notes) or "nothing to change (already applied)"


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
    for their order), oldest first, for at most `budget_s`. Returns how many were applied."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    due = list(
        InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    deadline = time.monotonic() + budget_s
    applied = 0
    for event_id in due:
        if time.monotonic() > deadline:
            break
        status = inbound_event_process(event_id=event_id)
        applied += status not in (None, InboundEvent.Status.RECEIVED)
    return applied
