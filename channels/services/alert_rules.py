"""The alert rules: every enabled channel against its thresholds (`ChannelHealth`), on a beat.

Each rule opens (or refreshes) its alert while its condition holds and clears it when the
condition no longer does, through `alert_raise` / `alert_clear` only:

- dead_channel: the circuit is open, or no successful write in 2 × `expected_interval_s` while
  work is owed (marks pending for longer than that, or marks given up while writes fail);
- degraded_channel: failures over attempts in `degraded_window_s` above `degraded_error_rate`,
  with at least `degraded_min_attempts` attempts (throttled and shadow attempts are neither);
- inbound_silence: no inbound event (order webhooks, polled orders) for longer than
  `inbound_silence_s`, or, when that is empty, than INBOUND_SILENCE_FACTOR × the usual (p95)
  gap between its recent events, never under INBOUND_SILENCE_FLOOR_S; only for channels that
  have sent some;
- drift belongs to reconciliation: evaluation never clears it.

Per channel a handful of queries, each bounded by an index (attempts by channel and time
within the larger window, marks by channel, the last events by channel and time).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from ..models import (
    Alert,
    Channel,
    ChannelCircuit,
    ChannelHealth,
    InboundEvent,
    SyncAttempt,
    SyncMark,
)
from .alerts import alert_clear, alert_raise, health_of

log = logging.getLogger(__name__)

Kind = Alert.Kind
Status = SyncAttempt.Status
DELIVERED = (Status.SUCCESS, Status.IGNORED)  # a shadow channel's "ignored" is a working channel
# How many recent inbound events the usual gap is learned from, and how few are too few.
SILENCE_SAMPLE = 200
SILENCE_MIN_EVENTS = 5
# Kinds the evaluation owns (and clears when a channel is paused); drift is reconciliation's.
EVALUATED = (Kind.DEAD_CHANNEL, Kind.DEGRADED_CHANNEL, Kind.INBOUND_SILENCE)


@dataclass(frozen=True)
class Finding:
    """One rule's verdict: `tripped` with what tripped it, or not with how it stands now."""

    tripped: bool
    detail: str
    data: dict = field(default_factory=dict)


def alerts_evaluate(*, now: datetime | None = None) -> dict[str, int]:
    """Evaluate every enabled channel; returns how many alerts were opened, refreshed, cleared."""
    now = now or timezone.now()
    counts = {"opened": 0, "refreshed": 0, "cleared": 0}
    channels = list(Channel.objects.filter(enabled=True).order_by("pk"))
    ids = [c.pk for c in channels]
    thresholds = {h.channel_id: h for h in ChannelHealth.objects.filter(channel_id__in=ids)}
    circuits = {c.channel_id: c for c in ChannelCircuit.objects.filter(channel_id__in=ids)}
    open_alerts: dict[int, dict[str, Alert]] = {}
    for alert in Alert.objects.filter(cleared_at__isnull=True, channel_id__in=ids):
        open_alerts.setdefault(alert.channel_id, {})[alert.kind] = alert
    for channel in channels:
        health = thresholds.get(channel.pk) or health_of(channel)
        findings = channel_findings(channel, health, circuits.get(channel.pk), now=now)
        for kind, finding in findings.items():
            _apply(channel, kind, finding, open_alerts.get(channel.pk, {}).get(kind), counts, now)
    counts["cleared"] += _clear_paused(now)
    return counts


def channel_findings(
    channel: Channel, health: ChannelHealth, circuit: ChannelCircuit | None, *, now: datetime
) -> dict[str, Finding | None]:
    """Each rule's finding for one channel (None: the rule does not apply, e.g. inbound
    silence on a channel that never sent an order)."""
    dead_window = timedelta(seconds=2 * health.expected_interval_s)
    degraded_window = timedelta(seconds=health.degraded_window_s)
    window_start = now - max(dead_window, degraded_window)
    dead_since, degraded_since = now - dead_window, now - degraded_window
    attempts = SyncAttempt.objects.filter(channel=channel, timestamp__gte=window_start, timestamp__lte=now).aggregate(
        delivered_recently=Count("id", filter=Q(status__in=DELIVERED, timestamp__gte=dead_since)),
        failed_recently=Count("id", filter=Q(status=Status.FAILURE, timestamp__gte=dead_since)),
        delivered=Count("id", filter=Q(status__in=DELIVERED, timestamp__gte=degraded_since)),
        failed=Count("id", filter=Q(status=Status.FAILURE, timestamp__gte=degraded_since)),
    )
    return {
        Kind.DEAD_CHANNEL: _dead(channel, health, circuit, attempts, now),
        Kind.DEGRADED_CHANNEL: _degraded(channel, health, attempts, now),
        Kind.INBOUND_SILENCE: _silence(channel, health, now),
    }


def _apply(channel: Channel, kind: str, finding: Finding | None, open_alert: Alert | None, counts, now) -> None:
    if finding is None or not finding.tripped:
        if open_alert is not None:
            detail = f"recovered: {finding.detail}" if finding else "recovered: the rule no longer applies"
            if kind == Kind.DEAD_CHANNEL:
                detail = _dead_recovery(channel, open_alert)
            if alert_clear(channel=channel, kind=kind, detail=detail):
                counts["cleared"] += 1
                log.info("alert %s on %s cleared: %s", kind, channel.name, detail)
        return
    _, opened = alert_raise(channel=channel, kind=kind, detail=finding.detail, data=finding.data)
    counts["opened" if opened else "refreshed"] += 1
    if opened:
        log.warning("alert %s on %s opened: %s", kind, channel.name, finding.detail)


def _clear_paused(now: datetime) -> int:
    """An operator who pauses a channel has seen it: its evaluated alerts clear."""
    cleared = 0
    paused = Alert.objects.filter(cleared_at__isnull=True, kind__in=EVALUATED, channel__enabled=False)
    for channel_id, kind in paused.values_list("channel_id", "kind"):
        if alert_clear(channel=channel_id, kind=kind, detail="cleared: the channel was paused by an operator"):
            cleared += 1
    return cleared


# --- dead channel ---------------------------------------------------------------------------


def _dead(channel, health: ChannelHealth, circuit: ChannelCircuit | None, attempts: dict, now: datetime) -> Finding:
    window_s = 2 * health.expected_interval_s
    cutoff = now - timedelta(seconds=window_s)
    marks = SyncMark.objects.pending().filter(channel=channel).aggregate(
        owed=Count("id", filter=Q(failed_at__isnull=True)),
        # A change a threshold rule holds back is owed from when its hold ends, not before.
        owed_long=Count("id", filter=Q(failed_at__isnull=True, first_committed_at__lte=cutoff)
                        & (Q(held_since__isnull=True) | Q(due_at__lte=cutoff))),
        oldest=Min("first_committed_at", filter=Q(failed_at__isnull=True)),
        given_up=Count("id", filter=Q(failed_at__isnull=False)),
    )
    delivered, failed = attempts["delivered_recently"], attempts["failed_recently"]
    circuit_open = circuit is not None and circuit.state != ChannelCircuit.State.CLOSED
    oldest_age = round((now - marks["oldest"]).total_seconds(), 1) if marks["oldest"] else None
    data = {
        "window_s": window_s,
        "expected_interval_s": health.expected_interval_s,
        "successes_in_window": delivered,
        "failures_in_window": failed,
        "owed": marks["owed"],
        "owed_longer_than_window": marks["owed_long"],
        "given_up": marks["given_up"],
        "oldest_owed_age_s": oldest_age,
        "circuit": _circuit_data(circuit),
    }
    # Given-up marks are owed work too, but only count while writes are failing: an old SKU
    # the channel refused for its own reasons does not make an idle channel dead.
    owed_work = marks["owed_long"] or (marks["given_up"] and failed)
    starving = not delivered and owed_work
    if not (circuit_open or starving):
        return Finding(False, f"{_count(delivered, 'successful write')} in the last {_duration(window_s)}", data)
    last_success = (
        SyncAttempt.objects.filter(channel=channel, status__in=DELIVERED, timestamp__gte=now - timedelta(days=1))
        .order_by("-timestamp").values_list("timestamp", flat=True).first()
    )
    data["last_success_at"] = last_success.isoformat() if last_success else None
    owed_words = _count(marks["owed"], "change") + " owed" + (f" (oldest for {_duration(oldest_age)})" if oldest_age else "")
    if marks["given_up"]:
        owed_words += f", {marks['given_up']} given up"
    interval = _duration(health.expected_interval_s)
    words = [f"No successful write in {_duration(window_s)} (2 × expected interval {interval}) while {owed_words}"]
    if failed:
        words.append(f"{_count(failed, 'failed attempt')} in that time")
    words.append(f"last success {_when(last_success, now)}" if last_success else "no success in the last day")
    if circuit_open:
        words.append(
            f"circuit {'open' if circuit.state == ChannelCircuit.State.OPEN else 'half-open (probing)'} since "
            f"{_when(circuit.opened_at, now)} after {circuit.consecutive_failures} failed "
            f"batches ({circuit.reason or 'no detail'}), next probe {_when(circuit.probe_at, now)}"
        )
    return Finding(True, "; ".join(words) + ".", data)


def _dead_recovery(channel: Channel, alert: Alert) -> str:
    since_open = SyncAttempt.objects.filter(channel=channel, status__in=DELIVERED, timestamp__gte=alert.opened_at)
    successes = since_open.count()
    first_at = since_open.order_by("timestamp").values_list("timestamp", flat=True).first()
    if successes:
        return f"recovered: {_count(successes, 'successful write')} since {first_at.isoformat(timespec='seconds')}"
    return "recovered: nothing is owed any more"


def _circuit_data(circuit: ChannelCircuit | None) -> dict:
    if circuit is None:
        return {"state": ChannelCircuit.State.CLOSED}
    return {
        "state": circuit.state,
        "consecutive_failures": circuit.consecutive_failures,
        "opened_at": circuit.opened_at.isoformat() if circuit.opened_at else None,
        "probe_at": circuit.probe_at.isoformat() if circuit.probe_at else None,
        "probes": circuit.probes,
        "reason": circuit.reason,
    }


# --- degraded channel -----------------------------------------------------------------------


def _degraded(channel, health: ChannelHealth, attempts: dict, now: datetime) -> Finding:
    delivered, failed = attempts["delivered"], attempts["failed"]
    total = delivered + failed
    rate = failed / total if total else 0.0
    data = {
        "window_s": health.degraded_window_s,
        "attempts": total,
        "failures": failed,
        "error_rate": round(rate, 4),
        "threshold": health.degraded_error_rate,
        "min_attempts": health.degraded_min_attempts,
    }
    share = f"{rate:.0%} of {total} attempts failed in the last {_duration(health.degraded_window_s)}"
    if total < health.degraded_min_attempts or rate <= health.degraded_error_rate:
        return Finding(False, share, data)
    codes = list(
        SyncAttempt.objects.filter(channel=channel, status=Status.FAILURE, timestamp__gte=now - timedelta(seconds=health.degraded_window_s))
        .values("error_code").annotate(n=Count("id")).order_by("-n")[:3]
    )
    data["top_errors"] = {row["error_code"] or "unknown": row["n"] for row in codes}
    errors = ", ".join(f"{code} ×{n}" for code, n in data["top_errors"].items())
    return Finding(
        True,
        f"{share} (threshold {health.degraded_error_rate:.0%}, at least {health.degraded_min_attempts} attempts); "
        f"errors: {errors or 'none recorded'}.",
        data,
    )


# --- inbound silence ------------------------------------------------------------------------


def _silence(channel, health: ChannelHealth, now: datetime) -> Finding | None:
    sample = 1 if health.inbound_silence_s else SILENCE_SAMPLE
    times = list(
        InboundEvent.objects.filter(channel=channel, received_at__lte=now)
        .order_by("-received_at").values_list("received_at", flat=True)[:sample]
    )
    if not times:
        return None  # never sent anything: nothing to miss
    last = times[0]
    silent_s = (now - last).total_seconds()
    data: dict = {"last_event_at": last.isoformat(), "silent_s": round(silent_s, 1)}
    if health.inbound_silence_s:
        threshold_s = float(health.inbound_silence_s)
        basis = f"its threshold is {_duration(threshold_s)}"
    else:
        if len(times) < SILENCE_MIN_EVENTS:
            return None  # too few events to know its usual gap
        gaps = sorted((a - b).total_seconds() for a, b in itertools.pairwise(times))
        usual = gaps[min(len(gaps) - 1, round(0.95 * (len(gaps) - 1)))]
        config = settings.SYNCSVC
        threshold_s = max(config["INBOUND_SILENCE_FLOOR_S"], config["INBOUND_SILENCE_FACTOR"] * usual)
        data.update(usual_gap_s=round(usual, 1), learned_from=len(times))
        basis = (f"its usual gap is {_duration(usual)} (p95 of the last {len(times)} events), "
                 f"so it alerts after {_duration(threshold_s)}")
    data["threshold_s"] = round(threshold_s, 1)
    if silent_s <= threshold_s:
        return Finding(False, f"an event arrived {_duration(silent_s)} ago (at {last.isoformat(timespec='seconds')})", data)
    return Finding(
        True,
        f"No order or other event from {channel.name} for {_duration(silent_s)} (last at "
        f"{last.isoformat(timespec='seconds')}); {basis}.",
        data,
    )


# --- words ----------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 180:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "none in the last day"
    delta = (now - moment).total_seconds()
    at = moment.isoformat(timespec="seconds")
    return f"{at} ({_duration(delta)} ago)" if delta >= 0 else f"{at} (in {_duration(-delta)})"
