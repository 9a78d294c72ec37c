"""Start the moving parts as real child processes: a Celery worker, beat and the sandbox.

Used by the test suite, `manage.py demo` and the benchmarks, so all three exercise the same
processes a deployment runs. Each child gets the caller's environment plus overrides.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "sync,inbound,maintenance,bulk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], *, timeout: float, message: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(interval)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ProcessStack:
    """Children sharing one environment; `stop()` ends them all."""

    env: dict[str, str]
    log_dir: Path
    children: dict[str, Child] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        child = Child(name, process, log_path)
        self.children[name] = child
        return child

    def start_sandbox(self, port: int | None = None) -> str:
        port = port or free_port()
        self.spawn("sandbox", [sys.executable, "-m", "channels.sandbox.server", "--host", "127.0.0.1", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/_sandbox/health"), timeout=20, message=self._why("sandbox"))
        return url

    def start_worker(self, *, name: str = "worker", concurrency: int = 2, queues: str = QUEUES) -> Child:
        child = self.spawn(
            name,
            [sys.executable, "-m", "celery", "-A", "syncsvc", "worker", "-Q", queues, "-c", str(concurrency),
             "--pool", "prefork", "-l", "info", "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        )
        wait_for(lambda: b"ready." in child.log_path.read_bytes() or not child.alive(), timeout=60, message=self._why(name))
        if not child.alive():
            raise RuntimeError(self._why(name))
        return child

    def start_web(self, *, name: str = "web", workers: int | None = None, threads: int | None = None) -> str:
        """The Django app under gunicorn, as a deployment serves it; returns its base URL.
        Workers and threads default to $SYNCSVC_WEB_WORKERS / $SYNCSVC_WEB_THREADS, else 2 x 16:
        a webhook's answer mostly waits on its commit, so threads (not processes) carry the load
        (measured: 2 x 4 answered ~200 webhooks/s, 2 x 16 ~340 with 32 clients)."""
        workers = workers or int(self.env.get("SYNCSVC_WEB_WORKERS") or 2)
        threads = threads or int(self.env.get("SYNCSVC_WEB_THREADS") or 16)
        port = free_port()
        self.spawn(
            name,
            [sys.executable, "-m", "gunicorn", "syncsvc.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
             "--access-logfile", "-", "--graceful-timeout", "5"],
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/health/live/") or not self.children[name].alive(), timeout=30,
                 message=self._why(name))
        if not self.children[name].alive():
            raise RuntimeError(self._why(name))
        return url

    def start_flower(self, *, name: str = "flower") -> str:
        """Flower, as `make run` and docker start it; its login comes from FLOWER_BASIC_AUTH in
        the environment (Flower reads it itself). Returns its base URL."""
        port = free_port()
        self.spawn(name, [sys.executable, "-m", "celery", "-A", "syncsvc", "flower",
                          "--address=127.0.0.1", f"--port={port}"])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _listening(port) or not self.children[name].alive(), timeout=30, message=self._why(name))
        if not self.children[name].alive():
            raise RuntimeError(self._why(name))
        return url

    def start_beat(self, *, name: str = "beat", scheduler: str | None = None) -> Child:
        """A beat process; it leads or follows (syncsvc/beat.py), so several may run at once.
        `scheduler` (a dotted class) defaults to settings.BEAT_FILE_SCHEDULER, whose schedule
        file `<log_dir>/<name>-schedule` is this beat's own; pass settings.CELERY_BEAT_SCHEDULER
        for the database one a deployment runs."""
        from django.conf import settings

        schedule = self.log_dir / f"{name}-schedule"
        return self.spawn(
            name,
            [sys.executable, "-m", "celery", "-A", "syncsvc", "beat", "-l", "info",
             "--scheduler", scheduler or settings.BEAT_FILE_SCHEDULER, "-s", str(schedule)],
        )

    def worker_children(self, name: str = "worker") -> list[int]:
        import psutil

        return [p.pid for p in psutil.Process(self.children[name].pid).children()]

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    def _why(self, name: str) -> str:
        child = self.children.get(name)
        return f"{name} did not start; its log:\n{child.log_tail() if child else ''}"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def database_url_for(settings_dict: dict) -> str:
    """A DATABASE_URL naming the database Django is connected to now (the test database
    during tests), for child processes."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"
