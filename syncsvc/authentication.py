"""API tokens, remembered for a few seconds per process.

DRF's TokenAuthentication costs two queries per request (the token with its user, then the
user's roles); at 100 PIM changes a second that was about a fifth of the web's CPU. A
successful lookup is kept for `SYNCSVC_AUTH_CACHE_S` (5 s; 0 turns it off), with the user's
roles. A token deleted, or a user changed or regrouped, in this process forgets everything at
once; in the other processes the change takes effect within that many seconds. Failures are
never remembered: a wrong token costs its query every time and is refused every time.
"""
from __future__ import annotations

import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

from .permissions import user_roles

MAX_ENTRIES = 4096  # tokens in use at once are few (one per PIM or operator); beyond, start over

_remembered: dict[str, tuple[tuple, float]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        ttl = settings.SYNCSVC["AUTH_CACHE_S"]
        now = time.monotonic()
        hit = _remembered.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        user, token = super().authenticate_credentials(key)  # AuthenticationFailed on a bad key
        if ttl > 0:
            user_roles(user)  # computed once, kept on the user remembered with the token
            if len(_remembered) >= MAX_ENTRIES:
                _remembered.clear()
            _remembered[key] = ((user, token), now + ttl)
        return user, token


def forget_tokens(**kwargs) -> None:
    """Signal receiver: a token, a user or a user's groups changed here."""
    _remembered.clear()
