"""Listings Items API 2021-08-01 (listingsItems_2021-08-01.json) for one store.

    GET    /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...&includedData=...
    PATCH  /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...[&mode=VALIDATION_PREVIEW]
    PUT    /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...[&mode=VALIDATION_PREVIEW]
    DELETE /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...

A malformed request (the body breaks `ListingsItemPatchRequest`, a bad query parameter) is a
400 `InvalidInput`; a well-formed submission whose values are wrong is a 200 with status
INVALID and its issues, and changes nothing, as on Amazon. A PATCH of an unknown SKU creates
an offer-only listing (Amazon accepts it: the listing is completed by later submissions).
"""
from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from ..messages import Request, Response
from . import schema
from .attributes import (
    PATCH_REQUEST_SCHEMA,
    PUT_REQUEST_SCHEMA,
    Checked,
    Marketplace,
    apply_operations,
    check_attributes,
    check_patches,
)
from .errors import SpApiError, invalid_input
from .listing import INCLUDED_DATA, render

if TYPE_CHECKING:
    from .store import AmazonStore

VALIDATION_PREVIEW = "VALIDATION_PREVIEW"
SUBMISSION_INCLUDED_DATA = ("identifiers", "issues")

_patch_request = schema.Validator(PATCH_REQUEST_SCHEMA)
_put_request = schema.Validator(PUT_REQUEST_SCHEMA)


def csv_parameter(request: Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def requested_marketplaces(request: Request, market: Marketplace) -> list[str]:
    marketplace_ids = csv_parameter(request, "marketplaceIds")
    if not marketplace_ids:
        raise invalid_input("Missing required parameter: marketplaceIds.")
    unknown = [marketplace_id for marketplace_id in marketplace_ids if marketplace_id != market.marketplace_id]
    if unknown:
        raise invalid_input(
            f"Invalid marketplaceIds: {', '.join(unknown)} (the seller sells in {market.marketplace_id})."
        )
    return marketplace_ids


def check_seller(seller_id: str, market: Marketplace) -> None:
    if seller_id != market.seller_id:
        # The token belongs to one selling partner; another seller's listings are forbidden.
        raise SpApiError(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
            f"The sellerId {seller_id!r} is not the selling partner of the access token.",
        )


def included_data(request: Request, allowed: tuple[str, ...], default: list[str]) -> list[str]:
    values = csv_parameter(request, "includedData")
    if values is None:
        return default
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise invalid_input(f"Invalid includedData: {', '.join(unknown)} (allowed: {', '.join(allowed)}).")
    return values


def get_listing(store: AmazonStore, request: Request, seller_id: str, sku: str) -> Response:
    market = store.market()
    check_seller(seller_id, market)
    requested_marketplaces(request, market)
    included = set(included_data(request, INCLUDED_DATA, ["summaries"]))
    with store.lock:
        listing = store.listings.get(sku)
        if listing is None:
            raise SpApiError(404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {market.marketplace_id}")
        return Response(200, render(listing, market, included))


def _submission_mode(request: Request) -> bool:
    mode = request.query.get("mode")
    if mode is not None and mode != VALIDATION_PREVIEW:
        raise invalid_input(f"Invalid mode: {mode!r} (allowed: {VALIDATION_PREVIEW}).")
    return mode == VALIDATION_PREVIEW


def submission_operation(request: Request, operation: str) -> str:
    """The usage plan a submission counts against: VALIDATION_PREVIEW has its own."""
    return f"{operation}:{VALIDATION_PREVIEW}" if request.query.get("mode") == VALIDATION_PREVIEW else operation


def _body(store: AmazonStore, request: Request, validator: schema.Validator) -> dict[str, Any]:
    body = store.json_body(request)
    errors = validator.errors(body)
    if errors:
        raise invalid_input("; ".join(errors[:10]))
    return dict(body)


def _answer(
    sku: str, status: str, checked: Checked, included: list[str], identifiers: list[dict[str, str]]
) -> Response:
    """A `ListingsItemSubmissionResponse`."""
    answer: dict[str, Any] = {"sku": sku, "status": status, "submissionId": uuid.uuid4().hex}
    if "issues" in included:
        answer["issues"] = [issue.for_api() for issue in checked.issues]
    if "identifiers" in included:
        answer["identifiers"] = identifiers
    return Response(200, answer)


def _submission_context(
    store: AmazonStore, request: Request, seller_id: str
) -> tuple[Marketplace, list[str], bool, list[str]]:
    market = store.market()
    check_seller(seller_id, market)
    marketplace_ids = requested_marketplaces(request, market)
    preview = _submission_mode(request)
    included = included_data(request, SUBMISSION_INCLUDED_DATA, ["issues"])
    if "identifiers" in included and not preview:
        raise invalid_input("includedData=identifiers can only be requested when mode is VALIDATION_PREVIEW.")
    return market, marketplace_ids, preview, included


def _identifiers(store: AmazonStore, sku: str, market: Marketplace) -> list[dict[str, str]]:
    with store.lock:
        listing = store.listings.get(sku)
        return [] if listing is None else [{"marketplaceId": market.marketplace_id, "asin": listing.asin}]


def patch_listing(store: AmazonStore, request: Request, seller_id: str, sku: str) -> Response:
    market, marketplace_ids, preview, included = _submission_context(store, request, seller_id)
    body = _body(store, request, _patch_request)
    checked = check_patches(body["patches"], market, marketplace_ids)
    if not checked.valid:
        return _answer(sku, "INVALID", checked, included, [])
    if preview:
        return _answer(sku, "VALID", checked, included, _identifiers(store, sku, market))
    operations = checked.operations
    store.write_listing(
        sku, body["productType"], lambda attributes: apply_operations(attributes, operations), time.time()
    )
    return _answer(sku, "ACCEPTED", checked, included, [])


def put_listing(store: AmazonStore, request: Request, seller_id: str, sku: str) -> Response:
    market, marketplace_ids, preview, included = _submission_context(store, request, seller_id)
    body = _body(store, request, _put_request)
    checked = Checked(issues=check_attributes(body["attributes"], market, marketplace_ids))
    if not checked.valid:
        return _answer(sku, "INVALID", checked, included, [])
    if preview:
        return _answer(sku, "VALID", checked, included, _identifiers(store, sku, market))
    attributes = body["attributes"]
    # A full update: the listing becomes exactly these attributes.
    store.write_listing(sku, body["productType"], lambda _current: dict(attributes), time.time())
    return _answer(sku, "ACCEPTED", checked, included, [])


def delete_listing(store: AmazonStore, request: Request, seller_id: str, sku: str) -> Response:
    market = store.market()
    check_seller(seller_id, market)
    requested_marketplaces(request, market)
    store.delete_listing(sku)
    return _answer(sku, "ACCEPTED", Checked(), ["issues"], [])
