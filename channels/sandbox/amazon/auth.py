"""Login with Amazon (LWA) for one store: the token endpoint and the access tokens it issued.

    POST /auth/o2/token   grant_type=refresh_token&refresh_token=...&client_id=...&client_secret=...
    -> {"access_token": "Atza|...", "token_type": "bearer", "expires_in": 3600, "refresh_token": ...}

Real LWA lives at `https://api.amazon.com/auth/o2/token`, a different host from SP-API; the
sandbox serves both under `/amazon/{store}` so one base URL configures a channel.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..messages import Request
from .errors import TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_MISSING, LwaError, unauthorized

ACCESS_TOKEN_HEADER = "x-amz-access-token"
# Expired tokens are remembered a while longer so a client hears "expired", not "invalid".
EXPIRED_TOKEN_MEMORY_S = 24 * 3600.0
MAX_REMEMBERED_TOKENS = 10_000


@dataclass(frozen=True)
class Credentials:
    """What the store expects from a client; None means "any non-empty value"."""

    client_id: str | None
    client_secret: str | None
    refresh_token: str | None


def token_request_fields(request: Request) -> dict[str, str]:
    """The token request's parameters: form-encoded as LWA documents, or a JSON object."""
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LwaError(400, "invalid_request", "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise LwaError(400, "invalid_request", "The request body must be a JSON object")
        return {name: value for name, value in body.items() if isinstance(value, str)}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise LwaError(400, "invalid_request", "The request body is not UTF-8") from None
    return {name: values[-1] for name, values in parse_qs(text).items()}


def check_token_request(fields: dict[str, str], expected: Credentials) -> str:
    """The refresh token to echo back; raises LwaError the way LWA answers a bad request."""
    grant_type = fields.get("grant_type", "")
    if not grant_type:
        raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
    if grant_type != "refresh_token":
        # LWA also knows authorization_code and client_credentials (grantless operations);
        # a sync engine only ever refreshes, so the sandbox does not emulate the others.
        raise LwaError(400, "unsupported_grant_type", f"The authorization grant type is not supported : {grant_type}")
    for name in ("refresh_token", "client_id", "client_secret"):
        if not fields.get(name):
            raise LwaError(400, "invalid_request", f"The request is missing a required parameter : {name}")
    if (expected.client_id is not None and fields["client_id"] != expected.client_id) or (
        expected.client_secret is not None
        and not secrets.compare_digest(fields["client_secret"].encode(), expected.client_secret.encode())
    ):
        # RFC 6749 section 5.2 lets invalid_client answer 401, and LWA does.
        raise LwaError(401, "invalid_client", "Client authentication failed")
    if expected.refresh_token is not None and not secrets.compare_digest(
        fields["refresh_token"].encode(), expected.refresh_token.encode()
    ):
        raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
    return fields["refresh_token"]


class AccessTokens:
    """The access tokens a store issued, each with its expiry (monotonic seconds).

    Not locked itself: the owning store calls it with its lock held.
    """

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def issue(self, lifetime_s: float, now: float) -> str:
        self._forget_long_expired(now)
        token = "Atza|" + secrets.token_urlsafe(48)
        self._expiry[token] = now + lifetime_s
        return token

    def check(self, token: str | None, now: float) -> None:
        """Raise the SP-API 403 for a missing, unknown or expired token."""
        if not token:
            raise unauthorized(TOKEN_MISSING)
        expires_at = self._expiry.get(token)
        if expires_at is None:
            raise unauthorized(TOKEN_INVALID)
        if now >= expires_at:
            raise unauthorized(TOKEN_EXPIRED)

    def _forget_long_expired(self, now: float) -> None:
        if len(self._expiry) < MAX_REMEMBERED_TOKENS:
            return
        horizon = now - EXPIRED_TOKEN_MEMORY_S
        for token in [token for token, expiry in self._expiry.items() if expiry < horizon]:
            del self._expiry[token]
        if len(self._expiry) >= MAX_REMEMBERED_TOKENS:
            # A client minting tokens in a loop: drop the oldest half rather than grow forever.
            for token in sorted(self._expiry, key=self._expiry.__getitem__)[: len(self._expiry) // 2]:
                del self._expiry[token]


def token_answer(access_token: str, refresh_token: str, lifetime_s: float) -> dict[str, Any]:
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": max(1, round(lifetime_s)),
    }
