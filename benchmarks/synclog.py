#!/usr/bin/env python
"""The sync log at 10 million rows: `GET /api/v1/sync-logs/` per query shape, and retention.

    python benchmarks/synclog.py [--rows 10000000] [--repeats 15]

Also run by `make bench` (benchmarks/run.py calls `measure`; `--skip synclog` leaves it out,
`--synclog-rows` scales it). Standalone it derives its database from $DATABASE_URL as run.py
does (`<name>_bench`, dropped and created, dropped at the end); no other process is needed.
PostgreSQL only (on SQLite it reports that it did not run).

1. `--rows` SyncAttempt rows written set-based (`INSERT ... SELECT generate_series` in
   chunks of a million, no secondary index while loading) over 31 days: 20 channels of skewed
   size, 100,000 SKUs, events 50 % price / 40 % inventory / 10 % content, 97 % success, 2 %
   failure (five error codes, 90 % later resolved), 0.8 % throttled, 0.2 % ignored; then
   VACUUM ANALYZE.
2. Each query shape of the API through the real DRF view (in-process test client, an `ops`
   token: routing, authentication, filters, keyset pagination, serializer), first page and a
   deep keyset page (a cursor in the middle of the shape's time range), `--repeats` timed runs
   after a warm-up: p50/p95, and the index the plan uses. Once with migration 0005's indexes
   (the baseline), once with 0006's, side by side as ratios.
3. Retention: `synclog_prune` deleting the day past the 30-day limit (batches of 5,000).
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support import Summary, markdown_table, ms, ratio  # noqa: E402

CHANNELS = 20
SKUS = 100_000
CHUNK = 1_000_000
SPAN_DAYS = 31
TARGET_P95_MS = 100.0
# A baseline shape that is this slow gets fewer runs (the table says how many).
SLOW_BUDGET_S = 8.0
TABLE = "channels_syncattempt"
# The indexes only migration 0005 had (0006 dropped them), recreated for the baseline.
BASELINE_ONLY = {
    "bench_attempt_channel_fk": f"CREATE INDEX bench_attempt_channel_fk ON {TABLE} (channel_id)",
    "attempt_unresolved_idx": f"CREATE INDEX attempt_unresolved_idx ON {TABLE} (channel_id, status, resolved_at)",
}
SHARED = ("attempt_channel_time_idx", "attempt_sku_time_idx")  # and the timestamp index, found by its column


class SynclogBenchError(RuntimeError):
    """The run could not be measured (a request failed)."""


@dataclass(frozen=True)
class Shape:
    name: str
    params: dict[str, str]
    deep_at: datetime  # the deep page's cursor position


@dataclass
class ShapeTiming:
    first: Summary
    deep: Summary
    rows_first: int
    index: str = ""


@dataclass
class SynclogResult:
    rows: int
    load_s: float = 0.0
    vacuum_s: float = 0.0
    baseline_build_s: float = 0.0
    ours_build_s: float = 0.0
    shapes: list[Shape] = field(default_factory=list)
    baseline: dict[str, ShapeTiming] = field(default_factory=dict)
    ours: dict[str, ShapeTiming] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    prune_rows: int = 0
    prune_s: float = 0.0
    prune_batches: int = 0
    repeats: int = 0
    total_s: float = 0.0
    note: str = ""

    def markdown(self) -> str:
        lines = ["## Sync log at scale (`benchmarks/synclog.py`)", ""]
        if self.note:
            return "\n".join([*lines, self.note, ""])
        lines.append(
            f"{self.rows:,} SyncAttempt rows over {SPAN_DAYS} days ({CHANNELS} channels, {SKUS:,} SKUs, 97 % success), "
            f"loaded in {self.load_s:.0f} s + VACUUM ANALYZE {self.vacuum_s:.0f} s. `GET /api/v1/sync-logs/` through "
            f"the DRF view (100 rows a page), {self.repeats} runs per cell after a warm-up; deep = a keyset cursor "
            f"in the middle of the shape's time range. Baseline = migration 0005's indexes; ours = 0006's."
        )
        lines.append("")
        rows = []
        worst = 0.0
        for shape in self.shapes:
            base, ours = self.baseline.get(shape.name), self.ours[shape.name]
            worst = max(worst, ours.first.p95, ours.deep.p95)

            def cell(t: ShapeTiming | None, attr: str) -> str:
                if t is None:
                    return "n/a"
                s = getattr(t, attr)
                runs = f" (n={s.count})" if s.count < self.repeats else ""
                return f"{ms(s.p50)} / {ms(s.p95)}{runs}"

            rows.append([
                f"{shape.name} (`{_describe(shape.params)}`)", str(ours.rows_first),
                cell(base, "first"), cell(ours, "first"),
                ratio(base.first.p95, ours.first.p95) if base else "n/a",
                cell(base, "deep"), cell(ours, "deep"),
                ratio(base.deep.p95, ours.deep.p95) if base else "n/a",
                ours.index,
            ])
        lines.append(markdown_table(
            ["filters", "rows", "first page baseline p50/p95 ms", "first page ours p50/p95 ms", "p95 ratio",
             "deep page baseline p50/p95 ms", "deep page ours p50/p95 ms", "p95 ratio", "index (ours, first page)"],
            rows,
        ))
        verdict = "met" if worst < TARGET_P95_MS else "not met"
        lines += ["", (f"Target: every shape's p95 under {TARGET_P95_MS:g} ms with 0006's indexes: {verdict} "
                       f"(worst p95 {ms(worst)} ms).")]
        size_rows = [[name, f"{b / 2**20:,.0f}"] for name, b in sorted(self.sizes.get("ours", {}).items())]
        base_total = sum(self.sizes.get("baseline", {}).values())
        ours_total = sum(self.sizes.get("ours", {}).values())
        lines += [
            "",
            (f"Indexes (MB), ours: {', '.join(f'{n} {s}' for n, s in size_rows)}; total {ours_total / 2**20:,.0f} MB "
             f"against the baseline's {base_total / 2**20:,.0f} MB. Built in {self.ours_build_s:.0f} s "
             f"(non-concurrently; the baseline's in {self.baseline_build_s:.0f} s)."),
            "",
            (f"Retention: `synclog_prune` deleted the {self.prune_rows:,} rows past the 30-day limit (one day) in "
             f"{self.prune_s:.1f} s, {self.prune_batches} batches of ≤ 5,000 rows, each its own transaction "
             f"(≈ {1000 * self.prune_s / max(1, self.prune_batches):.0f} ms a batch): "
             f"{self.prune_rows / max(self.prune_s, 1e-9):,.0f} rows/s."),
            "",
            f"This benchmark took {self.total_s:.0f} s in all.",
            "",
        ]
        return "\n".join(lines)


def _describe(params: dict[str, str]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("since", "until")}
    text = urlencode(shown)
    if "since" in params:
        days = (datetime.fromisoformat(params["until"]) - datetime.fromisoformat(params["since"])).days
        text += ("&" if text else "") + f"since&until: {days} day{'s' if days > 1 else ''}"
    return text or "no filter"


# --- data -----------------------------------------------------------------------------------

INSERT = f"""
WITH r AS (
    SELECT g, random() AS c, floor(random() * %(skus)s)::int AS s, random() AS e, random() AS u, random() AS k,
           random() AS v, random() AS l,
           %(start)s::timestamptz + (g - 1) * %(step)s::interval + random() * interval '200 ms' AS ts
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
), t AS (
    SELECT r.*, 20 + 400 * l * l AS lat,
           CASE WHEN u < 0.97 THEN 'success' WHEN u < 0.99 THEN 'failure'
                WHEN u < 0.998 THEN 'throttled' ELSE 'ignored' END AS status
      FROM r
)
INSERT INTO {TABLE} (channel_id, variant_id, sku, event_type, status, error_code, error_message, retry_count,
                     version, committed_at, enqueued_at, started_at, acknowledged_at, verified_at, resolved_at,
                     latency_ms, timestamp)
SELECT (%(channels)s::bigint[])[1 + floor(%(n)s * power(c, 1.6))::int],
       s, 'SKU-' || lpad(s::text, 6, '0'),
       CASE WHEN e < 0.5 THEN 'price' WHEN e < 0.9 THEN 'inventory' ELSE 'content' END,
       status,
       CASE status WHEN 'success' THEN '' WHEN 'throttled' THEN 'http_429' WHEN 'ignored' THEN 'shadow'
            ELSE (ARRAY['http_503', 'http_500', 'timeout', 'validation', 'http_401'])[1 + floor(k * 5)::int] END,
       CASE WHEN status IN ('failure', 'throttled') THEN 'simulated' ELSE '' END,
       CASE WHEN status = 'success' THEN (k < 0.05)::int ELSE floor(k * 4)::int END,
       g,
       ts - lat * interval '1 ms', ts - lat * 0.8 * interval '1 ms', ts - lat * 0.5 * interval '1 ms',
       CASE WHEN status IN ('success', 'ignored') THEN ts END,
       CASE WHEN status = 'success' AND v < 0.1 THEN ts + interval '2 s' END,
       CASE WHEN status IN ('failure', 'throttled') AND v < 0.9 THEN ts + v * interval '60 s' END,
       CASE WHEN status IN ('success', 'ignored') THEN lat END,
       ts
  FROM t
"""


def _indexes(cursor) -> dict[str, str]:
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT LIKE '%%_pkey'", [TABLE]
    )
    return dict(cursor.fetchall())


def _index_sizes(cursor) -> dict[str, int]:
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
        "WHERE indrelid = %s::regclass AND NOT indisprimary", [TABLE]
    )
    return dict(cursor.fetchall())


def load(*, rows: int, channel_ids: list[int], now: datetime, log: Callable[[str], None]) -> float:
    from django.db import connection, transaction

    start = now - timedelta(days=SPAN_DAYS)
    step = timedelta(days=SPAN_DAYS) / rows
    began = time.monotonic()
    for lo in range(1, rows + 1, CHUNK):
        hi = min(rows, lo + CHUNK - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(INSERT, {"skus": SKUS, "start": start, "step": step, "lo": lo, "hi": hi,
                                    "channels": channel_ids, "n": len(channel_ids)})
        log(f"synclog: {hi:,} rows loaded ({time.monotonic() - began:.0f} s)")
    return time.monotonic() - began


def _build(cursor, statements: list[str]) -> float:
    began = time.monotonic()
    for statement in statements:
        cursor.execute(statement)
    cursor.execute(f"ANALYZE {TABLE}")
    return time.monotonic() - began


# --- the query shapes -----------------------------------------------------------------------


def shapes(*, now: datetime, channel: str, quiet_channel: str, sku: str) -> list[Shape]:
    """Every filter alone, each with a time range, and the combinations operators use."""
    def iso(t: datetime) -> str:
        return t.isoformat()

    mid = now - timedelta(days=15)
    day = (now - timedelta(days=10), now - timedelta(days=9))
    week = (now - timedelta(days=14), now - timedelta(days=7))
    day_mid = day[0] + (day[1] - day[0]) / 2
    week_mid = week[0] + (week[1] - week[0]) / 2
    in_day = {"since": iso(day[0]), "until": iso(day[1])}
    return [
        Shape("all", {}, mid),
        Shape("channel", {"channel": channel}, mid),
        Shape("sku", {"sku": sku}, mid),
        Shape("status=failure", {"status": "failure"}, mid),
        Shape("status=success", {"status": "success"}, mid),
        Shape("event_type", {"event_type": "content"}, mid),
        Shape("error_code", {"error_code": "http_503"}, mid),
        Shape("resolved=false", {"resolved": "false"}, mid),
        Shape("resolved=true", {"resolved": "true"}, mid),
        Shape("channel+resolved=false", {"channel": channel, "resolved": "false"}, mid),
        Shape("time range", dict(in_day), day_mid),
        Shape("channel+time", {"channel": channel, **in_day}, day_mid),
        Shape("sku+time", {"sku": sku, "since": iso(week[0]), "until": iso(week[1])}, week_mid),
        Shape("status+time", {"status": "failure", **in_day}, day_mid),
        Shape("event_type+time", {"event_type": "content", **in_day}, day_mid),
        Shape("error_code+time", {"error_code": "http_503", **in_day}, day_mid),
        Shape("channel+status", {"channel": channel, "status": "failure"}, mid),
        Shape("channel+status+time", {"channel": channel, "status": "failure", **in_day}, day_mid),
        Shape("channel+sku", {"channel": channel, "sku": sku}, mid),
        Shape("channel+event_type+time", {"channel": channel, "event_type": "price", **in_day}, day_mid),
        Shape("small channel+ignored+time", {"channel": quiet_channel, "status": "ignored", **in_day}, day_mid),
        Shape("small channel+error_code", {"channel": quiet_channel, "error_code": "http_401"}, mid),
    ]


def _cursor(position: datetime) -> str:
    return base64.b64encode(urlencode({"p": str(position)}).encode()).decode()


def _plan_index(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    names: list[str] = []

    def walk(node):
        if "Index Name" in node and node["Index Name"] not in names:
            names.append(node["Index Name"])
        if node.get("Node Type") == "Seq Scan":
            names.append("seq scan")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return ", ".join(names)


def time_shapes(client, items: list[Shape], *, repeats: int, log: Callable[[str], None], label: str,
                with_plans: bool) -> dict[str, ShapeTiming]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    for shape in items:
        timings = {}
        rows_first = 0
        index = ""
        for page in ("first", "deep"):
            params = dict(shape.params)
            if page == "deep":
                params["cursor"] = _cursor(shape.deep_at)
            url = "/api/v1/sync-logs/?" + urlencode(params)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)  # warm-up
            if response.status_code != 200:
                raise SynclogBenchError(f"{url}: {response.status_code} {response.content[:300]!r}")
            if page == "first":
                rows_first = len(response.json()["results"])
                if with_plans:
                    query = queries.captured_queries[-1]["sql"]
                    index = _plan_index(query, None)
            values = []
            spent = 0.0
            for _ in range(repeats):
                began = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    raise SynclogBenchError(f"{url}: {response.status_code}")
                values.append(elapsed * 1000)
                spent += elapsed
                if spent > SLOW_BUDGET_S and len(values) >= 3:
                    break
            timings[page] = Summary.of(values)
        results[shape.name] = ShapeTiming(timings["first"], timings["deep"], rows_first, index)
        log(f"synclog {label}: {shape.name}: first p95 {ms(timings['first'].p95)} ms, "
            f"deep p95 {ms(timings['deep'].p95)} ms {index}")
    return results


def _ops_client():
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = User.objects.create(username=f"bench-ops-{uuid.uuid4().hex[:6]}")
    user.groups.add(Group.objects.get_or_create(name="ops")[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def measure(*, rows: int = 10_000_000, repeats: int = 15, log: Callable[[str], None] = print, **_) -> SynclogResult:
    """Load `rows` attempts, time every query shape with 0005's and 0006's indexes, time the
    retention delete of one day; leaves the table with 0006's indexes (and its rows)."""
    from django.db import connection
    from django.utils import timezone

    from channels.models import Channel, SyncAttempt
    from channels.services.retention import synclog_prune

    result = SynclogResult(rows=rows, repeats=repeats)
    if connection.vendor != "postgresql":
        result.note = "Not run: the sync log benchmark needs PostgreSQL (set DATABASE_URL)."
        return result
    now = timezone.now()
    started = time.monotonic()
    channels = [Channel(name=f"synclog-{uuid.uuid4().hex[:6]}-{n:02d}", kind="webhook", enabled=False,
                        base_url="http://127.0.0.1:9/unused") for n in range(CHANNELS)]
    channel_ids = [c.pk for c in Channel.objects.bulk_create(channels)]
    SyncAttempt.objects.filter(channel_id__in=channel_ids).delete()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        ours = _indexes(cursor)
        for name in ours:
            cursor.execute(f"DROP INDEX {name}")
    result.load_s = load(rows=rows, channel_ids=channel_ids, now=now, log=log)
    began = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {TABLE}")
    result.vacuum_s = time.monotonic() - began
    log(f"synclog: VACUUM ANALYZE in {result.vacuum_s:.0f} s")
    shared = {name: sql for name, sql in ours.items() if name in SHARED or sql.endswith('("timestamp")')}
    # The largest channel (the skew puts it first) and the smallest; a SKU with rows.
    big, small = channel_ids[0], channel_ids[-1]
    sku = SyncAttempt.objects.filter(channel_id=big).order_by("-timestamp").values_list("sku", flat=True).first()
    items = shapes(now=now, channel=str(big), quiet_channel=str(small), sku=sku or "SKU-000001")
    result.shapes = items
    client = _ops_client()

    with connection.cursor() as cursor:
        result.baseline_build_s = _build(cursor, [*shared.values(), *BASELINE_ONLY.values()])
        result.sizes["baseline"] = _index_sizes(cursor)
    log(f"synclog: baseline indexes built in {result.baseline_build_s:.0f} s")
    result.baseline = time_shapes(client, items, repeats=max(3, repeats // 3), log=log, label="baseline",
                                  with_plans=False)

    with connection.cursor() as cursor:
        for name in BASELINE_ONLY:
            cursor.execute(f"DROP INDEX {name}")
        result.ours_build_s = _build(cursor, [sql for name, sql in ours.items() if name not in shared])
        result.sizes["ours"] = _index_sizes(cursor)
    log(f"synclog: 0006 indexes built in {result.ours_build_s:.0f} s")
    result.ours = time_shapes(client, items, repeats=repeats, log=log, label="ours", with_plans=True)

    began = time.monotonic()
    outcome = synclog_prune(now=now, batch_size=5000, budget_s=3600)
    result.prune_s = time.monotonic() - began
    result.prune_rows = outcome.attempts
    result.prune_batches = -(-outcome.attempts // 5000) if outcome.attempts else 0
    log(f"synclog: retention deleted {outcome.attempts:,} rows in {result.prune_s:.1f} s")
    result.total_s = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    import os

    from benchmarks.support import (
        VAR,
        bench_database,
        create_database,
        default_database_url,
        drop_database,
        redact,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="attempts to generate (10,000,000)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per shape and page (15)")
    args = parser.parse_args(argv)
    source_url = os.environ.get("DATABASE_URL") or default_database_url()
    db = bench_database(source_url)
    print(f"synclog: database {db.describe()}", flush=True)
    create_database(db)
    os.environ.update({"DATABASE_URL": db.url, "DJANGO_SETTINGS_MODULE": "syncsvc.settings"})
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    print(f"synclog: redis {redact(os.environ['REDIS_URL'])}", flush=True)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        report = measure(rows=args.rows, repeats=args.repeats, log=lambda m: print(m, flush=True)).markdown()
    except SynclogBenchError as exc:
        print(f"synclog: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(db)
    out = VAR / "bench-synclog.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print()
    print(report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
