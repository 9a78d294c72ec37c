"""The sandbox HTTP server: stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive, JSON only.

    /{kind}/{store}/...            a kind's real API, answered by its emulator (`Store.serve`)
    /_sandbox/...                  the control API (`control.py`)

Run it with `python manage.py sandbox` or, without Django configured,
`python -m channels.sandbox.server [--host 127.0.0.1] [--port 8765]`.
"""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .control import Control
from .messages import HttpError, Request, Response
from .registry import UnknownKind
from .stores import Stores

logger = logging.getLogger("channels.sandbox")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 64 * 1024 * 1024
CONTROL_PREFIX = "_sandbox"


class Sandbox:
    """Routes a parsed request to the control API or to a store's emulated real API."""

    def __init__(self) -> None:
        self.stores = Stores()
        self.control = Control(self.stores)

    def route(self, request: Request) -> Response:
        try:
            return self._route(request)
        except HttpError as error:
            return error.response()
        except UnknownKind as error:
            return Response(404, {"error": error.message})

    def _route(self, request: Request) -> Response:
        # Split before decoding so an encoded slash ("%2F") stays inside its segment (a SKU).
        raw_segments = request.path.split("/")[1:]
        segments = [unquote(segment) for segment in raw_segments]
        if segments and segments[0] == CONTROL_PREFIX:
            return self.control.handle(request, segments[1:])
        if len(segments) < 2 or not segments[0] or not segments[1]:
            raise HttpError(404, f"no route {request.method} {request.path}; stores live at /{{kind}}/{{store}}/")
        kind, name = segments[0], segments[1]
        # The raw remainder: "/webhook/s1" -> "", "/webhook/s1/" -> "/", ".../x/y" -> "/x/y".
        request.subpath = "/" + "/".join(raw_segments[2:]) if len(raw_segments) > 2 else ""
        return self.stores.get(kind, name).serve(request)


class SandboxHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 so clients keep it open between requests."""

    protocol_version = "HTTP/1.1"
    server_version = "syncsvc-sandbox/1"
    # Headers and body go out in two writes; without TCP_NODELAY the second can wait for the
    # client's delayed ACK (~40 ms), which would dominate every request's latency.
    disable_nagle_algorithm = True
    # An idle keep-alive connection holds a thread; let it go after a while.
    timeout = 300
    server: SandboxServer

    def _dispatch(self) -> None:
        received_at = time.time()
        try:
            body = self._read_body()
        except HttpError as error:
            # The framing is broken, so the connection cannot be reused.
            self.close_connection = True
            self._send(error.response())
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            target=self.path,
            path=split.path or "/",
            query={name: values[-1] for name, values in parse_qs(split.query).items()},
            headers=self.headers,
            body=body,
            received_at=received_at,
        )
        try:
            response = self.server.sandbox.route(request)
        except Exception as error:  # a bug in an emulator must not kill the connection silently
            logger.exception("sandbox failed on %s %s", self.command, self.path)
            response = Response(500, {"error": f"sandbox internal error: {type(error).__name__}: {error}"})
        self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise HttpError(400, f"bad Content-Length {length_header!r}") from None
        if length < 0:
            raise HttpError(400, f"bad Content-Length {length_header!r}")
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"body larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise HttpError(400, f"bad chunk size {size_line!r}") from None
            if size == 0:
                # Skip trailer fields up to the blank line that ends the body.
                while self.rfile.readline(65537).strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise HttpError(413, f"body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _send(self, response: Response) -> None:
        payload = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        # The stdlib writes every request to stderr; at hundreds per second that is noise.
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        logger.info("%s %s", self.address_string(), format % args)


class SandboxServer(ThreadingHTTPServer):
    """A thread per connection; state lives in `sandbox`, in memory only."""

    daemon_threads = True
    allow_reuse_address = True
    # Several benchmark clients opening connections at once overflow the default backlog of 5.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox or Sandbox()
        super().__init__(address, SandboxHandler)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, socket.timeout)):
            logger.debug("client %s went away: %s", client_address, error)
        else:
            logger.exception("sandbox connection error from %s", client_address)


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM, then close the socket and return.

    `announce` gets `sandbox listening on http://H:P` once the socket accepts connections
    (with the real port when `port` is 0).
    """
    server = SandboxServer((host, port))
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("sandbox stopping on signal %s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    # serve_forever runs in a thread because shutdown() from a signal handler on the serving
    # thread would deadlock: it waits for the very loop it interrupted.
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="sandbox-http")
    serving.start()
    try:
        announce(f"sandbox listening on {server.url}")
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        serving.join()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channels.sandbox.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--log-level", default="INFO")
    options = parser.parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(options.host, options.port, announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
