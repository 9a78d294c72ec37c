"""Thin tasks: load ids, call a service. Beat jobs only kick off work."""
from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from .marks import channels_with_due_marks, marks_of_deleted_channels_drop, marks_prune_settled, next_due_in
from .models import Channel, InboundEvent
from .services.alert_rules import alerts_evaluate
from .services.circuit import circuits_holding
from .services.flush import REQUEUE_HORIZON_S, flush_channel
from .services.inbound import _enqueue as _enqueue_inbound
from .services.inbound import inbound_drain, inbound_drain_started, inbound_process_due
from .services.notify import alert_notify
from .services.orders import reservations_expire
from .services.polling import channels_to_poll, orders_poll
from .services.reconcile import channels_due, reconcile_channel
from .services.resync import resync_advance, resync_kick, resync_kick_active
from .services.retention import synclog_prune as retention_prune
from .wakeups import wake_channel, wake_flag_clear


@shared_task(name="channels.flush", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def flush(channel_id: int, enqueued_at: float | None = None) -> None:
    outcome = flush_channel(channel_id=channel_id, enqueued_at=enqueued_at)
    # While this flush ran, its wake flag kept commits from queueing more flushes of the same
    # channel (this one picks their marks up). Clear it, then look again: a mark committed
    # after the last claim is due now and nobody else was woken for it.
    wake_flag_clear(channel_id, both=True)
    if outcome.stopped:
        return
    due_in = 0.0 if outcome.requeue_in == 0 else next_due_in(channel_id=channel_id)
    if due_in is not None and due_in <= REQUEUE_HORIZON_S:
        wake_channel(channel_id, countdown=due_in)


@shared_task(name="channels.sweep", ignore_result=True)
def sweep() -> int:
    """Re-wake every enabled channel whose due marks have no flush in flight (lost wake-ups,
    leases of killed flushers, backoffs that ended)."""
    due = set(channels_with_due_marks())
    known = dict(Channel.objects.filter(pk__in=due).values_list("pk", "enabled"))
    marks_of_deleted_channels_drop(channel_ids=sorted(due - set(known)))
    enabled = {pk for pk, is_enabled in known.items() if is_enabled}
    enabled -= circuits_holding(channel_ids=enabled)  # open circuits wait for their probe
    return sum(wake_channel(pk) for pk in sorted(enabled))


@shared_task(name="channels.prune_settled", ignore_result=True)
def prune_settled() -> int:
    """Settled marks only matter for the hot window; keep an hour for inspection."""
    return marks_prune_settled(older_than_s=3600)


@shared_task(name="channels.synclog_prune", ignore_result=True)
def synclog_prune() -> int:
    """Beat: delete sync log rows, change records and settled inbound events past the
    retention, in batches within a time budget; re-queued at once while old rows remain."""
    outcome = retention_prune()
    if outcome.more:
        synclog_prune.apply_async(countdown=1)
    return outcome.attempts + outcome.changes + outcome.inbound


# --- inbound webhooks and orders ---------------------------------------------------------------


@shared_task(
    name="channels.inbound_process", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5,
)
def inbound_process(event_id: int | None = None, *, channel_id: int | None = None) -> int:
    """Drain a channel's stored inbound events in batches (queued once per channel while one
    is waiting; `event_id` alone, from an older producer, drains that event's channel). A
    deadlock or a dropped connection rolls the batch back and is retried; the sweep picks up
    whatever is still unapplied."""
    if channel_id is None:
        channel_id = InboundEvent.objects.filter(pk=event_id).values_list("channel_id", flat=True).first()
        if channel_id is None:
            return 0
    inbound_drain_started(channel_id)
    settled, more = inbound_drain(channel_id=channel_id)
    if more:
        _enqueue_inbound(channel_id)
    return settled


@shared_task(name="channels.inbound_sweep", ignore_result=True)
def inbound_sweep() -> int:
    """Apply the events stored but not applied (lost tasks, events waiting for their order)
    here, a bounded batch per run: one task per sweep, never one per event, so a backlog
    cannot feed itself with re-queued duplicates."""
    return inbound_process_due()


@shared_task(name="channels.reservations_expire", ignore_result=True)
def expire_reservations() -> int:
    return reservations_expire()


@shared_task(name="channels.poll_orders", ignore_result=True)
def poll_orders() -> int:
    """Beat: one poll per channel whose orders are polled (Magento; WooCommerce beside its webhooks)."""
    channel_ids = channels_to_poll()
    for channel_id in channel_ids:
        orders_poll_task.delay(channel_id)
    return len(channel_ids)


@shared_task(name="channels.orders_poll", ignore_result=True, expires=60)
def orders_poll_task(channel_id: int) -> int:
    return orders_poll(channel_id=channel_id)


# --- alerts ------------------------------------------------------------------------------------


@shared_task(name="channels.alerts_evaluate", ignore_result=True)
def evaluate_alerts() -> dict:
    """Beat: every enabled channel against its thresholds; alerts open, refresh, clear."""
    return alerts_evaluate()


@shared_task(name="channels.alert_notify", ignore_result=True)
def notify_alert(alert_id: int, event: str) -> None:
    alert_notify(alert_id=alert_id, event=event)


# --- forced resync and reconciliation ------------------------------------------------------------


@shared_task(name="channels.resync_step", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def resync_step(job_id: int) -> None:
    """One bounded step of a resync job; re-queued while the job is active."""
    outcome = resync_advance(job_id=job_id)
    if outcome.requeue_in is not None:
        resync_kick(job_id, countdown=outcome.requeue_in)


@shared_task(name="channels.resync_advance", ignore_result=True)
def resync_advance_all() -> int:
    """Beat safety net: a step of every active resync job; incidents that recovered close."""
    return resync_kick_active()


@shared_task(name="channels.reconcile", ignore_result=True)
def reconcile() -> int:
    """Beat: one reconciliation run per channel behind its cycle."""
    channel_ids = channels_due()
    for channel_id in channel_ids:
        reconcile_channel_task.delay(channel_id)
    return len(channel_ids)


@shared_task(name="channels.reconcile_channel", ignore_result=True, expires=300)
def reconcile_channel_task(channel_id: int, force: bool = False) -> int:
    return reconcile_channel(channel_id=channel_id, force=force).checked


# --- nightly catalog refresh (queue `bulk`) -----------------------------------------------------


@shared_task(name="channels.catalog_refresh_step", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def catalog_refresh_step_task(refresh_id: int) -> None:
    """One bounded step of a catalog refresh; re-queued while it is active."""
    from .services.catalog_refresh import catalog_refresh_kick, catalog_refresh_step

    outcome = catalog_refresh_step(refresh_id=refresh_id)
    if outcome.requeue_in is not None:
        catalog_refresh_kick(refresh_id, countdown=outcome.requeue_in)


@shared_task(name="channels.catalog_refresh_scheduled", ignore_result=True, expires=3600)
def catalog_refresh_scheduled(channel_id: int) -> int | None:
    """django-celery-beat's per-channel schedule (`catalog-refresh:<channel id>`): start the
    channel's nightly refresh; skipped while one is active or the channel is disabled."""
    from .services.refresh_schedule import catalog_refresh_from_schedule

    return catalog_refresh_from_schedule(channel_id=channel_id)


@shared_task(name="channels.catalog_refresh_advance", ignore_result=True)
def catalog_refresh_advance() -> int:
    """Beat safety net: a step of every active refresh nobody holds (lost steps, killed workers)."""
    from .services.catalog_refresh import catalog_refresh_kick_active

    return catalog_refresh_kick_active()


# --- threshold rules ---------------------------------------------------------------------------


@shared_task(name="channels.held_release", ignore_result=True)
def held_release() -> int:
    """Beat: release changes held by threshold rules whose batch time came (also under a rule
    shortened or deleted since) and wake their channels; the flush sends them whatever their
    size."""
    from .services.thresholds import held_release as release

    channel_ids = set(release())
    channel_ids -= circuits_holding(channel_ids=channel_ids)  # open circuits wait for their probe
    return sum(wake_channel(pk) for pk in sorted(channel_ids))
