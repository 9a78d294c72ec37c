"""The error answers of SP-API and of Login with Amazon (LWA), as their clients parse them.

SP-API answers every failure with an `ErrorList` (`{"errors": [{"code", "message",
"details"}]}`, per the `Error`/`ErrorList` definitions of the listings and feeds models) and a
`x-amzn-RequestId` header; LWA answers OAuth 2.0 style (`{"error", "error_description"}`).
"""
from __future__ import annotations

from typing import Any

from ..messages import Response

ACCESS_DENIED = "Access to requested resource is denied."
TOKEN_MISSING = "Access token is missing in the request header."
TOKEN_EXPIRED = "The access token you provided has expired."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
INVALID_INPUT = "Request has missing or invalid parameters and cannot be parsed."
QUOTA_EXCEEDED = "You exceeded your quota for the requested resource."


def error_list(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


class SpApiError(Exception):
    """An SP-API failure raised from inside a handler and answered as an `ErrorList`."""

    def __init__(
        self, status: int, code: str, message: str, details: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message} {details}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def response(self) -> Response:
        return Response(self.status, error_list(self.code, self.message, self.details), dict(self.headers))


def unauthorized(details: str) -> SpApiError:
    # SP-API answers 403 (not 401) for a missing, unknown or expired access token; some client
    # libraries and older docs describe the expired case as 401, so clients should treat both
    # as "refresh the token and retry once".
    return SpApiError(403, "Unauthorized", ACCESS_DENIED, details)


def invalid_input(details: str, status: int = 400) -> SpApiError:
    return SpApiError(status, "InvalidInput", INVALID_INPUT, details)


def not_found(message: str, details: str = "") -> SpApiError:
    return SpApiError(404, "NotFound", message, details)


class LwaError(Exception):
    """A Login with Amazon token endpoint failure (`{"error", "error_description"}`)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> Response:
        # Token answers must never be cached (RFC 6749 section 5.1 and 5.2).
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return Response(self.status, {"error": self.error, "error_description": self.description}, headers)
