"""The Celery app. Queues: `sync` (per-channel flushes), `inbound` (channel webhooks),
`maintenance` (sweeps, pruning), `bulk` (catalog refreshes)."""
from __future__ import annotations

import os

from celery import Celery

from . import dbconnections, heartbeats, logcontext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsvc.settings")

app = Celery("syncsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

heartbeats.install(app)
logcontext.celery_signals_connect()
dbconnections.celery_signals_connect()
