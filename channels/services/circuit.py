"""The circuit breaker of a channel: a dead channel is paused, probed, resumed.

Closed is normal. After `CIRCUIT_FAILURES` consecutive failed batches (every item of the batch
failed with a retryable or an auth error: 5xx, timeouts, refused connections, refused
credentials; throttles do not count) it opens: flushes stop calling the channel, so no
retries are burned and the marks stay owed, untouched. At `probe_at` one flush may probe
(half-open): one small batch, whose failures count no attempt and give nothing up. Its success
closes the circuit, makes everything that waited out the outage due now (and owes again what
was given up just before it opened), and wakes the channel; its failure opens it again, the
next probe twice as far away (up to `CIRCUIT_PROBE_CAP_S`).

    gate = circuit_gate(channel_id=...)        # before claiming
    if not gate.allowed: stop
    ... push one batch ...
    gate = circuit_record(gate=gate, verdict=batch_verdict(results))
    circuit_release(gate=gate)                 # when the flush ends (a probe that sent nothing)
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..adapters.base import Outcome, PushResult
from ..models import ChannelCircuit, SyncMark
from ..wakeups import wake_channel

log = logging.getLogger(__name__)

State = ChannelCircuit.State
NOT_CLOSED = (State.OPEN, State.HALF_OPEN)


class Verdict(str, enum.Enum):
    """What one batch says about the channel."""

    ANSWERED = "answered"  # something was delivered, or the channel judged an item (permanent)
    FAILED = "failed"  # nothing delivered: retryable or auth errors only (and throttles)
    NEUTRAL = "neutral"  # throttled only, or nothing sent: says nothing


def batch_verdict(results: Sequence[PushResult]) -> Verdict:
    outcomes = {result.outcome for result in results}
    if Outcome.OK in outcomes or Outcome.PERMANENT in outcomes:
        return Verdict.ANSWERED
    if Outcome.RETRY in outcomes or Outcome.AUTH in outcomes:
        return Verdict.FAILED
    return Verdict.NEUTRAL


@dataclass(frozen=True)
class Gate:
    """What the breaker lets one flush do."""

    channel_id: int
    allowed: bool
    probe: bool = False  # this flush is the probe: one small batch
    clean: bool = True  # closed with no failure counted: a success has nothing to reset
    probe_pending: bool = False  # the probe claimed is not settled yet

    def batches(self, default: int) -> int:
        return 1 if self.probe else default

    def batch_limit(self, default: int) -> int:
        return min(default, settings.SYNCSVC["CIRCUIT_PROBE_ITEMS"]) if self.probe else default


def circuit_gate(*, channel_id: int, now: datetime | None = None) -> Gate:
    """May a flush call the channel now? Claims the probe when one is due (one flusher wins)."""
    now = now or timezone.now()
    row = (
        ChannelCircuit.objects.filter(channel_id=channel_id)
        .values_list("state", "probe_at", "consecutive_failures")
        .first()
    )
    if row is None:
        return Gate(channel_id, allowed=True)
    state, probe_at, failures = row
    if state == State.CLOSED:
        return Gate(channel_id, allowed=True, clean=not failures)
    if probe_at is not None and probe_at > now:
        return Gate(channel_id, allowed=False)
    # A probe is due (or a half-open probe's flusher died: its lease is over). The conditional
    # update is the claim: exactly one flusher moves the row on from what it read.
    claimed = ChannelCircuit.objects.filter(channel_id=channel_id, state=state, probe_at=probe_at).update(
        state=State.HALF_OPEN,
        probe_at=now + timedelta(seconds=settings.SYNCSVC["LEASE_S"]),
        probes=F("probes") + 1,
    )
    if not claimed:
        return Gate(channel_id, allowed=False)
    log.info("channel %s: circuit half-open, probing", channel_id)
    return Gate(channel_id, allowed=True, probe=True, clean=False, probe_pending=True)


def circuit_record(*, gate: Gate, verdict: Verdict, detail: str = "", now: datetime | None = None) -> Gate:
    """Count one batch's verdict; returns the gate for the flush's next batch."""
    if verdict is Verdict.ANSWERED:
        if gate.clean:
            return gate  # the common case: closed, nothing to reset, no statement
        circuit_close(channel_id=gate.channel_id, detail="a batch was delivered", now=now)
        return replace(gate, probe=False, clean=True, probe_pending=False)
    if verdict is Verdict.FAILED:
        opened = _record_failure(channel_id=gate.channel_id, detail=detail, now=now or timezone.now())
        return replace(gate, allowed=not opened, clean=False, probe_pending=False)
    return gate


def circuit_release(*, gate: Gate, now: datetime | None = None) -> None:
    """A probe that sent nothing (nothing was due, or the rate limit held it) leaves the circuit
    open with the probe due again, not counted as a failed one."""
    if not gate.probe_pending:
        return
    ChannelCircuit.objects.filter(channel_id=gate.channel_id, state=State.HALF_OPEN).update(
        state=State.OPEN, probe_at=now or timezone.now(), probes=F("probes") - 1
    )


def _probe_wait_s(probes: int) -> float:
    config = settings.SYNCSVC
    return min(config["CIRCUIT_PROBE_CAP_S"], config["CIRCUIT_PROBE_S"] * 2 ** max(0, probes))


def _record_failure(*, channel_id: int, detail: str, now: datetime) -> bool:
    """Count a failed batch; True when the circuit is open after it."""
    with transaction.atomic():
        ChannelCircuit.objects.get_or_create(channel_id=channel_id)
        circuit = ChannelCircuit.objects.select_for_update().get(channel_id=channel_id)
        circuit.consecutive_failures += 1
        circuit.reason = detail[:255]
        if circuit.state == State.HALF_OPEN:  # the probe failed: wait longer
            circuit.state = State.OPEN
            circuit.probe_at = now + timedelta(seconds=_probe_wait_s(circuit.probes))
            log.warning("channel %s: probe failed (%s); next probe at %s", channel_id, detail, circuit.probe_at)
        elif circuit.state == State.CLOSED and circuit.consecutive_failures >= settings.SYNCSVC["CIRCUIT_FAILURES"]:
            circuit.state = State.OPEN
            circuit.opened_at = now
            circuit.probes = 0
            circuit.probe_at = now + timedelta(seconds=_probe_wait_s(0))
            log.warning(
                "channel %s: circuit open after %d failed batches (%s); probe at %s",
                channel_id, circuit.consecutive_failures, detail, circuit.probe_at,
            )
        circuit.save()
        return circuit.state != State.CLOSED


def circuit_close(*, channel_id: int, detail: str = "", now: datetime | None = None) -> bool:
    """Close the circuit (a delivery got through, or an operator says so); when it was open,
    what waited out the outage is due now and the channel is woken. True if it was open."""
    now = now or timezone.now()
    with transaction.atomic():
        circuit = ChannelCircuit.objects.select_for_update().filter(channel_id=channel_id).first()
        if circuit is None:
            return False
        was_open = circuit.state in NOT_CLOSED
        opened_at = circuit.opened_at
        ChannelCircuit.objects.filter(channel_id=channel_id).update(
            state=State.CLOSED, consecutive_failures=0, opened_at=None, probe_at=None, probes=0, reason="",
            updated_at=now,
        )
        if was_open:
            _owe_what_waited(channel_id=channel_id, opened_at=opened_at or now, now=now)
            transaction.on_commit(lambda: wake_channel(channel_id))
    if was_open:
        log.info("channel %s: circuit closed (%s)", channel_id, detail)
    return was_open


def _owe_what_waited(*, channel_id: int, opened_at: datetime, now: datetime) -> None:
    """Marks in a backoff are due now; marks given up during the failing streak (before the
    breaker opened, or from an operator's MAX_ATTEMPTS below its threshold) are owed again:
    the outage was the channel's, not the SKU's. One given up for its own reason comes back
    once and is given up again on its first permanent answer."""
    config = settings.SYNCSVC
    streak_began = opened_at - timedelta(seconds=config["CIRCUIT_FAILURES"] * config["RETRY_CAP_S"])
    owed = SyncMark.objects.pending().filter(channel_id=channel_id)
    owed.filter(failed_at__isnull=True, attempts__gt=0, due_at__gt=now).update(due_at=now)
    owed.filter(failed_at__gte=streak_began).update(failed_at=None, attempts=0, due_at=now)


def circuits_holding(*, channel_ids: Iterable[int], now: datetime | None = None) -> set[int]:
    """The channels among these whose circuit keeps flushes away now (open, probe not due;
    or a probe in flight)."""
    ids = list(channel_ids)
    if not ids:
        return set()
    now = now or timezone.now()
    return set(
        ChannelCircuit.objects.filter(channel_id__in=ids, state__in=NOT_CLOSED)
        .filter(Q(probe_at__gt=now))
        .values_list("channel_id", flat=True)
    )


def circuit_probe_now(*, channel_id: int) -> bool:
    """An operator's "probe now": an open circuit's probe becomes due at once and the channel
    is woken. True if the circuit was open."""
    updated = ChannelCircuit.objects.filter(channel_id=channel_id, state__in=NOT_CLOSED).update(
        state=State.OPEN, probe_at=timezone.now()
    )
    if updated:
        transaction.on_commit(lambda: wake_channel(channel_id))
    return bool(updated)
