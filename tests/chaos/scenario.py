"""One chaos run: three sandbox channels under steady load, one fault, then the convergence
check (every channel shows what the PIM says, no change lost, every sale counted once) and a
row for the results table."""
from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tests.chaos.driver import LoadDriver, Tally
from tests.chaos.evidence import Claim, Effect

SKUS = [f"CHAOS-{n:02d}" for n in range(12)]
STOCK = 500
KINDS = ("shopify", "woocommerce", "webhook")
SALE_KINDS = ("shopify", "woocommerce")
RESULTS_DIR = Path(__file__).resolve().parents[2] / "var"


@dataclass
class Outcome:
    fault: str
    in_flight: int
    lost: int
    double_counted_sales: int
    resent_events: int
    converge_s: float | None
    tally: Tally
    divergences: list[str]
    error_answers: dict[int, int]  # status -> how many times the stores answered it in the run
    proof: list[Claim]  # what shows the fault took effect (evidence.py)

    def proof_failures(self) -> list[str]:
        return [claim.line() for claim in self.proof if not claim.held]

    def row(self) -> str:
        converge = f"{self.converge_s:.1f} s" if self.converge_s is not None else "did not converge"
        duplicates = f"{self.double_counted_sales} sales counted twice; {self.resent_events} resent events (applied once)"
        return f"| {self.fault} | {self.in_flight} | {self.lost} | {duplicates} | {converge} |"


TABLE_HEAD = ("| Fault | Changes in flight | Lost | Duplicate effects | Time to converge |\n"
              "|---|---|---|---|---|")


def write_table(outcomes: list[Outcome], *, path: Path, command: str) -> str:
    lines = [f"Chaos results (`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "", TABLE_HEAD]
    lines += [outcome.row() for outcome in outcomes]
    lines += ["", "What the stores answered with errors during each run (status x count):", ""]
    lines += [f"- {o.fault}: {', '.join(f'{status} x {n}' for status, n in o.error_answers.items()) or 'none'}; "
              f"load: {o.tally.prices} prices, {o.tally.stock_changes} stock receipts, {o.tally.sales_accepted} sales"
              for o in outcomes]
    lines += ["", "What showed that each fault took effect:", ""]
    lines += [f"- {o.fault}: " + "; ".join(f"{c.says} ({c.evidence})" if c.held else f"NOT SHOWN: {c.says} ({c.evidence})"
                                           for c in o.proof) for o in outcomes]
    lines += ["", ("Changes in flight: price edits, stock receipts and accepted sales made while the fault was on. "
              "Lost: channel values that never matched the PIM, last prices the PIM lost, sales the ledger "
              "missed. Resent events: webhook events delivered again after a fault and recognised by "
              "the receiver as duplicates (harmless). "
              "Time to converge: from the fault's end until every store shows the PIM's price and stock and "
              "the ledger holds every sale.")]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


class Scenario:
    """The stores, channels and catalog a fault runs against (inside a `live` test)."""

    def __init__(self, live, web_url: str) -> None:
        from tests.factories import product_with_variants, sandbox_channel

        self.live = live
        self.web_url = web_url
        prefix = f"chaos-{uuid.uuid4().hex[:8]}"
        self.stores = {kind: f"{prefix}-{kind}" for kind in KINDS}
        self.channels = {}
        for kind, store in self.stores.items():
            self.channels[kind] = sandbox_channel(live, kind, store, receiver_url=web_url if kind in SALE_KINDS else "")
            if kind != "webhook":
                for sku in SKUS:
                    live.sandbox.put_item(kind, store, sku, price="10.00", available=STOCK, title=sku)
        product_with_variants(handle=prefix, skus=SKUS, price="10.00", stock=STOCK)
        self.token = _pim_token()
        self.wait_converged(timeout=60, what="the initial sync")

    def driver(self) -> LoadDriver:
        return LoadDriver(web_url=self.web_url, token=self.token, sandbox_url=self.live.sandbox_url, skus=SKUS,
                          sale_stores=[(kind, self.stores[kind]) for kind in SALE_KINDS])

    def run(self, name: str, fault: Callable[[Scenario, LoadDriver], Effect], *, lead_in_s: float,
            converge_timeout_s: float) -> Outcome:
        """Load for `lead_in_s`, then `fault` (it returns when its fault is over and the stack
        is whole again) under the same load; then the load stops and the clock runs until
        everything agrees again. Then the fault's proof: its claims, its checks for
        afterwards, and the error statuses it makes a store answer, seen in the request logs."""
        started_at = time.time()
        driver = self.driver()
        driver.start()
        try:
            driver.wait(lead_in_s)
            driver.fault_on.set()
            effect = fault(self, driver)
            driver.fault_on.clear()
        finally:
            tally = driver.stop()
        ended = time.monotonic()
        converged = self.wait_converged(timeout=converge_timeout_s, what=name, tally=tally, raise_on_timeout=False)
        converge_s = time.monotonic() - ended if converged else None
        divergences = self.divergences(tally)
        sales = self._ledger_sales()
        values_lost = [d for d in divergences if not d.startswith("ledger ")]
        error_answers = self._error_answers(since=started_at)
        proof = [*effect.claims, *(check() for check in effect.afterwards)]
        proof += [Claim(f"a store answered {status}", status in error_answers, f"{error_answers.get(status, 0)} times")
                  for status in sorted(effect.statuses)]
        return Outcome(
            fault=name, in_flight=tally.during_fault,
            lost=len(values_lost) + max(0, tally.sales_accepted - sales),
            double_counted_sales=max(0, sales - tally.sales_accepted),
            resent_events=self._resent_events(), converge_s=converge_s, tally=tally, divergences=divergences,
            error_answers=error_answers, proof=proof,
        )

    # -- the convergence check ------------------------------------------------------------

    def divergences(self, tally: Tally | None = None) -> list[str]:
        """Everything that disagrees now: a store's price or stock against the PIM's (stock as
        `channels.safety.shown_quantities` says that channel is shown), a last price the PIM
        does not hold, and a ledger whose sales differ from what the stores accepted."""
        from channels.safety import shown_quantities
        from inventory.models import Variant

        variants = {v.sku: v for v in Variant.objects.filter(sku__in=SKUS)}
        found = []
        for kind, store in self.stores.items():
            channel = self.channels[kind]
            channel.refresh_from_db()
            shown = shown_quantities(channel, None, [v.pk for v in variants.values()])
            for sku, variant in variants.items():
                item = self.live.sandbox.item(kind, store, sku) or {}
                if item.get("price") is None or Decimal(str(item["price"])) != variant.price:
                    found.append(f"{kind} {sku} price {item.get('price')} != PIM {variant.price}")
                if item.get("available") != shown[variant.pk]:
                    found.append(f"{kind} {sku} stock {item.get('available')} != shown {shown[variant.pk]}")
        if tally is not None:
            for sku, price in tally.last_price.items():
                if variants[sku].price != Decimal(price):
                    found.append(f"PIM {sku} price {variants[sku].price} != last sent {price}")
            sales = self._ledger_sales()
            if sales != tally.sales_accepted:
                found.append(f"ledger has {sales} sales, the stores accepted {tally.sales_accepted}")
        return found

    def wait_converged(self, *, timeout: float, what: str, tally: Tally | None = None, raise_on_timeout: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not self.divergences(tally):
                return True
            if time.monotonic() > deadline:
                if raise_on_timeout:
                    raise AssertionError(f"{what}: never converged: {self.divergences(tally)[:10]}")
                return False
            time.sleep(0.25)

    def _ledger_sales(self) -> int:
        from inventory.models import StockMovement

        return StockMovement.objects.filter(reason="sale", variant__sku__in=SKUS).count()

    def _error_answers(self, *, since: float) -> dict[int, int]:
        answers = Counter(
            request["status"] for kind, store in self.stores.items()
            for request in self.live.sandbox.requests(kind, store, since=since) if request["status"] >= 400
        )
        return dict(sorted(answers.items()))

    def _resent_events(self) -> int:
        """Events the webhook store received again (same event id) and recognised: a change
        resent after a fault, harmless because the receiver applies it once."""
        return sum(1 for event in self.live.sandbox.events(self.stores["webhook"]) if event["outcome"] == "duplicate")


def _pim_token() -> str:
    from syncsvc.permissions import api_token

    return api_token(f"chaos-pim-{uuid.uuid4().hex[:6]}", "pim")
