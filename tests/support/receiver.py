"""A webhook endpoint on a free loopback port that keeps every POST it is sent, in order:
what the sandbox stores post for their order webhooks, and what syncsvc posts for alerts."""
from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from requests.structures import CaseInsensitiveDict


class Delivery(NamedTuple):
    headers: CaseInsensitiveDict  # as sent; looked up in any case
    body: bytes


class WebhookReceiver:
    """`received` holds every delivery; `next` and `take` hand out the ones not taken yet."""

    def __init__(self, path: str = "/webhooks", *, status: int = 200) -> None:
        self.received: list[Delivery] = []
        self._unread: queue.Queue[Delivery] = queue.Queue()
        received, unread = self.received, self._unread

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                delivery = Delivery(CaseInsensitiveDict(self.headers.items()),
                                    self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                received.append(delivery)
                unread.put(delivery)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        # A short poll: shutdown() waits for the loop's next turn (0.5 s by default, per test).
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def next(self, timeout: float = 10.0) -> Delivery:
        return self._unread.get(timeout=timeout)

    def take(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        return [self.next(timeout) for _ in range(count)]

    def nothing_unread(self) -> bool:
        return self._unread.empty()

    def deliveries(self, predicate: Callable[[Any], bool] = lambda body: True) -> list[Delivery]:
        """Every delivery whose JSON body satisfies `predicate`."""
        return [delivery for delivery in list(self.received) if predicate(json.loads(delivery.body))]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
