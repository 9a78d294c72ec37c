"""How an SP-API error answer becomes a CallError."""
from __future__ import annotations

import requests

from ..rest import CallError, json_body, status_error


def sp_api_error(response: requests.Response) -> CallError:
    """SP-API errors are `{"errors": [{"code", "message", "details"}]}`: the first one speaks."""
    body = json_body(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        message = " ".join(str(part) for part in (first.get("message"), first.get("details")) if part)
        return status_error(response, str(first.get("code") or f"http_{response.status_code}"), message)
    return status_error(response)
