"""Settings, all from the environment (12-factor).

Unset `DATABASE_URL` means SQLite under `var/`; unset `REDIS_URL` means a Redis on
127.0.0.1:6379 (`make run` starts an embedded one and sets `REDIS_URL` for its processes).
"""
from __future__ import annotations

import base64
import hashlib
import warnings
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "inventory",
    "channels",
]

MIDDLEWARE = [
    "syncsvc.logcontext.LogContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "syncsvc.nulguard.NulGuardMiddleware",
    # The admin's static files from gunicorn itself (no front server needed, none in tests).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "syncsvc.urls"
WSGI_APPLICATION = "syncsvc.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'syncsvc.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock up front instead of failing mid-transaction.
    _db.setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    _db.setdefault("TEST", {})["NAME"] = env("SQLITE_TEST_NAME", default=str(VAR_DIR / "test.sqlite3"))
else:
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
    if env("TEST_DATABASE_NAME", default=""):
        _db.setdefault("TEST", {})["NAME"] = env("TEST_DATABASE_NAME")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Also straight from the apps' static folders: a checkout serves them without collectstatic
# (so a missing STATIC_ROOT is expected there, not worth whitenoise's warning).
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: .*static", category=UserWarning)

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "syncsvc.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["syncsvc.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's JSON parser, refusing NUL characters and over-deep nesting with a 400 (see the module).
    "DEFAULT_PARSER_CLASSES": ["syncsvc.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "EXCEPTION_HANDLER": "syncsvc.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "syncsvc API",
    "DESCRIPTION": "Catalog, stock and channel sync control for the PIM and operators.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "syncsvc.openapi.error_responses"],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Only the broker moves (e.g. RabbitMQ, `amqp://`): wake-up flags, rate-limit buckets and
# heartbeats stay in REDIS_URL. Empty (as compose passes an unset one) means REDIS_URL.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes DB connections around every task unless told to reuse them;
# a new PostgreSQL backend per flush cost a third of the database's CPU in the benchmark.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    "channels.flush": {"queue": "sync"},
    "channels.wake_due": {"queue": "maintenance"},
    "channels.sweep": {"queue": "maintenance"},
    "channels.prune_settled": {"queue": "maintenance"},
    "channels.inbound_process": {"queue": "inbound"},
    "channels.inbound_sweep": {"queue": "maintenance"},
    "channels.reservations_expire": {"queue": "maintenance"},
    "channels.poll_orders": {"queue": "maintenance"},
    "channels.orders_poll": {"queue": "inbound"},
    "channels.resync_step": {"queue": "maintenance"},
    "channels.resync_advance": {"queue": "maintenance"},
    "channels.reconcile": {"queue": "maintenance"},
    "channels.reconcile_channel": {"queue": "maintenance"},
    "channels.synclog_prune": {"queue": "maintenance"},
    "syncsvc.heartbeat": {"queue": "maintenance"},
    "channels.alerts_evaluate": {"queue": "maintenance"},
    "channels.alert_notify": {"queue": "maintenance"},
    "channels.held_release": {"queue": "maintenance"},
    "channels.catalog_refresh_step": {"queue": "bulk"},
    "channels.catalog_refresh_scheduled": {"queue": "bulk"},
    "channels.catalog_refresh_advance": {"queue": "maintenance"},
}
# Redis: longer than any countdown we use, so a delayed wake-up is never redelivered early.
# RabbitMQ has no visibility timeout: an unacknowledged message (acks_late, and a countdown
# task a worker holds until it is due) is redelivered when its consumer goes; the server's
# consumer_timeout (30 min by default) must stay above the longest countdown (docker/).
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 3600} if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://")) else {}
)
# Plain redis://: kombu's Redis transport with a fix (syncsvc/broker.py: a worker survives its
# Redis going away while it waits for a message); any other broker by its URL's scheme.
CELERY_BROKER_TRANSPORT = "syncsvc.broker:Transport" if CELERY_BROKER_URL.startswith("redis://") else None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A lost broker connection leaves running acks_late tasks unable to acknowledge: the broker
# redelivers them. Let them finish (Celery 6 will terminate them by default): the redelivered
# copy finds its work done in the database, while a terminated flush would keep its marks
# leased (SYNCSVC_LEASE_S) from every other flush. Celery still warns about it on each loss.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Beat: however many beat processes run, one leads (a lock in Redis) and only it sends
# (syncsvc/beat.py). Deployments read the schedules from the database (django-celery-beat,
# editable in the admin); the test stack, `manage.py demo` and the benchmarks run the file
# scheduler (`ProcessStack.start_beat`: CELERY_BEAT_SCHEDULE only, no rows a test's flush
# could remove).
CELERY_BEAT_SCHEDULER = env("CELERY_BEAT_SCHEDULER", default="syncsvc.beat:LeaderDatabaseScheduler")
BEAT_FILE_SCHEDULER = env("SYNCSVC_BEAT_FILE_SCHEDULER", default="syncsvc.beat:LeaderPersistentScheduler")

# --- syncsvc --------------------------------------------------------------------------------
SYNCSVC = {
    # How often beat re-wakes channels whose due marks have no flush in flight.
    "SWEEP_INTERVAL_S": env.float("SYNCSVC_SWEEP_INTERVAL_S", default=5.0),
    # A claimed mark belongs to its flusher until then; after that it is due again.
    "LEASE_S": env.float("SYNCSVC_LEASE_S", default=60.0),
    # A flush works at most this long (or this many batches), then re-queues itself.
    "FLUSH_BUDGET_S": env.float("SYNCSVC_FLUSH_BUDGET_S", default=2.0),
    "FLUSH_MAX_BATCHES": env.int("SYNCSVC_FLUSH_MAX_BATCHES", default=5),
    # Retry backoff for retryable failures: base * 2**attempt, capped, with jitter.
    "RETRY_BASE_S": env.float("SYNCSVC_RETRY_BASE_S", default=1.0),
    "RETRY_CAP_S": env.float("SYNCSVC_RETRY_CAP_S", default=300.0),
    "MAX_ATTEMPTS": env.int("SYNCSVC_MAX_ATTEMPTS", default=12),
    "HTTP_TIMEOUT_S": env.float("SYNCSVC_HTTP_TIMEOUT_S", default=10.0),
    # A queued wake-up blocks another for this long; after it the sweep may enqueue again.
    "WAKE_FLAG_TTL_S": env.int("SYNCSVC_WAKE_FLAG_TTL_S", default=10),
    # A SKU that changed again while its previous state was in flight is "hot": it waits this
    # long before the next send, so a burst of edits becomes a few writes, while the first
    # change of a quiet SKU still goes at once.
    "HOT_COALESCE_S": env.float("SYNCSVC_HOT_COALESCE_S", default=0.25),
    # Stock at or under this many sellable units is pushed at once, never held in a window.
    "LOW_STOCK_UNITS": env.int("SYNCSVC_LOW_STOCK_UNITS", default=5),
    # How often beat looks for changes held by threshold rules whose batch time came.
    "HELD_RELEASE_INTERVAL_S": env.float("SYNCSVC_HELD_RELEASE_INTERVAL_S", default=30.0),
    "AUTH_CACHE_S": env.float("SYNCSVC_AUTH_CACHE_S", default=5.0),
    # Inbound webhooks: the largest body accepted (413 beyond), how often stored events that
    # are not applied yet are picked up again, how often expired reservations are released.
    "INBOUND_MAX_BYTES": env.int("SYNCSVC_INBOUND_MAX_BYTES", default=1024 * 1024),
    "INBOUND_SWEEP_INTERVAL_S": env.float("SYNCSVC_INBOUND_SWEEP_INTERVAL_S", default=10.0),
    "RESERVATION_SWEEP_INTERVAL_S": env.float("SYNCSVC_RESERVATION_SWEEP_INTERVAL_S", default=60.0),
    # Magento's orders (no webhooks) and WooCommerce's (webhooks never retried) are polled this often.
    "ORDERS_POLL_INTERVAL_S": env.float("SYNCSVC_ORDERS_POLL_INTERVAL_S", default=30.0),
    # Forced resync: at most RESYNC_MAX_SKUS listed SKUs per request (`all` has no cap); a job's
    # progress step runs at most STEP_BUDGET_S and is re-queued every POLL_S while the job is
    # active; beat re-kicks active jobs every ADVANCE_INTERVAL_S; a read-back that differs
    # is read again until VERIFY_GRACE_S after the delivery before it counts as a mismatch.
    "RESYNC_MAX_SKUS": env.int("SYNCSVC_RESYNC_MAX_SKUS", default=10_000),
    "RESYNC_STEP_BUDGET_S": env.float("SYNCSVC_RESYNC_STEP_BUDGET_S", default=2.0),
    "RESYNC_POLL_S": env.float("SYNCSVC_RESYNC_POLL_S", default=1.0),
    "RESYNC_ADVANCE_INTERVAL_S": env.float("SYNCSVC_RESYNC_ADVANCE_INTERVAL_S", default=10.0),
    "RESYNC_VERIFY_GRACE_S": env.float("SYNCSVC_RESYNC_VERIFY_GRACE_S", default=30.0),
    # Reconciliation: beat looks every RECONCILE_INTERVAL_S for channels behind their cycle
    # (ChannelHealth.reconcile_cycle_s); a run reads at most READ_SHARE of the channel's read
    # rate over one interval, for at most BUDGET_S.
    "RECONCILE_INTERVAL_S": env.float("SYNCSVC_RECONCILE_INTERVAL_S", default=60.0),
    "RECONCILE_READ_SHARE": env.float("SYNCSVC_RECONCILE_READ_SHARE", default=0.5),
    "RECONCILE_BUDGET_S": env.float("SYNCSVC_RECONCILE_BUDGET_S", default=20.0),
    # Incidents: a resync of SKUs that failed within this long (and since the channel's last
    # incident closed) records the incident it repairs.
    "INCIDENT_LOOKBACK_S": env.float("SYNCSVC_INCIDENT_LOOKBACK_S", default=3600.0),
    # Retention: sync log rows (every status) and superseded change records older than this
    # are deleted by beat every PRUNE_INTERVAL_S, PRUNE_BATCH rows per short transaction, at
    # most PRUNE_BUDGET_S per run (a run that leaves old rows behind re-queues itself).
    "SYNCLOG_RETENTION_DAYS": env.float("SYNCSVC_SYNCLOG_RETENTION_DAYS", default=30.0),
    "SYNCLOG_PRUNE_INTERVAL_S": env.float("SYNCSVC_SYNCLOG_PRUNE_INTERVAL_S", default=900.0),
    "SYNCLOG_PRUNE_BATCH": env.int("SYNCSVC_SYNCLOG_PRUNE_BATCH", default=5000),
    "SYNCLOG_PRUNE_BUDGET_S": env.float("SYNCSVC_SYNCLOG_PRUNE_BUDGET_S", default=20.0),
    # Heartbeats (/health/): every worker writes its own this often, beat has the
    # `syncsvc.heartbeat` task write its own; older than STALE_INTERVALS intervals is dead.
    "HEARTBEAT_INTERVAL_S": env.float("SYNCSVC_HEARTBEAT_INTERVAL_S", default=10.0),
    "HEARTBEAT_STALE_INTERVALS": env.float("SYNCSVC_HEARTBEAT_STALE_INTERVALS", default=3.0),
    "HEARTBEAT_PREFIX": env("SYNCSVC_HEARTBEAT_PREFIX", default="syncsvc:heartbeat"),
    # Beat leadership: the leader's lock lives LEADER_TTL_S and is renewed at every tick (the
    # leader ticks at least every quarter of it); followers try every quarter too. A killed
    # leader is replaced within 1.25 x TTL, under the 30 s after which /health/ calls beat's
    # heartbeat stale; a beat stopped cleanly hands over at the followers' next try.
    "BEAT_LEADER_TTL_S": env.float("SYNCSVC_BEAT_LEADER_TTL_S", default=20.0),
    "BEAT_LEADER_KEY": env("SYNCSVC_BEAT_LEADER_KEY", default="syncsvc:beat:leader"),
    # /metrics wants `Authorization: Bearer <token>` when set; open when empty (local runs).
    "METRICS_TOKEN": env("SYNCSVC_METRICS_TOKEN", default=""),
    # Alerts: how often every channel is evaluated against its thresholds; inbound silence,
    # when a channel has no threshold of its own, trips after FACTOR times its usual (p95) gap
    # between events, and never sooner than FLOOR.
    "ALERTS_INTERVAL_S": env.float("SYNCSVC_ALERTS_INTERVAL_S", default=15.0),
    "INBOUND_SILENCE_FACTOR": env.float("SYNCSVC_INBOUND_SILENCE_FACTOR", default=3.0),
    "INBOUND_SILENCE_FLOOR_S": env.float("SYNCSVC_INBOUND_SILENCE_FLOOR_S", default=900.0),
    # Alert notifications: where they go when a channel names no destination of its own, the
    # key their body is signed with (X-Syncsvc-Signature), how long a POST may take.
    "ALERT_WEBHOOK_URL": env("SYNCSVC_ALERT_WEBHOOK_URL", default=""),
    "ALERT_EMAILS": env("SYNCSVC_ALERT_EMAILS", default=""),
    "ALERT_WEBHOOK_SECRET": env("SYNCSVC_ALERT_WEBHOOK_SECRET", default=""),
    "ALERT_WEBHOOK_TIMEOUT_S": env.float("SYNCSVC_ALERT_WEBHOOK_TIMEOUT_S", default=5.0),
    # Circuit breaker: opens after this many consecutive failed batches (retryable or auth
    # errors, throttles do not count); a probe is allowed after PROBE_S, doubling per failed
    # probe up to PROBE_CAP_S; a probe sends at most PROBE_ITEMS items.
    "CIRCUIT_FAILURES": env.int("SYNCSVC_CIRCUIT_FAILURES", default=5),
    "CIRCUIT_PROBE_S": env.float("SYNCSVC_CIRCUIT_PROBE_S", default=30.0),
    "CIRCUIT_PROBE_CAP_S": env.float("SYNCSVC_CIRCUIT_PROBE_CAP_S", default=300.0),
    "CIRCUIT_PROBE_ITEMS": env.int("SYNCSVC_CIRCUIT_PROBE_ITEMS", default=3),
    # Nightly catalog refresh (queue `bulk`): a step works at most STEP_BUDGET_S under a lease of
    # LEASE_S (a killed worker's refresh resumes when it ends), with at most PARALLEL remote jobs
    # in flight, starting one only while the channel's bucket holds BUCKET_FLOOR of its capacity;
    # remote jobs are polled every POLL_S unless the channel says when; a chunk fails after
    # MAX_ATTEMPTS starts; beat re-kicks active refreshes every ADVANCE_INTERVAL_S. New channels
    # get the schedule DEFAULT_CRONTAB (in TIME_ZONE), editable in the admin's Periodic tasks.
    "CATALOG_REFRESH_STEP_BUDGET_S": env.float("SYNCSVC_CATALOG_REFRESH_STEP_BUDGET_S", default=5.0),
    "CATALOG_REFRESH_LEASE_S": env.float("SYNCSVC_CATALOG_REFRESH_LEASE_S", default=60.0),
    "CATALOG_REFRESH_PARALLEL": env.int("SYNCSVC_CATALOG_REFRESH_PARALLEL", default=2),
    "CATALOG_REFRESH_BUCKET_FLOOR": env.float("SYNCSVC_CATALOG_REFRESH_BUCKET_FLOOR", default=0.5),
    "CATALOG_REFRESH_POLL_S": env.float("SYNCSVC_CATALOG_REFRESH_POLL_S", default=5.0),
    "CATALOG_REFRESH_MAX_ATTEMPTS": env.int("SYNCSVC_CATALOG_REFRESH_MAX_ATTEMPTS", default=3),
    "CATALOG_REFRESH_ADVANCE_INTERVAL_S": env.float("SYNCSVC_CATALOG_REFRESH_ADVANCE_INTERVAL_S", default=10.0),
    "CATALOG_REFRESH_DEFAULT_CRONTAB": env("SYNCSVC_CATALOG_REFRESH_DEFAULT_CRONTAB", default="0 3 * * *"),
}

# E-mail (alert notifications): EMAIL_URL (e.g. smtp+tls://user:password@host:587), or
# EMAIL_BACKEND; the console backend by default.
if env("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="syncsvc@localhost")


def _fernet_key(raw: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest())


# Channel credentials at rest. Any string works; it is stretched to a Fernet key. Several,
# comma-separated, newest first, rotate keys (see channels/crypto.py).
ENCRYPTION_KEYS = [
    _fernet_key(raw.strip())
    for raw in env("SYNCSVC_ENCRYPTION_KEY", default=SECRET_KEY).split(",")
    if raw.strip()
]

FLOWER_BASIC_AUTH = env("FLOWER_BASIC_AUTH", default="")

# Logs: `text` (make run) or `json` (one object per line, for a log pipeline; docker). Every
# line carries the change ids, channel, SKU and Celery task id it concerns, when known
# (syncsvc/logcontext.py).
LOG_FORMAT = env("SYNCSVC_LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"SYNCSVC_LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "syncsvc.logcontext.ContextFilter"}},
    "formatters": {
        "text": {"()": "syncsvc.logcontext.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s",
            "timestamp": True,  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

CELERY_BEAT_SCHEDULE = {
    "channels-catalog-refresh-advance": {
        "task": "channels.catalog_refresh_advance",
        "schedule": SYNCSVC["CATALOG_REFRESH_ADVANCE_INTERVAL_S"],
        "options": {"expires": SYNCSVC["CATALOG_REFRESH_ADVANCE_INTERVAL_S"] * 2},
    },
    "channels-resync-advance": {
        "task": "channels.resync_advance",
        "schedule": SYNCSVC["RESYNC_ADVANCE_INTERVAL_S"],
        "options": {"expires": SYNCSVC["RESYNC_ADVANCE_INTERVAL_S"] * 2},
    },
    "channels-reconcile": {
        "task": "channels.reconcile",
        "schedule": SYNCSVC["RECONCILE_INTERVAL_S"],
        "options": {"expires": SYNCSVC["RECONCILE_INTERVAL_S"] * 2},
    },
    "channels-sweep": {
        "task": "channels.sweep",
        "schedule": SYNCSVC["SWEEP_INTERVAL_S"],
        # A sweep that waited longer than two intervals is stale: the next one will do.
        "options": {"expires": SYNCSVC["SWEEP_INTERVAL_S"] * 2},
    },
    "channels-prune-settled": {"task": "channels.prune_settled", "schedule": 300.0, "options": {"expires": 300}},
    "channels-synclog-prune": {
        "task": "channels.synclog_prune",
        "schedule": SYNCSVC["SYNCLOG_PRUNE_INTERVAL_S"],
        "options": {"expires": SYNCSVC["SYNCLOG_PRUNE_INTERVAL_S"]},
    },
    # Inbound events stored but not applied (a lost task, a refund waiting for its order).
    "channels-inbound-sweep": {
        "task": "channels.inbound_sweep",
        "schedule": SYNCSVC["INBOUND_SWEEP_INTERVAL_S"],
        "options": {"expires": SYNCSVC["INBOUND_SWEEP_INTERVAL_S"] * 2},
    },
    "channels-poll-orders": {
        "task": "channels.poll_orders",
        "schedule": SYNCSVC["ORDERS_POLL_INTERVAL_S"],
        "options": {"expires": SYNCSVC["ORDERS_POLL_INTERVAL_S"]},
    },
    "channels-reservations-expire": {
        "task": "channels.reservations_expire",
        "schedule": SYNCSVC["RESERVATION_SWEEP_INTERVAL_S"],
        "options": {"expires": SYNCSVC["RESERVATION_SWEEP_INTERVAL_S"] * 2},
    },
    # Beat's heartbeat (/health/): proves beat schedules and a worker takes maintenance tasks.
    "syncsvc-heartbeat": {
        "task": "syncsvc.heartbeat",
        "schedule": SYNCSVC["HEARTBEAT_INTERVAL_S"],
        "options": {"expires": SYNCSVC["HEARTBEAT_INTERVAL_S"]},
    },
    # Changes held by threshold rules: released in their batch, their channels woken.
    "channels-held-release": {
        "task": "channels.held_release",
        "schedule": SYNCSVC["HELD_RELEASE_INTERVAL_S"],
        "options": {"expires": SYNCSVC["HELD_RELEASE_INTERVAL_S"] * 2},
    },
    "channels-alerts-evaluate": {
        "task": "channels.alerts_evaluate",
        "schedule": SYNCSVC["ALERTS_INTERVAL_S"],
        "options": {"expires": SYNCSVC["ALERTS_INTERVAL_S"] * 2},
    },
}
