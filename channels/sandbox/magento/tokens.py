"""Magento bearer tokens: admin tokens from `POST /V1/integration/admin/token`, and the
integration's access token.

Admin tokens are JWTs since Magento 2.4.4 (HS256, `exp` claim) and live
`admin_token_lifetime_s` (Stores > Configuration > Services > OAuth > Access Token
Expiration, 4 hours by default). The integration token is the one in the store config: it
works until the config changes, as an integration token does until it is reauthorized
(2.4.4+ also needs "use as standalone bearer token" switched on; the sandbox assumes it is).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
import threading
import uuid

DEFAULT_ADMIN_TOKEN_LIFETIME_S = 4 * 3600.0


class TokenVerdict(enum.Enum):
    ADMIN = "admin"
    INTEGRATION = "integration"
    MISSING = "missing"
    EXPIRED = "expired"
    INVALID = "invalid"

    @property
    def authorized(self) -> bool:
        return self in (TokenVerdict.ADMIN, TokenVerdict.INTEGRATION)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    """One store's issued admin tokens; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._expiry: dict[str, float] = {}

    def issue(self, username: str, lifetime_s: float, now: float) -> str:
        expires_at = now + lifetime_s
        header = _b64url(json.dumps({"kid": "1", "alg": "HS256"}).encode())
        claims = {
            "uid": 1,
            "utypid": 2,
            "iat": int(now),
            "exp": int(expires_at),
            "jti": str(uuid.uuid4()),
            "sub": username,
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64url(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        with self._lock:
            for old, old_expiry in list(self._expiry.items()):
                if old_expiry < now - 86400:  # forget tokens a day past their expiry
                    del self._expiry[old]
            self._expiry[token] = expires_at
        return token

    def check(self, authorization: str | None, integration_token: str | None, now: float) -> TokenVerdict:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return TokenVerdict.MISSING
        if integration_token and hmac.compare_digest(token.encode(), integration_token.encode()):
            return TokenVerdict.INTEGRATION
        with self._lock:
            expires_at = self._expiry.get(token)
        if expires_at is None:
            return TokenVerdict.INVALID
        return TokenVerdict.ADMIN if now < expires_at else TokenVerdict.EXPIRED
