"""`POST /webhooks/{channel_id}/`: channels' own webhooks, exactly as they send them.

A plain Django view rather than DRF: the signature is over the raw bytes, and the channel,
not an API user, is authenticated (by that signature). Answers: 200 stored (or a duplicate,
or a ping), 401 bad signature, 400 malformed, 404 unknown channel, 413 too large, 415 not
JSON; nothing is stored unless the answer is 200.
"""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..inbound.base import WebhookRefused
from ..services.inbound import inbound_receive

_FORM = "application/x-www-form-urlencoded"  # WooCommerce's creation ping


def _refused(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message, "errors": {}}, status=status)


@csrf_exempt
@require_POST
def channel_webhook(request, channel_id: int):
    limit = settings.SYNCSVC["INBOUND_MAX_BYTES"]
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _refused(400, "Content-Length is not a number")
    if declared > limit:
        return _refused(413, f"body of {declared} bytes is over the limit of {limit}")
    content_type = request.content_type or ""
    if content_type not in ("application/json", _FORM, ""):
        return _refused(415, f"Content-Type must be application/json, got {content_type!r}")
    body = _body(request, declared, limit)
    if len(body) > limit:
        return _refused(413, f"body is over the limit of {limit} bytes")
    try:
        receipt = inbound_receive(channel_id=channel_id, headers=dict(request.headers), body=body)
    except WebhookRefused as error:
        return _refused(error.status, error.message)
    return JsonResponse(receipt.body, status=receipt.status)


def _body(request, declared: int, limit: int) -> bytes:
    """At most `limit + 1` bytes of the body. Django reads a body without Content-Length as
    empty; a chunked one (a relay's, or an attacker's) is read from the server's de-chunked
    stream when it says that stream ends (`wsgi.input_terminated`, as gunicorn does), so
    it is checked like any other and is a 413 past the limit, not an empty body."""
    if not declared and "Content-Length" not in request.headers and request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"].read(limit + 1)
    return request.read(limit + 1)
