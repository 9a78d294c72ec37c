"""scripts/services.py: the helpers `make run` and `make test` start their services with.

Real sockets and a real Redis server; no database.
"""
from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

pytestmark = []

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "services.py"


def _load_services():
    # scripts/ is not a package (the scripts run before the project is installed): load by path.
    spec = importlib.util.spec_from_file_location("syncsvc_scripts_services", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


services = _load_services()


@pytest.fixture
def listening_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_free_port_can_be_bound():
    port = services.free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_port_open_sees_a_listener_and_its_absence(listening_socket):
    port = listening_socket.getsockname()[1]
    assert services.port_open("127.0.0.1", port, timeout=1)
    listening_socket.close()
    assert not services.port_open("127.0.0.1", port, timeout=1)


def test_redis_ping_is_false_for_a_non_redis_listener(listening_socket):
    # Accepts the connection but never answers PONG.
    port = listening_socket.getsockname()[1]
    assert not services.redis_ping("127.0.0.1", port, timeout=0.3)


def test_embedded_redis_answers_ping_and_stops(tmp_path):
    port = services.free_port()
    proc = services.start_embedded_redis(port, tmp_path / "redis")
    try:
        assert services.redis_ping("127.0.0.1", port)
        assert services.port_open("127.0.0.1", port)
    finally:
        code = services.stop_process(proc, timeout=5)
    assert code is not None
    assert proc.poll() is not None
    assert not services.port_open("127.0.0.1", port)
    # --save "" and --appendonly no: nothing persisted in the data directory.
    assert not list((tmp_path / "redis").glob("*.rdb"))
    assert not list((tmp_path / "redis").glob("*.aof"))


def test_embedded_redis_reports_a_port_it_cannot_bind(tmp_path, listening_socket):
    port = listening_socket.getsockname()[1]
    with pytest.raises(RuntimeError):
        services.start_embedded_redis(port, tmp_path / "redis")
