"""Roles: `pim` writes the catalog and stock, `ops` runs channels and sync, `merchandiser`
reads everything (and works in the admin). Superusers may do anything."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

ROLES = ("pim", "merchandiser", "ops")


def user_roles(user) -> set[str]:
    cached = getattr(user, "_syncsvc_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._syncsvc_roles = cached
    return cached


def api_token(username: str, *roles: str) -> str:
    """The API token of `username` (created with the user if needed), in the given roles'
    groups: what `manage.py createapitoken` prints, and how tests and benchmarks call the API."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username=username)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return Token.objects.get_or_create(user=user)[0].key


class RolePermission(BasePermission):
    """Reads need any authenticated user; writes need one of the view's `write_roles`."""

    message = "Your token's role may not do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS or user.is_superuser:
            return True
        allowed = set(getattr(view, "write_roles", ()))
        return bool(allowed & user_roles(user))


# What each role may do in the admin (the merchandisers' and operators' interface), as
# Django permissions given to the role's group after every migrate; a permission an operator
# adds to a group by hand is kept. Every role may view the catalog, the ledger and the sync
# state; beyond that:
ADMIN_GRANTS = {
    "pim": (),
    "merchandiser": ("channels.add_resyncjob",),
    "ops": (
        "channels.add_channel", "channels.change_channel", "channels.change_channelhealth",
        "channels.change_channelcircuit", "channels.add_resyncjob", "channels.change_resyncjob",
        "channels.change_inboundevent",
        # Catalog refreshes and their schedules (django-celery-beat's periodic tasks, crontabs).
        "channels.add_catalogrefresh", "channels.change_catalogrefresh",
        "django_celery_beat.view_periodictask", "django_celery_beat.change_periodictask",
        "django_celery_beat.view_crontabschedule", "django_celery_beat.add_crontabschedule",
        "django_celery_beat.change_crontabschedule",
    ),
}
VIEWABLE_APPS = ("inventory", "channels")


def roles_grant(**kwargs) -> None:
    """post_migrate: make the role groups and give them their admin permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    viewable = list(Permission.objects.filter(content_type__app_label__in=VIEWABLE_APPS, codename__startswith="view_"))
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        granted = [
            Permission.objects.filter(content_type__app_label=app, codename=codename).first()
            for app, codename in (grant.split(".") for grant in ADMIN_GRANTS[role])
        ]
        group.permissions.add(*viewable, *[p for p in granted if p is not None])
