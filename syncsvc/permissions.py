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
