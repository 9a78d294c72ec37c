"""The faults, one function each: called under load, it returns when its fault is over and
the stack is whole again (a killed worker restarted, a store's faults cleared)."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from tests.support.sandbox import wait_until


@dataclass(frozen=True)
class Durations:
    """How long each fault lasts: the full run's figures, or the short form's."""

    outage_s: float  # 503s
    storm_s: float  # 429s with Retry-After
    tokens_s: float  # expired tokens
    slow_s: float  # 2 s answers
    kills: int  # SIGKILLs per kill fault
    between_kills_s: float
    beat_stopped_s: float


FULL = Durations(outage_s=60, storm_s=30, tokens_s=20, slow_s=30, kills=3, between_kills_s=5, beat_stopped_s=300)
SHORT = Durations(outage_s=5, storm_s=3, tokens_s=3, slow_s=5, kills=2, between_kills_s=1.5, beat_stopped_s=3)


def _mid_flush() -> bool:
    """Some mark is claimed by a flush that has not finished (its lease is running)."""
    from django.utils import timezone

    from channels.models import SyncMark

    return SyncMark.objects.pending().filter(lease_until__gt=timezone.now()).exists()


def _strike_mid_flush(scenario) -> None:
    wait_until(_mid_flush, timeout=20, interval=0.005, message="no flush was ever caught in flight")


def _between_kills(driver, durations: Durations, n: int) -> None:
    # No wait after the last kill: the fault ends when the stack is whole again, so the time
    # to converge includes the leases running out and the sweep re-waking the channels.
    if n < durations.kills - 1:
        driver.wait(durations.between_kills_s)


def kill_worker_child(durations: Durations):
    def fault(scenario, driver) -> frozenset[int]:
        for n in range(durations.kills):
            _strike_mid_flush(scenario)
            for pid in scenario.live.processes.worker_children():
                os.kill(pid, signal.SIGKILL)
            _between_kills(driver, durations, n)
        # the main process forks new pool children by itself
        wait_until(lambda: scenario.live.processes.worker_children(), timeout=30, message="no new pool children")
        return frozenset()

    return fault


def kill_worker_main(durations: Durations):
    def fault(scenario, driver) -> frozenset[int]:
        processes = scenario.live.processes
        for n in range(durations.kills):
            _strike_mid_flush(scenario)
            worker = processes.children["worker"]
            os.killpg(worker.pid, signal.SIGKILL)  # the main process and its pool: a host lost
            worker.process.wait(10)
            # the restarted worker waits for "ready." in a fresh log, not the dead one's
            worker.log_path.rename(worker.log_path.with_name(f"worker-killed-{time.time_ns()}.log"))
            processes.start_worker()
            _between_kills(driver, durations, n)
        return frozenset()

    return fault


def channel_answering(status: int, seconds: float, *, kind: str = "shopify"):
    """The channel answers `status` to every call for `seconds` (a 429 carries Retry-After: 1)."""

    def fault(scenario, driver) -> frozenset[int]:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        try:
            extra = {"retry_after": 1} if status == 429 else {}
            sandbox.fault(kind, store, status=status, seconds=seconds, **extra)
            driver.wait(seconds)
        finally:
            sandbox.fault(kind, store, clear=True)
        return frozenset({status})

    return fault


def expired_tokens(seconds: float, *, kind: str = "shopify"):
    """For `seconds`, the channel's token expires once a second: one 401 at a time, as an
    expired token looks; the adapter refreshes it (or resends once) as the contract suite shows."""

    def fault(scenario, driver) -> frozenset[int]:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sandbox.fault(kind, store, status=401, count=1)
                driver.wait(1.0)
        finally:
            sandbox.fault(kind, store, clear=True)
        return frozenset({401})

    return fault


def slow_channel(durations: Durations, kind: str = "woocommerce"):
    def fault(scenario, driver) -> frozenset[int]:
        sandbox, store = scenario.live.sandbox, scenario.stores[kind]
        try:
            sandbox.fault(kind, store, latency_ms=2000)
            driver.wait(durations.slow_s)
        finally:
            sandbox.fault(kind, store, clear=True)
        return frozenset()

    return fault


def beat_stopped_then_two_beats(durations: Durations):
    """Beat stops for `beat_stopped_s` (a pool child is killed mid-flush meanwhile, so the
    sweep beat runs is owed work), then two beats start at once; afterwards one is left."""

    def fault(scenario, driver) -> frozenset[int]:
        processes = scenario.live.processes
        processes.children["beat"].stop()
        _strike_mid_flush(scenario)
        for pid in processes.worker_children():
            os.kill(pid, signal.SIGKILL)
        driver.wait(durations.beat_stopped_s)
        processes.start_beat()
        second = processes.start_beat(name="beat-2")
        driver.wait(max(3.0, durations.beat_stopped_s / 10))
        second.stop()
        del processes.children["beat-2"]
        return frozenset()

    return fault


FAULTS = {
    "worker pool child SIGKILLed mid-flush": kill_worker_child,
    "worker main process SIGKILLed mid-flush, restarted": kill_worker_main,
    "Shopify answering 503": lambda durations: channel_answering(503, durations.outage_s),
    "Shopify 429 storm with Retry-After": lambda durations: channel_answering(429, durations.storm_s),
    "Shopify tokens expiring (401)": lambda durations: expired_tokens(durations.tokens_s),
    "WooCommerce answering in 2 s instead of 20 ms": slow_channel,
    "beat stopped (a pool child killed meanwhile), then two beats at once": beat_stopped_then_two_beats,
}
SHORT_FORM = ("worker pool child SIGKILLed mid-flush", "Shopify answering 503")
