"""A loopback TCP proxy a test puts between a client and a server to fail the network on cue.

    proxy = TcpProxy("http://127.0.0.1:8123").start()   # listens on a port the OS chose
    channel.base_url = f"{proxy.url}/shopify/shop-1"      # the client now goes through it
    proxy.blackhole()         # accepts and reads, never answers: the client times out
    proxy.reset()             # resets every open connection, and each new one once accepted
    proxy.cut_responses()     # forwards requests; resets the client as the server's answer arrives
    proxy.cut_responses(matching=b"mutation")  # ... only answers to requests holding those bytes
    proxy.delay(1500)         # every chunk arrives 1.5 s late, each way (`jitter_ms` to vary it)
    proxy.heal()              # a plain pipe again
    proxy.counts()["cut"].broken  # what each mode did, to prove a fault bit
    proxy.stop()

It is a byte pipe, not an HTTP proxy: the client addresses it as it would the server, and the
Host header it sends passes through untouched (so signatures over the URL still match).

Modes are counted apart (`ModeCounts` per mode name: "pass", "delay", "blackhole", "reset",
"cut"); bytes and breaks are counted under the mode that was on when they happened. A
connection that swallowed bytes in a blackhole stays a black hole until its client gives up
(its byte stream lost a piece: nothing after it could be read right).

Standard library only: one asyncio loop on a daemon thread; the control methods are called from
any thread and take effect before they return.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

MODES = ("pass", "delay", "blackhole", "reset", "cut")
CHUNK = 65536
ASKED_CAP = 256 * 1024  # how much of a request `cut_responses(matching=...)` looks into
_RST_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on with a zero timeout: close sends RST


@dataclass
class ModeCounts:
    """What the proxy did while one mode was on."""

    connections: int = 0  # accepted while the mode was on
    bytes_up: int = 0  # client -> server, delivered
    bytes_down: int = 0  # server -> client, delivered
    bytes_dropped: int = 0  # read from one side, never delivered to the other
    # Connections the fault ended: reset (RST sent), cut (the client reset as its answer
    # arrived), blackhole (the client gave up on a connection that had swallowed bytes).
    broken: int = 0


class _Link:
    """One client connection and, unless it was refused, its connection to the server."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.blackholed = False
        self.closed = False
        # What the client sent since the server last answered on this connection: the request
        # the next answer is for (HTTP/1.1 without pipelining, as HTTP clients send).
        self.asked = bytearray()

    def abort(self) -> None:
        """Close both sides at once; the client gets an RST, not a FIN."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.server):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_ON_CLOSE)
                except OSError:
                    pass  # already gone
            writer.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.server):
            if writer is not None:
                writer.close()


class TcpProxy:
    """Listens on `host` (a free port unless `port` is given) and pipes each connection to
    `upstream`, an `http://host:port` URL or `host:port`."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        target = urlsplit(upstream if "//" in upstream else f"//{upstream}")
        if not target.hostname or not target.port:
            raise ValueError(f"upstream needs a host and a port: {upstream!r}")
        self.upstream = (target.hostname, target.port)
        self.host = host
        self.port = port
        self._mode = "pass"
        self._delay_s = 0.0
        self._jitter_s = 0.0
        self._cut_matching: bytes | None = None
        self._counts = {mode: ModeCounts() for mode in MODES}
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then the loop."""
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            self._server.close()
            for link in list(self._links):
                link.abort()  # each pump then reads the end of its stream and finishes
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=5)
                for task in late:
                    task.cancel()

        self._call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- controls ---------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    def heal(self) -> None:
        """A plain pipe again (connections a blackhole swallowed from stay lost)."""
        self._set("pass")

    pass_through = heal

    def delay(self, ms: float, *, jitter_ms: float = 0.0) -> None:
        """Every chunk reaches the other side `ms` (± up to `jitter_ms`) after it was read, in
        each direction; chunks keep their order. Latency, not bandwidth: reading goes on."""
        self._set("delay", delay_s=ms / 1000, jitter_s=jitter_ms / 1000)

    def blackhole(self) -> None:
        """Accept and read everything, deliver nothing, either way: clients time out."""
        self._set("blackhole")

    def reset(self) -> None:
        """Reset every open connection now, and each new one as soon as it is accepted."""
        self._set("reset")

        async def reset_open() -> None:
            for link in list(self._links):
                self._count("reset", broken=1)
                link.abort()

        self._call(reset_open())

    def cut_responses(self, *, matching: bytes | None = None) -> None:
        """Forward what clients send; when the server's answer comes back, drop it and reset
        the client: the server did the work and the client never learns it did. With
        `matching`, only answers to requests that hold those bytes are cut (say the writes,
        so the reads before them get through); other answers pass."""
        self._set("cut", cut_matching=matching)

    def counts(self) -> dict[str, ModeCounts]:
        """A snapshot of the counters, by mode."""
        with self._lock:
            return {mode: replace(counts) for mode, counts in self._counts.items()}

    # -- the pipe ---------------------------------------------------------------------------

    def _set(self, mode: str, *, delay_s: float = 0.0, jitter_s: float = 0.0, cut_matching: bytes | None = None) -> None:
        with self._lock:
            self._mode, self._delay_s, self._jitter_s, self._cut_matching = mode, delay_s, jitter_s, cut_matching

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def _count(self, mode: str, **amounts: int) -> None:
        with self._lock:
            counts = self._counts[mode]
            for name, amount in amounts.items():
                setattr(counts, name, getattr(counts, name) + amount)

    async def _handle(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        link = _Link(client)
        mode = self._mode
        self._count(mode, connections=1)
        self._links.add(link)
        try:
            if mode == "reset":
                self._count("reset", broken=1)
                link.abort()
                return
            if mode == "blackhole":
                link.blackholed = True
                await self._swallow(link, client_reader)
                return
            try:
                server_reader, link.server = await asyncio.open_connection(*self.upstream)
            except OSError:
                link.abort()  # the server is down: the client sees a refused connection
                return
            await asyncio.gather(
                self._pump(link, client_reader, link.server, up=True),
                self._pump(link, server_reader, client, up=False),
            )
        finally:
            self._links.discard(link)
            link.close()

    async def _swallow(self, link: _Link, reader: asyncio.StreamReader) -> None:
        """Read until the client gives up, counting what was never delivered."""
        swallowed = False
        while data := await _read(reader):
            self._count("blackhole", bytes_dropped=len(data))
            swallowed = True
        if swallowed:
            self._count("blackhole", broken=1)

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool) -> None:
        """One direction: read chunks, then deliver, drop or break as the mode says. Delivery
        runs in its own task so a delayed chunk never holds up reading the next one. At the
        end of the stream the other side is half-closed, as a TCP peer would see it."""
        queue: asyncio.Queue[tuple[float, bytes, str] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(link, queue, writer, up=up))
        last_due = 0.0
        try:
            while data := await _read(reader):
                if link.closed:
                    return
                mode = "blackhole" if link.blackholed else self._mode
                if mode == "blackhole":
                    link.blackholed = True
                    self._count("blackhole", bytes_dropped=len(data))
                    continue
                if mode == "reset":
                    self._count("reset", bytes_dropped=len(data), broken=1)
                    link.abort()
                    return
                if up:
                    link.asked += data[:max(0, ASKED_CAP - len(link.asked))]
                elif mode == "cut" and (self._cut_matching is None or self._cut_matching in link.asked):
                    self._count("cut", bytes_dropped=len(data), broken=1)
                    link.abort()
                    return
                else:
                    link.asked.clear()  # answering: what comes up next is the next request
                wait_s = 0.0
                if mode == "delay":
                    wait_s = max(0.0, self._delay_s + random.uniform(-self._jitter_s, self._jitter_s))
                last_due = max(last_due, time.monotonic() + wait_s)  # jitter never reorders
                queue.put_nowait((last_due, data, mode))
            if up and link.blackholed and not link.closed:
                self._count("blackhole", broken=1)  # the client gave up waiting
        finally:
            queue.put_nowait(None)
            await sender
        if not link.closed and writer.can_write_eof():
            try:
                writer.write_eof()
            except (ConnectionError, OSError):
                link.abort()

    async def _deliver(self, link: _Link, queue: asyncio.Queue, writer: asyncio.StreamWriter, *, up: bool) -> None:
        while (entry := await queue.get()) is not None:
            due, data, mode = entry
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if link.closed or link.blackholed:
                continue
            # Counted before it is written: once written, the peer may act on it at once.
            self._count(mode, **({"bytes_up": len(data)} if up else {"bytes_down": len(data)}))
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                link.abort()


async def _read(reader: asyncio.StreamReader) -> bytes:
    """The next chunk; empty at the end of the stream, or when the peer reset it."""
    try:
        return await reader.read(CHUNK)
    except (ConnectionError, OSError):
        return b""
