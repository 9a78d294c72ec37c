"""The loopback TCP proxy's modes, against a tiny real HTTP server: what reaches the server,
what reaches the client, and what the proxy counted."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.sandbox import wait_until
from tests.support.tcp_proxy import TcpProxy

BIG = bytes(range(256)) * 4096  # 1 MiB, every byte value, so a reordered chunk would show


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.applied = 0  # POSTs the server carried out
        self.seen = 0  # requests the server read
        self.lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        pass  # a reset or cut connection is what these tests make happen: no traceback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the adapters' pooled sessions use it

    def do_GET(self) -> None:
        self._note(applied=False)
        self._answer(BIG if self.path == "/big" else b"hello")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._note(applied=True)
        self._answer(b"applied")

    def _note(self, *, applied: bool) -> None:
        with self.server.lock:
            self.server.seen += 1
            self.server.applied += applied

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(server):
    with TcpProxy(f"http://127.0.0.1:{server.server_address[1]}") as proxy:
        yield proxy


def test_passes_requests_through_and_counts_them(server, proxy):
    # when
    answer = requests.get(f"{proxy.url}/hello", timeout=10)

    # then
    assert answer.content == b"hello" and server.seen == 1
    counts = proxy.counts()["pass"]
    assert counts.connections == 1 and counts.bytes_up > 0 and counts.bytes_down > len(b"hello")
    assert counts.bytes_dropped == 0 and counts.broken == 0


def test_delay_holds_back_each_direction(server, proxy):
    # given
    proxy.delay(250)

    # when
    started = time.monotonic()
    answer = requests.get(f"{proxy.url}/hello", timeout=10)
    elapsed = time.monotonic() - started

    # then: the request and its answer were each held back (a lower bound: load cannot beat it)
    assert answer.content == b"hello"
    assert elapsed >= 0.5
    counts = proxy.counts()["delay"]
    assert counts.bytes_up > 0 and counts.bytes_down > 0 and proxy.counts()["pass"].bytes_down == 0


def test_jittered_delay_keeps_the_bytes_in_order(server, proxy):
    # given
    proxy.delay(5, jitter_ms=5)

    # when
    answer = requests.get(f"{proxy.url}/big", timeout=30)

    # then
    assert answer.content == BIG
    assert proxy.counts()["delay"].bytes_down > len(BIG)


def test_blackhole_accepts_and_reads_but_never_answers(server, proxy):
    # given
    proxy.blackhole()

    # when / then
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{proxy.url}/apply", data=b"x" * 100, timeout=1)
    assert server.seen == 0
    counts = wait_until(lambda: (c := proxy.counts()["blackhole"]).broken and c, timeout=10,
                        message=lambda: f"the client's give-up was not counted: {proxy.counts()}")
    assert counts.connections == 1 and counts.bytes_dropped > 100 and counts.bytes_down == 0


def test_blackhole_swallows_an_open_connection_for_good(server, proxy):
    # given: a keep-alive connection that has carried one request
    session = requests.Session()
    assert session.get(f"{proxy.url}/hello", timeout=10).content == b"hello"

    # when: the network drops everything, then comes back
    proxy.blackhole()
    with pytest.raises(requests.ReadTimeout):
        session.get(f"{proxy.url}/hello", timeout=1)
    proxy.heal()

    # then: the lost request never reached the server; a new connection works again
    assert server.seen == 1
    assert proxy.counts()["blackhole"].bytes_dropped > 0 and proxy.counts()["blackhole"].connections == 0
    assert requests.get(f"{proxy.url}/hello", timeout=10).content == b"hello"


def test_reset_refuses_each_new_connection(server, proxy):
    # given
    proxy.reset()

    # when / then
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/hello", timeout=10)
    assert server.seen == 0
    counts = proxy.counts()["reset"]
    assert counts.connections >= 1 and counts.broken >= 1 and counts.bytes_down == 0


def test_reset_breaks_open_connections_with_an_rst(server, proxy):
    # given: a connection open through the proxy
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    wait_until(lambda: proxy.counts()["pass"].connections == 1, message="the proxy never accepted")

    # when
    proxy.reset()

    # then: the peer reset it (not a clean close)
    try:
        with pytest.raises(ConnectionResetError):
            client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(1024)
    finally:
        client.close()
    assert proxy.counts()["reset"].broken == 1 and server.seen == 0


def test_cut_responses_lets_the_server_apply_but_the_client_never_learns(server, proxy):
    # given
    proxy.cut_responses()

    # when / then
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/apply", data=b"x" * 100, timeout=10)
    assert server.applied == 1
    counts = proxy.counts()["cut"]
    assert counts.broken == 1 and counts.bytes_up > 100 and counts.bytes_dropped > 0 and counts.bytes_down == 0


def test_cut_responses_matching_cuts_only_the_answers_to_those_requests(server, proxy):
    # given: answers to POSTs are cut, others pass
    proxy.cut_responses(matching=b"POST /apply")
    session = requests.Session()

    # when / then: on one keep-alive connection, a read is answered, then a write is cut
    assert session.get(f"{proxy.url}/hello", timeout=10).content == b"hello"
    with pytest.raises(requests.ConnectionError):
        session.post(f"{proxy.url}/apply", data=b"x" * 100, timeout=10)
    assert server.seen == 2 and server.applied == 1
    counts = proxy.counts()["cut"]
    assert counts.broken == 1 and counts.bytes_down > len(b"hello") and counts.bytes_dropped > 0


def test_heal_after_a_fault_passes_requests_again(server, proxy):
    # given
    proxy.cut_responses()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/hello", timeout=10)

    # when
    proxy.heal()

    # then
    assert requests.get(f"{proxy.url}/hello", timeout=10).content == b"hello"
    assert proxy.mode == "pass" and proxy.counts()["pass"].bytes_down > 0


def test_an_upstream_needs_a_host_and_a_port():
    with pytest.raises(ValueError):
        TcpProxy("http://127.0.0.1")
