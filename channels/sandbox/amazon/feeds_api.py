"""Feeds API 2021-06-30 (feeds_2021-06-30.json) and the presigned document URLs, for one store.

    POST   /feeds/2021-06-30/documents               {"contentType"} -> 201 {"feedDocumentId", "url"}
    PUT    {url} (/_upload/{id}?expires=...)          the document bytes, with that Content-Type
    POST   /feeds/2021-06-30/feeds                    {"feedType", "marketplaceIds", "inputFeedDocumentId"}
                                                      -> 202 {"feedId"}
    GET    /feeds/2021-06-30/feeds?processingStatuses=...&feedTypes=...&pageSize=...
    GET    /feeds/2021-06-30/feeds/{feedId}           the Feed, IN_QUEUE -> IN_PROGRESS -> DONE | FATAL
    DELETE /feeds/2021-06-30/feeds/{feedId}           cancel, only while IN_QUEUE
    GET    /feeds/2021-06-30/documents/{id}           {"feedDocumentId", "url"} to download
    GET    {url} (/_download/{id}?expires=...)        the document (the processing report)

The presigned URLs stand in for Amazon S3: they need no access token, expire after 5 minutes,
and an upload must carry the Content-Type the document was created with (S3 answers 403
SignatureDoesNotMatch otherwise). S3 answers in XML; the sandbox answers its errors in JSON
with S3's `Code`/`Message` names.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..messages import Request, Response
from . import schema
from .errors import SpApiError, invalid_input
from .feeds import (
    DOCUMENT_URL_TTL_S,
    FEED_STATUSES,
    JSON_LISTINGS_FEED,
    Feed,
    FeedDocument,
    new_document_id,
    normalized_content_type,
)
from .times import amazon_time

if TYPE_CHECKING:
    from .store import AmazonStore

# `CreateFeedDocumentSpecification` and `CreateFeedSpecification` of the feeds model.
_create_document = schema.Validator(
    {"type": "object", "required": ["contentType"], "properties": {"contentType": {"type": "string", "minLength": 1}}}
)
_create_feed = schema.Validator(
    {
        "type": "object",
        "required": ["inputFeedDocumentId", "feedType", "marketplaceIds"],
        "properties": {
            "feedType": {"type": "string"},
            "marketplaceIds": {"type": "array", "minItems": 1, "maxItems": 25, "items": {"type": "string"}},
            "inputFeedDocumentId": {"type": "string"},
            "feedOptions": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
)


def _store_url(store: AmazonStore, request: Request) -> str:
    # The URL the client used to reach the sandbox, so the presigned URL works from where it is.
    host = request.header("Host") or "127.0.0.1"
    return f"http://{host}/amazon/{quote(store.name, safe='')}"


def _presigned(store: AmazonStore, request: Request, action: str, document_id: str) -> str:
    expires = int(time.time()) + DOCUMENT_URL_TTL_S
    return f"{_store_url(store, request)}/{action}/{quote(document_id, safe='')}?expires={expires}"


def _checked_body(store: AmazonStore, request: Request, validator: schema.Validator) -> dict[str, Any]:
    body = store.json_body(request)
    errors = validator.errors(body)
    if errors:
        raise invalid_input("; ".join(errors[:10]))
    return dict(body)


def create_feed_document(store: AmazonStore, request: Request) -> Response:
    body = _checked_body(store, request, _create_document)
    document = FeedDocument(new_document_id(), body["contentType"])
    with store.lock:
        store.documents[document.document_id] = document
    return Response(
        201,
        {"feedDocumentId": document.document_id, "url": _presigned(store, request, "_upload", document.document_id)},
    )


def get_feed_document(store: AmazonStore, request: Request, document_id: str) -> Response:
    with store.lock:
        known = document_id in store.documents
    if not known:
        raise SpApiError(
            404, "NotFound", "The requested feed document was not found.", f"feedDocumentId {document_id!r}"
        )
    return Response(200, {"feedDocumentId": document_id, "url": _presigned(store, request, "_download", document_id)})


def create_feed(store: AmazonStore, request: Request) -> Response:
    body = _checked_body(store, request, _create_feed)
    market = store.market()
    if body["feedType"] != JSON_LISTINGS_FEED:
        # Amazon takes many feed types; the sandbox processes only the JSON listings feed.
        raise invalid_input(f"The sandbox processes only feedType {JSON_LISTINGS_FEED}, not {body['feedType']!r}.")
    unknown = [marketplace_id for marketplace_id in body["marketplaceIds"] if marketplace_id != market.marketplace_id]
    if unknown:
        raise invalid_input(
            f"Invalid marketplaceIds: {', '.join(unknown)} (the seller sells in {market.marketplace_id})."
        )
    with store.lock:
        if body["inputFeedDocumentId"] not in store.documents:
            raise invalid_input(f"Invalid inputFeedDocumentId: {body['inputFeedDocumentId']!r}.")
        feed = Feed(
            store.next_feed_id(),
            body["feedType"],
            list(body["marketplaceIds"]),
            body["inputFeedDocumentId"],
            amazon_time(time.time()),
        )
        store.feeds[feed.feed_id] = feed
    store.schedule_feed(feed.feed_id)
    return Response(202, {"feedId": feed.feed_id})


def get_feed(store: AmazonStore, request: Request, feed_id: str) -> Response:
    with store.lock:
        feed = store.feeds.get(feed_id)
        if feed is None:
            raise SpApiError(404, "NotFound", "The requested feed was not found.", f"feedId {feed_id!r}")
        return Response(200, feed.view())


def get_feeds(store: AmazonStore, request: Request) -> Response:
    feed_types = _csv(request, "feedTypes")
    statuses = _csv(request, "processingStatuses")
    unknown = [status for status in statuses or [] if status not in FEED_STATUSES]
    if unknown:
        raise invalid_input(f"Invalid processingStatuses: {', '.join(unknown)}.")
    page_size_text = request.query.get("pageSize", "10")
    if not page_size_text.isdigit() or not 1 <= int(page_size_text) <= 100:
        raise invalid_input(f"pageSize must be an integer from 1 to 100, got {page_size_text!r}.")
    with store.lock:
        feeds = [
            feed.view()
            for feed in reversed(store.feeds.values())
            if (feed_types is None or feed.feed_type in feed_types) and (statuses is None or feed.status in statuses)
        ]
    # The most recent first, one page; the sandbox does not page further (no nextToken).
    return Response(200, {"feeds": feeds[: int(page_size_text)]})


def cancel_feed(store: AmazonStore, request: Request, feed_id: str) -> Response:
    with store.lock:
        feed = store.feeds.get(feed_id)
        if feed is None:
            raise SpApiError(404, "NotFound", "The requested feed was not found.", f"feedId {feed_id!r}")
        if feed.status != "IN_QUEUE":
            raise invalid_input(f"Only feeds IN_QUEUE can be cancelled; feed {feed_id} is {feed.status}.")
        feed.status = "CANCELLED"
    return Response(200, {})


def _csv(request: Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    return None if raw is None else [part.strip() for part in raw.split(",") if part.strip()]


# --- the presigned URLs (S3 stand-ins) -------------------------------------------------------


def _s3_error(status: int, code: str, message: str) -> Response:
    return Response(status, {"Code": code, "Message": message})


def _check_expiry(request: Request) -> Response | None:
    expires = request.query.get("expires", "")
    if not expires.isdigit():
        return _s3_error(403, "AccessDenied", "Query-string authentication requires the expires parameter")
    if time.time() > int(expires):
        return _s3_error(403, "AccessDenied", "Request has expired")
    return None


def upload_document(store: AmazonStore, request: Request, document_id: str) -> Response:
    if request.method != "PUT":
        return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    refused = _check_expiry(request)
    if refused is not None:
        return refused
    sent_type = request.header("Content-Type") or ""
    with store.lock:
        document = store.documents.get(document_id)
        if document is None:
            return _s3_error(403, "AccessDenied", "Access Denied")
        if normalized_content_type(sent_type) != normalized_content_type(document.content_type):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided: the URL was "
                f"signed for Content-Type {document.content_type!r}, the upload sent {sent_type!r}.",
            )
        document.content = request.body
    request.log["bytes"] = len(request.body)
    # S3 answers an upload with the MD5 of the bytes as ETag.
    return Response(200, {}, {"ETag": f'"{hashlib.md5(request.body, usedforsecurity=False).hexdigest()}"'})


def download_document(store: AmazonStore, request: Request, document_id: str) -> Response:
    if request.method != "GET":
        return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    refused = _check_expiry(request)
    if refused is not None:
        return refused
    with store.lock:
        document = store.documents.get(document_id)
        report = document.report if document is not None else None
        content = document.content if document is not None else None
    if report is not None:
        return Response(200, report)
    if content is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    try:
        # The server only speaks JSON; an uploaded JSON feed reads back as itself.
        return Response(200, json.loads(content))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _s3_error(415, "NotJson", "The sandbox can only serve JSON documents back.")
