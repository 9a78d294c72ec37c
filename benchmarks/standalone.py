"""Running one benchmark module on its own (`python benchmarks/<module>.py`): its own bench
database derived from $DATABASE_URL (as run.py does: `<name>_bench`, dropped and created,
dropped at the end), Redis from $REDIS_URL, migrations, and the processes it needs."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

from benchmarks.support import VAR, bench_database, create_database, default_database_url, drop_database, redact


def run_standalone(
    label: str,
    measure: Callable[..., object],
    *,
    errors: type[Exception],
    with_web: bool = False,
    worker_concurrency: int = 4,
) -> int:
    """Start the sandbox, a worker, beat (and gunicorn with `with_web`), call
    `measure(stack=, sandbox_url=, web_url=, log=)`, print its `.markdown()` and write it to
    `var/bench-<label>.md`. Exits 1 when `measure` raises `errors`."""
    source_url = os.environ.get("DATABASE_URL") or default_database_url()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"
    db = bench_database(source_url)
    print(f"{label}: database {db.describe()}; redis {redact(redis_url)}", flush=True)
    create_database(db)
    os.environ.update({"DATABASE_URL": db.url, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "syncsvc.settings"})
    stack = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from channels.redis_client import get_redis
        from syncsvc.processes import ProcessStack

        call_command("migrate", verbosity=0, interactive=False)
        redis = get_redis()
        for key in redis.scan_iter("syncsvc:*"):
            redis.delete(key)
        log_dir = VAR / f"bench-{label}-logs"  # not under bench-logs/: run.py empties that one
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = ProcessStack(env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=log_dir)
        sandbox_url = stack.start_sandbox()
        web_url = stack.start_web() if with_web else ""
        stack.start_worker(concurrency=worker_concurrency)
        stack.start_beat()
        result = measure(stack=stack, sandbox_url=sandbox_url, web_url=web_url, log=lambda m: print(m, flush=True))
    except errors as exc:
        print(f"{label}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if stack is not None:
            stack.stop()
        from django.db import connections

        connections.close_all()
        drop_database(db)
    report = result.markdown()
    (VAR / f"bench-{label}.md").write_text(report)
    print()
    print(report, flush=True)
    return 0
