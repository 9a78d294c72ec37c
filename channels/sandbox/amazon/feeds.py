"""Feeds 2021-06-30 for JSON_LISTINGS_FEED: documents, feeds, and processing into a report.

    createFeedDocument -> upload to the presigned URL -> createFeed -> getFeed (IN_QUEUE ->
    IN_PROGRESS -> DONE | FATAL) -> getFeedDocument(resultFeedDocumentId) -> download report

A feed document is checked against Amazon's listings feed schema (header and message list,
`schemas/listings-feed-schema-v2.json`) and each message against the message schema
(`schemas/listings-feed-message-schema-v2.json`), both loaded at run time by `schema.py`. A
document that cannot be read or whose envelope breaks the schema makes the feed FATAL; a bad
message is reported under its messageId while the others are applied, as Amazon processes
them. The report follows `listings-feed-processing-report-schema-v2.json`.
"""
from __future__ import annotations

import copy
import functools
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import schema
from .attributes import Issue, Marketplace, PatchOperation, check_attributes, check_patches
from .listing import INCLUDED_DATA

FEED_SCHEMA = "listings-feed-schema-v2.json"
MESSAGE_SCHEMA = "listings-feed-message-schema-v2.json"
JSON_LISTINGS_FEED = "JSON_LISTINGS_FEED"
MAX_MESSAGES = 25_000
# Presigned S3 URLs for feed documents expire after 5 minutes (feeds model, FeedDocument.url).
DOCUMENT_URL_TTL_S = 300
FEED_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "FATAL", "CANCELLED")


def new_document_id() -> str:
    # Shaped like Amazon's ("amzn1.tortuga.4.na.<...>"): opaque, dotted, unique per seller.
    return f"amzn1.tortuga.4.na.{secrets.token_hex(16)}.{secrets.token_hex(6).upper()}"


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def normalized_content_type(content_type: str) -> str:
    """For comparing the upload's Content-Type with the one the URL was signed for."""
    return ";".join(part.strip().lower() for part in content_type.split(";") if part.strip())


@dataclass
class FeedDocument:
    """An input document (uploaded to its URL) or a result document (a processing report)."""

    document_id: str
    content_type: str
    content: bytes | None = None
    report: dict[str, Any] | None = None


@dataclass
class Feed:
    feed_id: str
    feed_type: str
    marketplace_ids: list[str]
    input_document_id: str
    created_time: str
    status: str = "IN_QUEUE"
    started_time: str | None = None
    ended_time: str | None = None
    result_document_id: str | None = None

    def view(self) -> dict[str, Any]:
        """The `Feed` definition of the feeds model."""
        answer: dict[str, Any] = {
            "feedId": self.feed_id,
            "feedType": self.feed_type,
            "marketplaceIds": list(self.marketplace_ids),
            "createdTime": self.created_time,
            "processingStatus": self.status,
        }
        if self.started_time:
            answer["processingStartTime"] = self.started_time
        if self.ended_time:
            answer["processingEndTime"] = self.ended_time
        if self.result_document_id:
            answer["resultFeedDocumentId"] = self.result_document_id
        return answer


@dataclass(frozen=True)
class MessagePlan:
    """An accepted message: what to do to which listing."""

    message_id: int
    sku: str
    operation_type: str  # UPDATE | PARTIAL_UPDATE | PATCH | DELETE
    product_type: str | None
    attributes: dict[str, Any] | None = None
    operations: tuple[PatchOperation, ...] = ()


@dataclass
class CheckedFeed:
    """A feed after checking: fatal issues, or per-message issues and the accepted plans."""

    fatal: list[Issue] = field(default_factory=list)
    message_count: int = 0
    invalid_messages: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)  # report entries
    plans: list[MessagePlan] = field(default_factory=list)
    included_data: list[str] | None = None
    report_header: dict[str, Any] | None = None


def _fatal(message: str) -> Issue:
    return Issue("4000000", message)


@functools.cache
def _envelope_validator() -> schema.Validator:
    """The feed schema with the message items left to the message schema (checked one by one,
    so one bad message is reported under its id instead of failing the whole feed)."""
    envelope = copy.deepcopy(schema.load(FEED_SCHEMA))
    envelope["properties"]["messages"]["items"] = True
    return schema.Validator(envelope)


def check_feed(
    document: FeedDocument | None, *, seller_id: str, market: Marketplace, marketplace_ids: list[str]
) -> CheckedFeed:
    """Read and check a JSON_LISTINGS_FEED document; no state is touched."""
    checked = CheckedFeed()
    if document is None or document.content is None:
        checked.fatal.append(_fatal("The feed document was not uploaded before the feed was created."))
        return checked
    if media_type(document.content_type) != "application/json":
        checked.fatal.append(
            _fatal(f"JSON_LISTINGS_FEED documents must be application/json, not {document.content_type!r}.")
        )
        return checked
    try:
        feed = json.loads(document.content.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        checked.fatal.append(_fatal(f"The feed document is not valid JSON: {error}."))
        return checked
    envelope_errors = _envelope_validator().errors(feed)
    if envelope_errors:
        checked.fatal += [
            _fatal(f"The feed does not conform to the listings feed schema: {error}.") for error in envelope_errors[:20]
        ]
        return checked
    header = feed["header"]
    if header["sellerId"] != seller_id:
        checked.fatal.append(
            _fatal(
                f"The sellerId {header['sellerId']!r} in the feed header is not the selling partner "
                "that submitted the feed."
            )
        )
        return checked
    if "report" in header:
        checked.report_header = header["report"]
        checked.included_data = [name for name in header["report"]["includedData"] if name in INCLUDED_DATA]
    messages = feed["messages"]
    checked.message_count = len(messages)
    seen: set[int] = set()
    message_validator = schema.validator(MESSAGE_SCHEMA)
    for index, message in enumerate(messages):
        _check_message(checked, index, message, message_validator, seen, market, marketplace_ids)
    return checked


def _check_message(
    checked: CheckedFeed,
    index: int,
    message: Any,
    validator: schema.Validator,
    seen: set[int],
    market: Marketplace,
    marketplace_ids: list[str],
) -> None:
    raw_id = message.get("messageId") if isinstance(message, dict) else None
    message_id = (
        int(raw_id)
        if isinstance(raw_id, (int, Decimal)) and not isinstance(raw_id, bool) and raw_id == int(raw_id)
        else None
    )
    raw_sku = message.get("sku") if isinstance(message, dict) else None
    sku = raw_sku if isinstance(raw_sku, str) and raw_sku else None

    def reject(issues: list[Issue]) -> None:
        checked.invalid_messages += 1
        # A message without a usable messageId is still counted, though it cannot be named.
        named = message_id if message_id is not None and message_id > 0 else None
        checked.issues += [issue.for_report(named, sku) for issue in issues]

    errors = validator.errors(message)
    if errors:
        reject(
            [
                Issue("4000001", f"messages[{index}] does not conform to the listings feed message schema: {error}.")
                for error in errors
            ]
        )
        return
    assert message_id is not None and sku is not None  # the schema requires both
    if message_id in seen:
        reject([Issue("4000001", f"messageId {message_id} is used by more than one message in this feed.")])
        return
    seen.add(message_id)
    operation_type = message["operationType"]
    if operation_type == "PATCH":
        outcome = check_patches(message["patches"], market, marketplace_ids)
        if not outcome.valid:
            reject(outcome.issues)
            return
        plan = MessagePlan(
            message_id, sku, operation_type, message["productType"], operations=tuple(outcome.operations)
        )
    elif operation_type in ("UPDATE", "PARTIAL_UPDATE"):
        issues = check_attributes(message["attributes"], market, marketplace_ids)
        if issues:
            reject(issues)
            return
        plan = MessagePlan(message_id, sku, operation_type, message["productType"], attributes=message["attributes"])
    else:
        plan = MessagePlan(message_id, sku, "DELETE", None)
    checked.plans.append(plan)


def build_report(
    checked: CheckedFeed, *, seller_id: str, feed_id: str, items: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The processing report (listings-feed-processing-report-schema-v2)."""
    header: dict[str, Any] = {"sellerId": seller_id, "version": "2.0", "feedId": feed_id}
    if checked.report_header is not None:
        header["report"] = checked.report_header
    issues = [issue.for_report(None, None) for issue in checked.fatal] + checked.issues
    summary: dict[str, Any] = {
        "errors": sum(1 for issue in issues if issue["severity"] == "ERROR"),
        "warnings": sum(1 for issue in issues if issue["severity"] == "WARNING"),
        "messagesProcessed": 0 if checked.fatal else checked.message_count,
        "messagesAccepted": 0 if checked.fatal else len(checked.plans),
        "messagesInvalid": 0 if checked.fatal else checked.invalid_messages,
    }
    report: dict[str, Any] = {"header": header, "issues": issues, "summary": summary}
    if items is not None:
        summary["itemSummary"] = {"items": len(items), "errors": 0, "warnings": 0}
        report["items"] = items
    return report
