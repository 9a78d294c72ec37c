"""Helpers of the benchmark that need no Django: the bench database, statistics, the sandbox's
control API and the Markdown table."""
from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"

# --- the bench database ---------------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabase:
    vendor: str  # postgresql | sqlite
    url: str  # DATABASE_URL of the bench database, for Django and the children
    name: str  # database name or file path
    admin_url: str = ""  # PostgreSQL: where CREATE/DROP DATABASE is run

    def describe(self) -> str:
        return f"{self.vendor} {redact(self.url)}"


def _postgres_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def default_database_url() -> str:
    """PostgreSQL on 127.0.0.1:5432 as `postgres` when something listens there, else SQLite."""
    if _postgres_reachable("127.0.0.1", 5432):
        return "postgres://postgres@127.0.0.1:5432/syncsvc"
    return f"sqlite:///{VAR / 'syncsvc.sqlite3'}"


def bench_database(source_url: str) -> BenchDatabase:
    """The bench database derived from the caller's DATABASE_URL: `<name>_bench` on the same
    PostgreSQL server, or `var/bench.sqlite3` for SQLite."""
    parts = urlsplit(source_url)
    scheme = parts.scheme.lower()
    if scheme.startswith("sqlite"):
        path = VAR / "bench.sqlite3"
        return BenchDatabase("sqlite", f"sqlite:///{path}", str(path))
    if scheme not in ("postgres", "postgresql", "pgsql", "postgis", "psql"):
        raise SystemExit(f"bench: unsupported DATABASE_URL scheme {scheme!r} (PostgreSQL or SQLite)")
    source_name = parts.path.lstrip("/") or "postgres"
    name = f"{source_name}_bench"
    if name in ("test", "test_test"):
        raise SystemExit(f"bench: refusing to use database {name!r}")
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    return BenchDatabase("postgresql", url, name, admin)


def _pg_admin(db: BenchDatabase, statements: Sequence[str]) -> None:
    import psycopg

    try:
        connection = psycopg.connect(db.admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        # No access to the maintenance database: use the caller's own database instead.
        parts = urlsplit(db.admin_url)
        fallback = urlunsplit((parts.scheme, parts.netloc, "/" + db.name.removesuffix("_bench"), parts.query, ""))
        connection = psycopg.connect(fallback, autocommit=True, connect_timeout=5)
    with connection:
        for statement in statements:
            connection.execute(statement)


def create_database(db: BenchDatabase) -> None:
    if db.vendor == "sqlite":
        drop_database(db)
        VAR.mkdir(exist_ok=True)
        return
    quoted = '"' + db.name.replace('"', '""') + '"'
    _pg_admin(db, [f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", f"CREATE DATABASE {quoted}"])


def drop_database(db: BenchDatabase) -> None:
    if db.vendor == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(db.name + suffix).unlink(missing_ok=True)
        return
    quoted = '"' + db.name.replace('"', '""') + '"'
    _pg_admin(db, [f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"])


def redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


# --- statistics -----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        data = sorted(v for v in values if v is not None)
        if not data:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(data), percentile(data, 0.50), percentile(data, 0.95), percentile(data, 0.99), data[-1],
            sum(data) / len(data),
        )


def ms(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a / b:,.1f}×"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the sandbox's control API --------------------------------------------------------------


class Sandbox:
    """The few control calls the benchmark needs (`/_sandbox/...`)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def store_url(self, store: str) -> str:
        return f"{self.base_url}/webhook/{store}"

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, self.base_url + path, timeout=30, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"sandbox {method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json()

    def configure(self, store: str, secret: str) -> None:
        self._call("POST", f"/_sandbox/webhook/{store}/config", json={"secret": secret})

    def requests(self, store: str) -> list[dict]:
        return self._call("GET", f"/_sandbox/webhook/{store}/requests")["requests"]

    def items(self, store: str) -> dict[str, dict]:
        return {item["sku"]: item for item in self._call("GET", f"/_sandbox/webhook/{store}/items")["items"]}


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    try:
        cpus = len(os.sched_getaffinity(0))  # what `nproc` prints
    except AttributeError:
        cpus = os.cpu_count()
    return f"nproc={cpus}" + (f" ({cpu})" if cpu else "") + memory
