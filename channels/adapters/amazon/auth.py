"""Login with Amazon: a refresh token traded for an access token (1 h), shared by every worker
through the channel cache and renewed a minute before it expires or when SP-API refuses it."""
from __future__ import annotations

import requests

from ..base import ChannelConfig, ChannelContext, Outcome
from ..http import session_for
from ..rest import CallError, json_body, network_error, status_error, timeout_s

TOKEN_CACHE = "amazon_lwa_access_token"
REFRESH_MARGIN_S = 60.0
AUTH_BUCKET = "auth"


def lwa_url(config: ChannelConfig) -> str:
    """Real Amazon: https://api.amazon.com/auth/o2/token; a sandbox serves it under its base URL."""
    return config.settings.get("lwa_url") or f"{config.base_url.rstrip('/')}/auth/o2/token"


class AccessTokens:
    def __init__(self, config: ChannelConfig, context: ChannelContext):
        self.config = config
        self.context = context

    def current(self) -> str:
        """The shared access token, fetched from LWA when none is cached (or it is stale)."""
        cached = self.context.cache_get(TOKEN_CACHE)
        return cached if cached else self._fetch()

    def forget(self) -> None:
        """SP-API refused the token: drop it so the next `current` fetches a fresh one."""
        self.context.cache_delete(TOKEN_CACHE)

    def _fetch(self) -> str:
        wait = self.context.acquire(1, bucket=AUTH_BUCKET)
        if wait > 0:
            raise CallError.throttled(wait)
        credentials = self.config.credentials
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.get("refresh_token", ""),
            "client_id": credentials.get("client_id", ""),
            "client_secret": credentials.get("client_secret", ""),
        }
        try:
            response = session_for(self.config.id).post(
                lwa_url(self.config), data=form, timeout=timeout_s(),
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise network_error(exc) from None
        body = json_body(response)
        if 200 <= response.status_code < 300 and isinstance(body, dict) and body.get("access_token"):
            ttl = float(body.get("expires_in") or 3600) - REFRESH_MARGIN_S
            self.context.cache_set(TOKEN_CACHE, body["access_token"], max(1.0, ttl))
            return body["access_token"]
        # LWA errors are OAuth's: {"error": "invalid_grant", "error_description": "..."}.
        code = str(body.get("error") or "") if isinstance(body, dict) else ""
        message = str(body.get("error_description") or "") if isinstance(body, dict) else ""
        error = status_error(response, code and f"lwa_{code}", message)
        if error.outcome is Outcome.THROTTLED:
            self.context.pause(error.retry_after or 1.0, bucket=AUTH_BUCKET)
            raise error
        if error.outcome is Outcome.RETRY:
            raise error
        # 400 invalid_grant / invalid_client and the like: the credentials, not the request.
        raise CallError(Outcome.AUTH, error.code, error.message)
