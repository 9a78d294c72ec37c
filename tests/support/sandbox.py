"""Test helpers for the channel sandbox: run it as a real process and drive its control API.

    sandbox = start_sandbox()
    control = SandboxControl(sandbox.url)
    control.fault("webhook", "shop-1", status=503, count=2)
    wait_until(lambda: control.item("webhook", "shop-1", "SKU-1"), message="SKU-1 never arrived")
    sandbox.stop()
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import requests
from requests import Response as HttpResponse

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING_LINE = re.compile(r"sandbox listening on (http://\S+)")

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, message: str | Callable[[], str] = ""
) -> T:
    """Poll `predicate` until it returns something truthy and return that; AssertionError on
    timeout, saying `message` (a callable is asked then, to describe the state it timed out in)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s: {said or predicate!r} (last value: {value!r})")
        time.sleep(interval)


class SandboxProcess:
    """A sandbox server running as a subprocess; `.url` is its base URL."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, output_path: Path) -> None:
        self.process = process
        self.url = url
        self._output_path = output_path

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._output_path.unlink(missing_ok=True)
        return self.process.returncode

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sandbox(port: int | None = None, timeout: float = 20.0) -> SandboxProcess:
    """Start `python -m channels.sandbox.server` from the repo root and wait until it is healthy.

    With `port=None` the server binds port 0 and reports the port the OS chose, so parallel
    test runs never race for a "free" port. It runs the server module rather than
    `manage.py sandbox` so it needs no Django settings, database or broker.
    """
    # stdout goes to a file, not a pipe: nobody drains a pipe after startup, and a full one
    # would block the server. stderr (its log) is inherited so pytest shows it on failure.
    output = tempfile.NamedTemporaryFile(prefix="sandbox-", suffix=".out", delete=False)
    output_path = Path(output.name)
    command = [sys.executable, "-m", "channels.sandbox.server", "--port", str(port or 0)]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=output, env=environment)
    output.close()
    sandbox = None
    try:
        url = wait_until(
            lambda: _listening_url(process, output_path), timeout=timeout, message="the sandbox never said it was listening"
        )
        sandbox = SandboxProcess(process, url, output_path)
        wait_until(lambda: _healthy(url), timeout=timeout, message=f"{url}/_sandbox/health never answered")
        return sandbox
    except BaseException:
        if sandbox is not None:
            sandbox.stop()
        else:
            process.kill()
            process.wait()
            output_path.unlink(missing_ok=True)
        raise


def _listening_url(process: subprocess.Popen[bytes], output_path: Path) -> str:
    """The URL from the sandbox's first line, or "" while it has not printed it yet."""
    match = LISTENING_LINE.search(output_path.read_text(errors="replace"))
    if match:
        return match.group(1)
    if process.poll() is not None:
        raise RuntimeError(f"the sandbox exited with code {process.returncode} before listening")
    return ""


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_sandbox/health", timeout=1).ok
    except requests.ConnectionError:
        return False


class SandboxControlError(RuntimeError):
    """The control API answered an unexpected status."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"{response.request.method} {response.url} -> {response.status_code}: {response.text}")
        self.status = response.status_code
        self.body = response.text


class SandboxControl:
    """A client for the sandbox's control API (`/_sandbox/...`)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/_sandbox/health"))

    def item(self, kind: str, store: str, sku: str) -> dict[str, Any] | None:
        """The item as the store shows it now, or None if the store has no such SKU."""
        response = self._send("GET", self._store_path(kind, store, "items", sku))
        if response.status_code == 404:
            return None
        return cast(dict[str, Any], self._json(response))

    def items(self, kind: str, store: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", self._store_path(kind, store, "items"))["items"])

    def put_item(self, kind: str, store: str, sku: str, **fields: Any) -> dict[str, Any]:
        """Create or overwrite an item as a merchant would in the channel's admin."""
        return cast(dict[str, Any], self._call("PUT", self._store_path(kind, store, "items", sku), json=fields))

    def requests(self, kind: str, store: str, since: float | str | None = None) -> list[dict[str, Any]]:
        """Real-API requests the store received (after `since`, unix seconds or ISO 8601)."""
        params = {"since": str(since)} if since is not None else None
        answer = self._call("GET", self._store_path(kind, store, "requests"), params=params)
        return cast(list[dict[str, Any]], answer["requests"])

    def events(self, store: str, since: float | str | None = None) -> list[dict[str, Any]]:
        """Events a webhook store accepted, as sent: `{"event", "outcome", "signature", ...}`."""
        params = {"since": str(since)} if since is not None else None
        answer = self._call("GET", self._store_path("webhook", store, "events"), params=params)
        return cast(list[dict[str, Any]], answer["events"])

    def fault(self, kind: str, store: str, **body: Any) -> dict[str, Any]:
        """Inject a fault: status=503, count=2 | status=429, seconds=1.5 | latency_ms=200 | clear=True."""
        return cast(dict[str, Any], self._call("POST", self._store_path(kind, store, "faults"), json=body)["faults"])

    def config(self, kind: str, store: str, **body: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", self._store_path(kind, store, "config"), json=body)["config"])

    def sales(self, kind: str, store: str, **body: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", self._store_path(kind, store, "sales"), json=body))

    def order(self, kind: str, store: str, order_id: str | int) -> dict[str, Any]:
        """The order as the store holds it: state, lines (sold, refunded, restocked), refunds."""
        return cast(dict[str, Any], self._call("GET", self._store_path(kind, store, "orders", str(order_id))))

    def order_action(self, kind: str, store: str, order_id: str | int, action: str, **body: Any) -> dict[str, Any]:
        """The store changes an order as the channel would and says so: action is cancel,
        refund (`lines`?, `restock`), pay or fulfill; `deliveries` as for `sales`."""
        path = self._store_path(kind, store, "orders", str(order_id), action)
        return cast(dict[str, Any], self._call("POST", path, json=body))

    def stats(self, kind: str, store: str) -> dict[str, Any]:
        """Call and throttle counts (the kinds that keep them: shopify, amazon)."""
        return cast(dict[str, Any], self._call("GET", self._store_path(kind, store, "stats")))

    def reset_store(self, kind: str, store: str) -> None:
        self._call("DELETE", self._store_path(kind, store))

    def reset(self) -> None:
        """Forget every store."""
        self._call("POST", "/_sandbox/reset")

    @staticmethod
    def _store_path(kind: str, store: str, *rest: str) -> str:
        return "/" + "/".join(quote(part, safe="") for part in ("_sandbox", kind, store, *rest))

    def _send(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        return self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._json(self._send(method, path, **kwargs))

    @staticmethod
    def _json(response: HttpResponse) -> Any:
        # Any 2xx: a `sales` call that creates an order may answer 201 Created.
        if not 200 <= response.status_code < 300:
            raise SandboxControlError(response)
        return response.json()
