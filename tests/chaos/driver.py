"""The steady load a fault is injected under: price and stock changes through the real API
(the gunicorn web, as the PIM calls it) and customers buying on the sandbox stores, whose
signed order webhooks come back to that same web. Counts what it did, and when."""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from tests.support.sandbox import SandboxControl, SandboxControlError


@dataclass
class Tally:
    """What the driver did; `during_fault` counts changes made while a fault was on."""

    prices: int = 0
    stock_changes: int = 0
    sales_accepted: int = 0
    sales_refused: int = 0
    api_errors: int = 0
    during_fault: int = 0
    last_price: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadDriver:
    """Three paced threads (prices, stock receipts, sales) until `stop()`. The pacing sleeps
    set the load's rate; they wait for nothing."""

    def __init__(self, *, web_url: str, token: str, sandbox_url: str, skus: list[str], sale_stores: list[tuple[str, str]],
                 prices_per_s: float = 8.0, stock_per_s: float = 4.0, sales_per_s: float = 4.0) -> None:
        self.web_url = web_url
        self.headers = {"Authorization": f"Token {token}"}
        self.sandbox_url = sandbox_url
        self.skus = skus
        self.sale_stores = sale_stores
        self.rates = {"prices": prices_per_s, "stock": stock_per_s, "sales": sales_per_s}
        self.tally = Tally()
        self.fault_on = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cents = itertools.count(1001)

    def start(self) -> None:
        for name, step in (("prices", self._price_step), ("stock", self._stock_step), ("sales", self._sale_step)):
            thread = threading.Thread(target=self._run, args=(name, step), name=f"chaos-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self.tally

    def wait(self, seconds: float) -> None:
        """Let the load run on for `seconds` (returns early once stopped)."""
        self._stop.wait(seconds)

    def _run(self, name: str, step) -> None:
        session = requests.Session()
        interval = 1.0 / self.rates[name]
        counter = itertools.count()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                done = step(session, next(counter))
            except requests.RequestException:
                done = False
                with self.tally.lock:
                    self.tally.api_errors += 1
            if done and self.fault_on.is_set():
                with self.tally.lock:
                    self.tally.during_fault += 1
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _price_step(self, session: requests.Session, n: int) -> bool:
        sku = self.skus[n % len(self.skus)]
        price = f"{next(self._cents) / 100:.2f}"
        response = session.patch(f"{self.web_url}/api/v1/variants/{sku}/", json={"price": price}, headers=self.headers, timeout=10)
        if response.status_code != 200:
            with self.tally.lock:
                self.tally.api_errors += 1
            return False
        with self.tally.lock:
            self.tally.prices += 1
            self.tally.last_price[sku] = price  # one thread sets prices, in order: the last 200 wins
        return True

    def _stock_step(self, session: requests.Session, n: int) -> bool:
        sku = self.skus[(n * 7) % len(self.skus)]
        body = {"sku": sku, "delta": 2, "reason": "receipt", "reference": f"chaos-{uuid.uuid4().hex}"}
        response = session.post(f"{self.web_url}/api/v1/inventory/adjustments/", json=body, headers=self.headers, timeout=10)
        if response.status_code != 201:
            with self.tally.lock:
                self.tally.api_errors += 1
            return False
        with self.tally.lock:
            self.tally.stock_changes += 1
        return True

    def _sale_step(self, session: requests.Session, n: int) -> bool:
        kind, store = self.sale_stores[n % len(self.sale_stores)]
        sku = self.skus[(n * 3) % len(self.skus)]
        control = SandboxControl(self.sandbox_url)
        control.session = session
        try:
            control.sales(kind, store, sku=sku, quantity=1)
        except SandboxControlError:  # the store's own stock was short: no sale was made
            with self.tally.lock:
                self.tally.sales_refused += 1
            return False
        with self.tally.lock:
            self.tally.sales_accepted += 1
        return True
