"""Per-channel schedules of the nightly catalog refresh, as django-celery-beat periodic tasks.

Each channel that can be refreshed has one `PeriodicTask` named `catalog-refresh:<channel id>`
running `channels.catalog_refresh_scheduled` with the channel's id, on a crontab (default
`SYNCSVC_CATALOG_REFRESH_DEFAULT_CRONTAB`, "0 3 * * *", in Django's TIME_ZONE). Operators
change it in the admin (Periodic tasks) or through the channel's setting

    "catalog_refresh": {"enabled": true, "crontab": "30 2 * * *", "timezone": "Europe/Paris",
                        "chunk_size": 500}

A crontab given in the setting wins over an admin edit whenever the channel is saved; without
one the task keeps whatever the admin made of it. `enabled: false` disables the task.
"""
from __future__ import annotations

import json
import logging
import zoneinfo
from collections.abc import Mapping

from django.conf import settings
from django.db import transaction

from ..models import CatalogRefresh, Channel
from .catalog_refresh import (
    MAX_CHUNK_SIZE,
    RefreshError,
    catalog_refresh_start,
    refresh_supported,
)

log = logging.getLogger(__name__)

TASK = "channels.catalog_refresh_scheduled"
SETTING = "catalog_refresh"
KNOWN = ("enabled", "crontab", "timezone", "chunk_size")
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def schedule_name(channel_id: int) -> str:
    return f"catalog-refresh:{channel_id}"


def _crontab_parts(text: str) -> dict[str, str] | None:
    parts = text.split()
    if len(parts) != 5:
        return None
    return dict(zip(CRONTAB_FIELDS, parts, strict=True))


def _crontab_error(text: str) -> str | None:
    from celery.schedules import ParseException, crontab

    parts = _crontab_parts(text)
    if parts is None:
        return 'must be five crontab fields: "minute hour day-of-month month day-of-week", e.g. "0 3 * * *"'
    try:
        crontab(**parts)
    except (ParseException, ValueError) as error:
        return f"is not a valid crontab: {error}"
    return None


def refresh_settings_errors(channel_settings: Mapping) -> dict[str, str]:
    """What is wrong with a channel's `catalog_refresh` setting, by dotted name."""
    value = channel_settings.get(SETTING)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return {SETTING: 'must be an object like {"enabled": true, "crontab": "0 3 * * *"}'}
    errors = {}
    for name in sorted(set(value) - set(KNOWN)):
        errors[f"{SETTING}.{name}"] = f"unknown setting; known: {', '.join(KNOWN)}"
    if "enabled" in value and not isinstance(value["enabled"], bool):
        errors[f"{SETTING}.enabled"] = "must be true or false"
    if "crontab" in value:
        crontab = value["crontab"]
        problem = "must be a string" if not isinstance(crontab, str) else _crontab_error(crontab)
        if problem:
            errors[f"{SETTING}.crontab"] = problem
    if "timezone" in value:
        zone = value["timezone"]
        try:
            if not isinstance(zone, str) or not zone:
                raise ValueError(zone)
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors[f"{SETTING}.timezone"] = "must be an IANA time zone name like Europe/Paris"
    if "chunk_size" in value:
        size = value["chunk_size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_CHUNK_SIZE:
            errors[f"{SETTING}.chunk_size"] = f"must be a whole number between 1 and {MAX_CHUNK_SIZE}"
    return errors


def refresh_schedule_sync(*, channel: Channel):
    """Create or update the channel's periodic task from its setting (see the module
    docstring); None (and any task removed) when the channel's content cannot be refreshed."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = schedule_name(channel.pk)
    supported, _ = refresh_supported(channel)
    if not supported:
        PeriodicTask.objects.filter(name=name).delete()
        return None
    config = (channel.settings or {}).get(SETTING) or {}
    with transaction.atomic():
        task = PeriodicTask.objects.filter(name=name).first()
        crontab = None
        if task is None or "crontab" in config or "timezone" in config:
            text = config.get("crontab") or (
                _crontab_text(task.crontab) if task is not None and task.crontab else
                settings.SYNCSVC["CATALOG_REFRESH_DEFAULT_CRONTAB"]
            )
            zone = config.get("timezone") or (str(task.crontab.timezone) if task is not None and task.crontab else
                                               settings.TIME_ZONE)
            crontab, _ = CrontabSchedule.objects.get_or_create(**_crontab_parts(text), timezone=zone)
        # The task only starts refreshes of enabled channels: its own switch is the setting's.
        enabled = bool(config.get("enabled", True)) if "enabled" in config or task is None else None
        if task is None:
            task = PeriodicTask.objects.create(
                name=name, task=TASK, args=json.dumps([channel.pk]), crontab=crontab, enabled=enabled,
                queue="bulk", description=f"Nightly catalog refresh of channel {channel.name} (id {channel.pk}).",
            )
            log.info("catalog refresh of channel %s scheduled: %s", channel.name, _crontab_text(crontab))
            return task
        changed = []
        if crontab is not None and task.crontab_id != crontab.pk:
            task.crontab, task.interval, task.solar, task.clocked = crontab, None, None, None
            changed += ["crontab", "interval", "solar", "clocked"]
        if enabled is not None and task.enabled != enabled:
            task.enabled = enabled
            changed.append("enabled")
        if changed:
            task.save(update_fields=changed)
        return task


def _crontab_text(crontab) -> str:
    return " ".join(str(getattr(crontab, field)) for field in CRONTAB_FIELDS)


def refresh_schedule_describe(channel: Channel) -> dict | None:
    """{"name", "crontab", "timezone", "enabled", "last_run_at"} of the channel's schedule."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.select_related("crontab").filter(name=schedule_name(channel.pk)).first()
    if task is None:
        return None
    return {
        "name": task.name,
        "crontab": _crontab_text(task.crontab) if task.crontab else None,
        "timezone": str(task.crontab.timezone) if task.crontab else None,
        "enabled": task.enabled,
        "last_run_at": task.last_run_at,
    }


def catalog_refresh_from_schedule(*, channel_id: int) -> int | None:
    """The schedule fired: start the refresh (its id), or None when the channel is gone,
    disabled, or already refreshing."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(name=schedule_name(channel_id)).delete()
        return None
    if not channel.enabled or not ((channel.settings or {}).get(SETTING) or {}).get("enabled", True):
        return None
    try:
        return catalog_refresh_start(channel=channel, trigger=CatalogRefresh.Trigger.SCHEDULE, requested_by="schedule").pk
    except RefreshError as error:
        log.info("scheduled catalog refresh of channel %s skipped: %s", channel.name, error.message)
        return None
