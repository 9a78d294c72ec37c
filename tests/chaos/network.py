"""Network faults between the worker and one channel, through a loopback TCP proxy the fault
starts in front of the sandbox (tests/support/tcp_proxy.py): the channel's base URL is pointed
at the proxy, which passes traffic for a moment, then drops it (a black hole, then resets,
then the answers to writes cut off after the shop applied them: the ambiguous case), then
delays it (1.5 s each way, then 300 ± 300 ms), then heals.

`NETWORK_FAULTS` has the shape of `faults.FAULTS` (name -> factory taking `Durations`); each
factory returns a `NetworkFault`, called as `fault(scenario, driver)` like the others, which
returns an `Effect` (evidence.py): one claim per phase, that its fault hit the worker's calls
(a phase runs on past its length until it has, up to `BITE_TIMEOUT_S`), from what the proxy
counted and, for the cut answers, from the store's request log. The proxy stays up, healed,
after the fault returns, so the channel converges over the same path the faults hit; the
Effect's check for afterwards stops it (`close()` does too). `phases`, `writes_cut` and
`counts()` keep what was counted, for a test to assert on.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields

from tests.chaos.evidence import Claim, Effect
from tests.chaos.faults import Durations
from tests.support.tcp_proxy import ModeCounts, TcpProxy

BITE_TIMEOUT_S = 60.0  # a phase runs on past its length until its fault has bitten once
CUT_MARGIN_S = 1.0  # a write counts as cut if the shop finished it this long before the phase ended
# The calls that change a shop, as the sandbox logs them: a cut answer to one of these is the
# ambiguous case (the shop applied it, the worker never learned).
SHOPIFY_WRITES = frozenset({"inventorySetQuantities", "productVariantsBulkUpdate"})
# What the proxy finds in a write's request, to cut its answer and let the reads before it
# through (cutting every answer would stop a Shopify stock push at its read, before the write).
WRITE_MARKERS = {"shopify": b"mutation", "woocommerce": b"/batch"}
DELAY_MS = 1500
JITTER_BASE_MS, JITTER_MS = 300, 300


@dataclass(frozen=True)
class NetworkDurations:
    """How long each phase lasts, taken from the run's `Durations`: the drops share the
    outage's length, the delays the slow channel's."""

    passing_s: float
    blackhole_s: float
    resets_s: float
    cut_s: float
    delay_s: float
    jitter_s: float

    @classmethod
    def of(cls, durations: Durations) -> NetworkDurations:
        drop, delay = durations.outage_s / 3, durations.slow_s / 2
        return cls(passing_s=2.0, blackhole_s=drop, resets_s=drop, cut_s=drop, delay_s=delay, jitter_s=delay)


@dataclass(frozen=True)
class Phase:
    """One phase as it ran: the proxy's mode, how long, what that mode counted meanwhile, and
    whether the fault bit (`BITES` says what proves that, mode by mode)."""

    name: str
    mode: str
    says: str
    seconds: float
    counted: ModeCounts
    bitten: bool
    writes_cut: tuple[str, ...] = ()  # "cut" only: writes the shop applied whose answers were dropped

    def evidence(self) -> str:
        c = self.counted
        cut = ""
        if self.mode == "cut":
            what = ", ".join(f"{name} x {n}" for name, n in Counter(self.writes_cut).most_common())
            cut = f", {len(self.writes_cut)} writes applied with their answers cut ({what or 'none'})"
        return (f"{self.name}: {self.seconds:.1f} s, {c.connections} connections, {c.broken} broken, "
                f"{c.bytes_up}/{c.bytes_down} bytes up/down delivered, {c.bytes_dropped} dropped{cut}")

    def claim(self) -> Claim:
        return Claim(self.says, self.bitten, self.evidence())


# What proves each mode bit: traffic went through it, or it broke a connection.
BITES: dict[str, Callable[[ModeCounts], bool]] = {
    "pass": lambda c: c.bytes_down > 0,  # the worker's calls really go through the proxy
    "blackhole": lambda c: c.broken > 0 and c.bytes_dropped > 0,  # a call swallowed, its client gave up
    "reset": lambda c: c.broken > 0,  # a connection reset
    "cut": lambda c: c.broken > 0 and c.bytes_up > 0 and c.bytes_dropped > 0,  # sent on, its answer dropped
    "delay": lambda c: c.bytes_up > 0 and c.bytes_down > 0,  # calls answered, late
}


def is_write(kind: str, entry: dict) -> bool:
    """A sandbox request-log entry that changed the shop (as far as the call goes)."""
    if kind == "shopify":
        return bool(SHOPIFY_WRITES & set(entry.get("operations") or ()))
    if kind == "woocommerce":
        return entry["method"] == "POST" and "/batch" in entry["path"].split("?")[0]
    return entry["method"] in ("POST", "PUT", "PATCH", "DELETE")


def write_name(kind: str, entry: dict) -> str:
    """How a write shows in the evidence: its Shopify operations, else method and path."""
    if kind == "shopify":
        return "+".join(sorted(SHOPIFY_WRITES & set(entry.get("operations") or ())))
    return f"{entry['method']} {entry['path'].split('?')[0].rsplit('/wp-json/wc/v3', 1)[-1]}"


def _minus(after: ModeCounts, before: ModeCounts) -> ModeCounts:
    return ModeCounts(**{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(ModeCounts)})


class NetworkFault:
    """The network between the worker and the scenario's `kind` channel fails, phase by phase."""

    def __init__(self, durations: Durations, *, kind: str) -> None:
        self.kind = kind
        self.durations = NetworkDurations.of(durations)
        self.proxy: TcpProxy | None = None
        self.phases: list[Phase] = []
        self.writes_cut = 0  # writes the shop applied whose answers the proxy cut off
        self._sandbox = None
        self._store = ""
        self._healed_at = ModeCounts()

    def __call__(self, scenario, driver) -> Effect:
        from channels.models import Channel

        self._sandbox, self._store = scenario.live.sandbox, scenario.stores[self.kind]
        self.proxy = TcpProxy(scenario.live.sandbox_url).start()
        base_url = f"{self.proxy.url}/{self.kind}/{self._store}"
        # The worker reads the channel at each flush: its next calls go through the proxy.
        Channel.objects.filter(pk=scenario.channels[self.kind].pk).update(base_url=base_url)
        d, proxy, kind = self.durations, self.proxy, self.kind
        self._phase(driver, "pass-through", proxy.heal, d.passing_s,
                    f"the worker's calls to {kind} went through the proxy")
        self._phase(driver, "black hole", proxy.blackhole, d.blackhole_s,
                    "a black hole swallowed calls until the worker gave up on them")
        self._phase(driver, "resets", proxy.reset, d.resets_s, "resets broke the worker's connections")
        self._phase(driver, "cut responses", lambda: proxy.cut_responses(matching=WRITE_MARKERS.get(kind)), d.cut_s,
                    f"{kind} applied writes whose answers were cut off (the worker never learned)")
        self._phase(driver, f"delay {DELAY_MS} ms", lambda: proxy.delay(DELAY_MS), d.delay_s,
                    f"calls were answered {DELAY_MS} ms late each way")
        self._phase(driver, f"delay {JITTER_BASE_MS} ± {JITTER_MS} ms",
                    lambda: proxy.delay(JITTER_BASE_MS, jitter_ms=JITTER_MS), d.jitter_s,
                    f"calls were answered {JITTER_BASE_MS} ± {JITTER_MS} ms late each way")
        proxy.heal()  # and stays up: the channel converges through it
        self._healed_at = proxy.counts()["pass"]
        # No HTTP status of its own to look for in the request logs: the proxy is below HTTP.
        return Effect(claims=[phase.claim() for phase in self.phases], afterwards=[self._carried_to_convergence])

    def _phase(self, driver, name: str, start: Callable[[], None], seconds: float, says: str) -> None:
        proxy = self.proxy
        start()
        mode = proxy.mode
        before = proxy.counts()[mode]
        began, began_at = time.monotonic(), time.time()

        def bitten() -> bool:
            if not BITES[mode](_minus(proxy.counts()[mode], before)):
                return False
            return mode != "cut" or bool(self._writes_applied_unanswered(began_at, time.time()))

        driver.wait(seconds)
        while not bitten() and time.monotonic() - began < seconds + BITE_TIMEOUT_S:
            driver.wait(0.25)  # the load goes on until the fault has hit a call (a cut: a write)
        proven = bitten()
        writes_cut = self._writes_applied_unanswered(began_at, time.time()) if mode == "cut" else ()
        self.writes_cut += len(writes_cut)
        counted = _minus(proxy.counts()[mode], before)
        self.phases.append(Phase(name, mode, says, time.monotonic() - began, counted, proven, writes_cut))

    def _carried_to_convergence(self) -> Claim:
        """Asked once the channel has converged (or given up on): the healed proxy was still
        the channel's path then. Stops the proxy."""
        up = self.proxy is not None and self.proxy.running and self.proxy.mode == "pass"
        since_heal = _minus(self.proxy.counts()["pass"], self._healed_at) if self.proxy else ModeCounts()
        self.close()
        return Claim("the healed proxy stayed the channel's path until it converged", up,
                     f"{since_heal.connections} connections, {since_heal.bytes_down} bytes answered after healing")

    def _writes_applied_unanswered(self, since: float, until: float) -> tuple[str, ...]:
        """Writes the shop carried out (answered below 400) inside a window in which the proxy
        cut every write's answer, finished well before its end (so their answers reached the
        proxy while it still cut them): each was applied and the worker never heard of it."""
        entries = self._sandbox.requests(self.kind, self._store, since=since)
        return tuple(write_name(self.kind, e) for e in entries if e["status"] < 400 and is_write(self.kind, e)
                     and e["ts"] + e["duration_ms"] / 1000 < until - CUT_MARGIN_S)

    def unproven(self) -> list[str]:
        """The phases whose fault never hit a call (with what the proxy counted in them)."""
        if self.proxy is None:
            return ["the fault never ran"]
        return [phase.evidence() for phase in self.phases if not phase.bitten]

    def counts(self) -> dict[str, ModeCounts]:
        """Everything the proxy counted so far, by mode (the convergence after the fault
        counts under "pass")."""
        return self.proxy.counts() if self.proxy else {}

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()


NETWORK_FAULTS: dict[str, Callable[[Durations], NetworkFault]] = {
    "Shopify network dropped (black hole, resets, cut responses), then delayed (1.5 s, 300 ± 300 ms)":
        lambda durations: NetworkFault(durations, kind="shopify"),
    "WooCommerce network dropped (black hole, resets, cut responses), then delayed (1.5 s, 300 ± 300 ms)":
        lambda durations: NetworkFault(durations, kind="woocommerce"),
}
