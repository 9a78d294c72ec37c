"""The Amazon SP-API emulator, over real HTTP against a sandbox subprocess (no database needed)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import requests

from tests.support.receiver import WebhookReceiver
from tests.support.sandbox import REPO_ROOT, SandboxProcess, wait_until

KIND = "amazon"
SELLER = "A1SANDBOXSELLER"
MARKETPLACE = "ATVPDKIKX0DER"
SCHEMAS = REPO_ROOT / "channels" / "sandbox" / "amazon" / "schemas"
WEBHOOK_SECRET = "sqs-stand-in-secret"



@pytest.fixture
def store() -> str:
    # A fresh store per test: its own listings, tokens and token buckets.
    return f"seller-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver("/inbound/amazon") as endpoint:
        yield endpoint


# --- helpers speaking the real API ----------------------------------------------------------


def lwa_token(sandbox: SandboxProcess, store: str, **fields: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|refresh",
        "client_id": "amzn1.application-oa2-client.x",
        "client_secret": "secret",
    }
    return requests.post(f"{sandbox.url}/amazon/{store}/auth/o2/token", data={**form, **fields}, timeout=10)


def access_token(sandbox: SandboxProcess, store: str) -> str:
    response = lwa_token(sandbox, store)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class SpApi:
    """Calls one store's SP-API with a token, as an adapter would."""

    def __init__(self, sandbox: SandboxProcess, store: str, token: str | None = None) -> None:
        self.base = f"{sandbox.url}/amazon/{store}"
        self.token = token if token is not None else access_token(sandbox, store)
        self.session = requests.Session()

    def headers(self) -> dict[str, str]:
        return {"x-amz-access-token": self.token} if self.token else {}

    def get_listing(
        self,
        sku: str,
        included: str = "summaries,attributes,offers,fulfillmentAvailability,issues",
        seller: str = SELLER,
    ) -> requests.Response:
        params = {"marketplaceIds": MARKETPLACE, "includedData": included}
        return self.session.get(
            f"{self.base}/listings/2021-08-01/items/{seller}/{sku}", params=params, headers=self.headers(), timeout=10
        )

    def patch_listing(
        self,
        sku: str,
        patches: list[dict[str, Any]],
        *,
        seller: str = SELLER,
        mode: str | None = None,
        body: Any = None,
    ) -> requests.Response:
        params = {"marketplaceIds": MARKETPLACE, **({"mode": mode} if mode else {})}
        payload = body if body is not None else {"productType": "PRODUCT", "patches": patches}
        return self.session.patch(
            f"{self.base}/listings/2021-08-01/items/{seller}/{sku}",
            params=params,
            json=payload,
            headers=self.headers(),
            timeout=10,
        )

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body, headers=self.headers(), timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", headers=self.headers(), timeout=10)


def price_patch(value: Any, currency: str = "USD") -> dict[str, Any]:
    return {
        "op": "replace",
        "path": "/attributes/purchasable_offer",
        "value": [
            {
                "marketplace_id": MARKETPLACE,
                "currency": currency,
                "our_price": [{"schedule": [{"value_with_tax": value}]}],
            }
        ],
    }


def quantity_patch(quantity: Any) -> dict[str, Any]:
    return {
        "op": "replace",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
    }


def wait_for_status(call: Callable[[], requests.Response], status: int, timeout: float = 5.0) -> requests.Response:
    """The first answer with `status` (a 4xx Response is falsy, so wrap it for wait_until)."""
    answer = wait_until(
        lambda: (lambda response: (response,) if response.status_code == status else None)(call()),
        timeout=timeout,
        interval=0.1,
        message=f"never answered {status}",
    )
    return answer[0]


def control_view(sandbox: SandboxProcess, store: str, resource: str) -> dict[str, Any]:
    """One of the amazon kind's own control views (stats, deliveries, feeds)."""
    response = requests.get(f"{sandbox.url}/_sandbox/amazon/{store}/{resource}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


# --- Login with Amazon ----------------------------------------------------------------------


def test_token_endpoint_issues_a_bearer_token_like_lwa(sandbox, store):
    # when
    response = lwa_token(sandbox, store)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|")
    assert (body["token_type"], body["expires_in"], body["refresh_token"]) == ("bearer", 3600, "Atzr|refresh")
    assert response.headers["Cache-Control"] == "no-store"


def test_token_endpoint_checks_configured_credentials_with_lwa_errors(sandbox, control, store):
    # given
    control.config(KIND, store, client_id="client-1", client_secret="secret-1", refresh_token="Atzr|good")

    # when
    wrong_secret = lwa_token(sandbox, store, client_id="client-1", client_secret="nope", refresh_token="Atzr|good")
    wrong_refresh = lwa_token(sandbox, store, client_id="client-1", client_secret="secret-1", refresh_token="Atzr|bad")
    missing = lwa_token(sandbox, store, client_id="client-1", client_secret="secret-1", refresh_token="")
    wrong_grant = lwa_token(sandbox, store, grant_type="password")
    right = lwa_token(sandbox, store, client_id="client-1", client_secret="secret-1", refresh_token="Atzr|good")

    # then
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert (wrong_refresh.status_code, wrong_refresh.json()["error"]) == (400, "invalid_grant")
    assert "error_description" in wrong_refresh.json()
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    assert right.status_code == 200
    assert control.config(KIND, store)["client_secret"] == "***"


def test_expired_token_gets_403_and_a_fresh_token_works(sandbox, control, store):
    # given
    control.config(KIND, store, token_lifetime_s=0.3)
    control.put_item(KIND, store, "SKU-1", price="5.00", available=1)
    api = SpApi(sandbox, store)
    assert api.get_listing("SKU-1").status_code == 200

    # when
    expired = wait_for_status(lambda: api.get_listing("SKU-1"), 403)
    api.token = access_token(sandbox, store)
    fresh = api.get_listing("SKU-1")

    # then
    assert expired.json() == {
        "errors": [
            {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": "The access token you provided has expired.",
            }
        ]
    }
    assert "x-amzn-RequestId" in expired.headers
    assert fresh.status_code == 200


@pytest.mark.parametrize(
    ("token", "details"),
    [
        ("", "Access token is missing in the request header."),
        ("Atza|forged", "The access token you provided is revoked, malformed or invalid."),
    ],
    ids=["missing", "unknown"],
)
def test_missing_or_unknown_token_gets_403_with_the_sp_api_error_list(sandbox, control, store, token, details):
    # given
    api = SpApi(sandbox, store, token=token)

    # when
    response = api.get_listing("SKU-1")

    # then
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"
    assert response.json()["errors"][0]["details"] == details


# --- Listings Items -------------------------------------------------------------------------


def test_patch_price_and_quantity_land_and_get_reads_them_back(sandbox, control, store):
    # given
    control.put_item(KIND, store, "SKU-1", price="10.00", available=3, title="Blue mug")
    api = SpApi(sandbox, store)

    # when
    patched = api.patch_listing("SKU-1", [price_patch(12.50), quantity_patch(7)])
    read = api.get_listing("SKU-1")

    # then
    assert patched.status_code == 200
    assert patched.json()["status"] == "ACCEPTED" and patched.json()["issues"] == []
    assert patched.json()["sku"] == "SKU-1" and patched.json()["submissionId"]
    assert patched.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert patched.headers["x-amzn-RequestId"]
    listing = read.json()
    assert listing["attributes"]["purchasable_offer"][0]["our_price"][0]["schedule"][0]["value_with_tax"] == 12.5
    assert listing["attributes"]["purchasable_offer"][0]["currency"] == "USD"
    assert listing["attributes"]["fulfillment_availability"] == [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}]
    assert listing["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 7}]
    assert listing["offers"][0]["price"] == {"currencyCode": "USD", "amount": "12.50"}
    assert listing["summaries"][0]["itemName"] == "Blue mug"
    assert listing["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    item = control.item(KIND, store, "SKU-1")
    assert (item["price"], item["available"], item["writes"]) == ("12.50", 7, 1)


def test_get_returns_only_the_included_data_asked_for(sandbox, control, store):
    # given
    control.put_item(KIND, store, "SKU-1", price="1.00", available=1)
    api = SpApi(sandbox, store)

    # when
    default = api.get_listing("SKU-1", included="")
    offers_only = api.get_listing("SKU-1", included="offers")

    # then
    assert set(default.json()) == {"sku", "summaries"}
    assert set(offers_only.json()) == {"sku", "offers"}


def test_patch_of_an_unknown_sku_creates_an_offer_only_listing(sandbox, control, store):
    # given
    api = SpApi(sandbox, store)

    # when
    patched = api.patch_listing("NEW-SKU", [quantity_patch(4)])

    # then: Amazon accepts offers for SKUs it will complete later
    assert patched.json()["status"] == "ACCEPTED"
    assert api.get_listing("NEW-SKU").json()["fulfillmentAvailability"] == [
        {"fulfillmentChannelCode": "DEFAULT", "quantity": 4}
    ]
    assert control.item(KIND, store, "NEW-SKU")["available"] == 4


@pytest.mark.parametrize(
    ("patches", "attribute", "code"),
    [
        ([price_patch("12.50")], "purchasable_offer", "4000001"),
        ([price_patch(-1)], "purchasable_offer", "4000001"),
        ([price_patch(12.5, currency="EUR")], "purchasable_offer", "4000001"),
        ([quantity_patch(-3)], "fulfillment_availability", "4000001"),
        ([quantity_patch("7")], "fulfillment_availability", "4000001"),
        (
            [{"op": "replace", "path": "/attributes/fulfillmentAvailability", "value": [{"quantity": 1}]}],
            "fulfillmentAvailability",
            "90000900",
        ),
        (
            [{"op": "replace", "path": "/attributes/fulfillment_availability", "value": [{"quantity": 1}]}],
            "fulfillment_availability",
            "90220",
        ),
    ],
    ids=[
        "price-as-string",
        "negative-price",
        "wrong-currency",
        "negative-quantity",
        "quantity-as-string",
        "camel-case-attribute",
        "no-channel-code",
    ],
)
def test_patch_with_bad_values_is_invalid_with_issues_and_changes_nothing(
    sandbox, control, store, patches, attribute, code
):
    # given
    control.put_item(KIND, store, "SKU-1", price="10.00", available=3)
    api = SpApi(sandbox, store)

    # when: a valid patch rides along, so a partial apply would show
    response = api.patch_listing("SKU-1", [quantity_patch(99), *patches])

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "INVALID"
    [issue] = body["issues"]
    assert (issue["code"], issue["severity"], issue["attributeNames"]) == (code, "ERROR", [attribute])
    assert issue["message"] and isinstance(issue["categories"], list)
    item = control.item(KIND, store, "SKU-1")
    assert (item["price"], item["available"], item["writes"]) == ("10.00", 3, 0)


@pytest.mark.parametrize(
    "body",
    [
        {"patches": [{"op": "replace", "path": "/attributes/fulfillment_availability", "value": []}]},
        {"productType": "PRODUCT", "patches": []},
        {"productType": "PRODUCT", "patches": [{"op": "upsert", "path": "/attributes/x", "value": []}]},
        {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/x", "value": {"quantity": 1}}]},
    ],
    ids=["no-product-type", "no-patches", "unknown-op", "value-not-an-array"],
)
def test_patch_body_breaking_the_request_schema_is_400_invalid_input(sandbox, store, body):
    # given
    api = SpApi(sandbox, store)

    # when
    response = api.patch_listing("SKU-1", [], body=body)

    # then
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "InvalidInput"
    assert error["details"]


def test_validation_preview_validates_without_applying(sandbox, control, store):
    # given
    control.put_item(KIND, store, "SKU-1", price="10.00", available=3)
    control.config(KIND, store, validation_preview_burst=2)
    api = SpApi(sandbox, store)

    # when
    valid = api.patch_listing("SKU-1", [price_patch(20)], mode="VALIDATION_PREVIEW")
    invalid = api.patch_listing("SKU-1", [price_patch("twenty")], mode="VALIDATION_PREVIEW")

    # then
    assert (valid.status_code, valid.json()["status"]) == (200, "VALID")
    assert invalid.json()["status"] == "INVALID"
    assert valid.headers["x-amzn-RateLimit-Limit"] == "1.0"
    item = control.item(KIND, store, "SKU-1")
    assert (item["price"], item["writes"]) == ("10.00", 0)


def test_validation_preview_has_its_own_one_per_second_plan(sandbox, store):
    # given
    api = SpApi(sandbox, store)
    assert api.patch_listing("SKU-1", [quantity_patch(1)], mode="VALIDATION_PREVIEW").status_code == 200

    # when
    second = api.patch_listing("SKU-1", [quantity_patch(1)], mode="VALIDATION_PREVIEW")
    applied = api.patch_listing("SKU-1", [quantity_patch(1)])

    # then
    assert second.status_code == 429
    assert applied.status_code == 200


def test_patch_for_another_seller_is_forbidden(sandbox, control, store):
    # given
    api = SpApi(sandbox, store)

    # when
    response = api.patch_listing("SKU-1", [quantity_patch(1)], seller="A2OTHERSELLER")

    # then
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"
    assert control.item(KIND, store, "SKU-1") is None


def test_get_of_an_unknown_sku_is_404_with_the_sp_api_error_list(sandbox, store):
    # when
    response = SpApi(sandbox, store).get_listing("NOPE")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {"code": "NOT_FOUND", "message": f"SKU 'NOPE' not found in marketplace {MARKETPLACE}", "details": ""}
        ]
    }
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"


def test_seller_and_marketplace_come_from_config(sandbox, control, store):
    # given
    control.config(KIND, store, seller_id="A3UKSELLER", marketplace_id="A1F83G8C2ARO7P")
    api = SpApi(sandbox, store)
    body = {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/purchasable_offer",
                "value": [
                    {
                        "marketplace_id": "A1F83G8C2ARO7P",
                        "currency": "GBP",
                        "our_price": [{"schedule": [{"value_with_tax": 9.99}]}],
                    }
                ],
            }
        ],
    }

    # when
    response = api.session.patch(
        f"{api.base}/listings/2021-08-01/items/A3UKSELLER/SKU-UK",
        params={"marketplaceIds": "A1F83G8C2ARO7P"},
        json=body,
        headers=api.headers(),
        timeout=10,
    )
    wrong_marketplace = api.get_listing("SKU-UK", seller="A3UKSELLER")

    # then
    assert response.json()["status"] == "ACCEPTED"
    assert control.item(KIND, store, "SKU-UK")["price"] == "9.99"
    assert wrong_marketplace.status_code == 400  # the seller does not sell in ATVPDKIKX0DER


# --- throttling -----------------------------------------------------------------------------


def test_patch_is_throttled_past_its_burst_with_429_then_refills(sandbox, control, store):
    # given: the documented plan, 5 requests per second with a burst of 5
    api = SpApi(sandbox, store)

    # when: patches as fast as possible until the bucket runs dry
    started = time.monotonic()
    statuses = []
    throttled = None
    while throttled is None and len(statuses) < 50:
        response = api.patch_listing("SKU-1", [quantity_patch(len(statuses))])
        statuses.append(response.status_code)
        if response.status_code == 429:
            throttled = response
    elapsed = time.monotonic() - started

    # then: the burst passes, plus at most what refilled meanwhile
    admitted = statuses.index(429)
    assert 5 <= admitted <= 5 + int(elapsed * 5) + 1
    assert throttled.json() == {
        "errors": [
            {"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""}
        ]
    }
    assert throttled.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert api.get_listing("SKU-1").status_code == 200  # another operation, another bucket
    wait_for_status(lambda: api.patch_listing("SKU-1", [quantity_patch(1)]), 200, timeout=2)
    stats = control_view(sandbox, store, "stats")
    assert stats["throttled"] >= 1
    assert stats["by_operation"]["patchListingsItem"]["throttled"] >= 1
    assert stats["by_operation"]["getListingsItem"] == {"calls": 1, "throttled": 0}
    assert stats["calls"] == sum(operation["calls"] for operation in stats["by_operation"].values())


def test_burst_is_a_setting(sandbox, control, store):
    # given: an older plan's burst of 10
    control.config(KIND, store, patch_burst=10, patch_rate_per_s=0.1)
    api = SpApi(sandbox, store)

    # when
    statuses = [api.patch_listing("SKU-1", [quantity_patch(1)]).status_code for _ in range(11)]

    # then
    assert statuses == [200] * 10 + [429]


# --- feeds ----------------------------------------------------------------------------------


def submit_feed(api: SpApi, document: bytes, content_type: str = "application/json; charset=UTF-8") -> str:
    created = api.post("/feeds/2021-06-30/documents", {"contentType": content_type})
    assert created.status_code == 201, created.text
    upload = requests.put(created.json()["url"], data=document, headers={"Content-Type": content_type}, timeout=10)
    assert upload.status_code == 200, upload.text
    feed = api.post(
        "/feeds/2021-06-30/feeds",
        {
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [MARKETPLACE],
            "inputFeedDocumentId": created.json()["feedDocumentId"],
        },
    )
    assert feed.status_code == 202, feed.text
    return str(feed.json()["feedId"])


def wait_for_feed(api: SpApi, feed_id: str) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []

    def finished() -> dict[str, Any] | None:
        feed = api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
        if not seen or seen[-1] != feed["processingStatus"]:
            seen.append(feed["processingStatus"])
        return feed if feed["processingStatus"] in ("DONE", "FATAL", "CANCELLED") else None

    return wait_until(finished, timeout=10, interval=0.05, message=f"feed {feed_id} never finished"), seen


def download_report(api: SpApi, document_id: str) -> dict[str, Any]:
    document = api.get(f"/feeds/2021-06-30/documents/{document_id}")
    assert document.status_code == 200, document.text
    assert document.json()["feedDocumentId"] == document_id
    report = requests.get(document.json()["url"], timeout=10)
    assert report.status_code == 200
    return dict(report.json())


def test_feed_applies_valid_messages_and_reports_the_invalid_one(sandbox, control, store):
    # given
    control.config(KIND, store, feed_processing_ms=600, get_feed_rate_per_s=50, get_feed_burst=50)
    control.put_item(KIND, store, "SKU-1", price="10.00", available=5)
    api = SpApi(sandbox, store)
    feed_document = {
        "header": {"sellerId": SELLER, "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": 1,
                "sku": "SKU-1",
                "operationType": "PATCH",
                "productType": "PRODUCT",
                "patches": [price_patch(11.25)],
            },
            {
                "messageId": 2,
                "sku": "SKU-2",
                "operationType": "PATCH",
                "productType": "PRODUCT",
                "patches": [quantity_patch(8)],
            },
            {
                "messageId": 3,
                "sku": "SKU-3",
                "operationType": "PATCH",
                "productType": "PRODUCT",
                "patches": [quantity_patch(-1)],
            },
        ],
    }

    # when
    feed_id = submit_feed(api, json.dumps(feed_document).encode())
    feed, statuses = wait_for_feed(api, feed_id)
    report = download_report(api, feed["resultFeedDocumentId"])

    # then
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "DONE"
    assert statuses == [status for status in ("IN_QUEUE", "IN_PROGRESS", "DONE") if status in statuses]
    assert feed["feedType"] == "JSON_LISTINGS_FEED" and feed["processingStartTime"] and feed["processingEndTime"]
    jsonschema.validate(report, load_schema("listings-feed-processing-report-schema-v2.json"))
    assert report["header"] == {"sellerId": SELLER, "version": "2.0", "feedId": feed_id}
    assert report["summary"] == {
        "errors": 1,
        "warnings": 0,
        "messagesProcessed": 3,
        "messagesAccepted": 2,
        "messagesInvalid": 1,
    }
    [issue] = report["issues"]
    assert (issue["messageId"], issue["sku"], issue["severity"], issue["attributeName"]) == (
        3,
        "SKU-3",
        "ERROR",
        "fulfillment_availability",
    )
    assert control.item(KIND, store, "SKU-1")["price"] == "11.25"
    assert control.item(KIND, store, "SKU-2")["available"] == 8
    assert control.item(KIND, store, "SKU-3") is None


def test_feed_report_lists_items_when_the_header_asks_for_them(sandbox, control, store):
    # given
    control.config(KIND, store, feed_processing_ms=0)
    api = SpApi(sandbox, store)
    feed_document = {
        "header": {
            "sellerId": SELLER,
            "version": "2.0",
            "report": {"includedData": ["fulfillmentAvailability"], "apiVersion": "2021-08-01"},
        },
        "messages": [
            {
                "messageId": 1,
                "sku": "SKU-1",
                "operationType": "PARTIAL_UPDATE",
                "productType": "PRODUCT",
                "attributes": {"fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}]},
            }
        ],
    }

    # when
    feed, _ = wait_for_feed(api, submit_feed(api, json.dumps(feed_document).encode()))
    report = download_report(api, feed["resultFeedDocumentId"])

    # then
    jsonschema.validate(report, load_schema("listings-feed-processing-report-schema-v2.json"))
    assert report["items"] == [
        {"sku": "SKU-1", "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 2}]}
    ]
    assert report["summary"]["itemSummary"] == {"items": 1, "errors": 0, "warnings": 0}


@pytest.mark.parametrize(
    "document",
    [
        b"{not json",
        json.dumps({"messages": []}).encode(),
        json.dumps(
            {"header": {"sellerId": "A2SOMEONEELSE", "version": "2.0"}, "messages": [{"messageId": 1}]}
        ).encode(),
    ],
    ids=["not-json", "no-header", "other-seller"],
)
def test_unreadable_feed_ends_fatal_with_a_report_and_applies_nothing(sandbox, control, store, document):
    # given
    control.config(KIND, store, feed_processing_ms=0)
    api = SpApi(sandbox, store)

    # when
    feed, _ = wait_for_feed(api, submit_feed(api, document))
    report = download_report(api, feed["resultFeedDocumentId"])

    # then
    assert feed["processingStatus"] == "FATAL"
    jsonschema.validate(report, load_schema("listings-feed-processing-report-schema-v2.json"))
    assert report["summary"]["errors"] >= 1 and report["summary"]["messagesAccepted"] == 0
    assert control.items(KIND, store) == []


def test_feed_over_25000_messages_is_fatal(sandbox, control, store):
    # given
    control.config(KIND, store, feed_processing_ms=0)
    api = SpApi(sandbox, store)
    message = {"messageId": 1, "sku": "S", "operationType": "DELETE"}
    document = json.dumps({"header": {"sellerId": SELLER, "version": "2.0"}, "messages": [message] * 25_001}).encode()

    # when
    feed, _ = wait_for_feed(api, submit_feed(api, document))

    # then
    assert feed["processingStatus"] == "FATAL"
    assert "25000" in download_report(api, feed["resultFeedDocumentId"])["issues"][0]["message"]


def test_create_feed_is_throttled_by_its_own_plan(sandbox, control, store):
    # given
    control.config(KIND, store, create_feed_burst=1, feed_processing_ms=60_000)
    api = SpApi(sandbox, store)
    submit_feed(api, b"{}")

    # when
    again = api.post(
        "/feeds/2021-06-30/feeds",
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE], "inputFeedDocumentId": "whatever"},
    )

    # then
    assert again.status_code == 429
    assert again.headers["x-amzn-RateLimit-Limit"] == "0.0083"
    assert again.json()["errors"][0]["code"] == "QuotaExceeded"


def test_feed_can_be_cancelled_only_while_in_queue(sandbox, control, store):
    # given
    control.config(KIND, store, feed_processing_ms=60_000)
    api = SpApi(sandbox, store)
    feed_id = submit_feed(api, b"{}")

    # when
    cancelled = api.session.delete(f"{api.base}/feeds/2021-06-30/feeds/{feed_id}", headers=api.headers(), timeout=10)
    again = api.session.delete(f"{api.base}/feeds/2021-06-30/feeds/{feed_id}", headers=api.headers(), timeout=10)

    # then
    assert cancelled.status_code == 200
    assert api.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()["processingStatus"] == "CANCELLED"
    assert again.status_code == 400


def test_upload_with_another_content_type_than_signed_is_refused(sandbox, store):
    # given
    api = SpApi(sandbox, store)
    created = api.post("/feeds/2021-06-30/documents", {"contentType": "application/json; charset=UTF-8"}).json()

    # when
    response = requests.put(created["url"], data=b"{}", headers={"Content-Type": "text/plain"}, timeout=10)

    # then
    assert response.status_code == 403
    assert response.json()["Code"] == "SignatureDoesNotMatch"


# --- sales and notifications ----------------------------------------------------------------


def test_sale_lowers_stock_and_posts_a_signed_order_change(sandbox, control, store, receiver):
    # given
    control.config(KIND, store, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    control.put_item(KIND, store, "SKU-1", price="10.00", available=5)
    order_id = "111-2223334-5556667"

    # when
    sale = control.sales(KIND, store, sku="SKU-1", quantity=2, order_id=order_id, deliveries=2)

    # then
    assert (sale["available"], sale["order_id"]) == (3, order_id)
    assert control.item(KIND, store, "SKU-1")["available"] == 3

    def for_this_order(body: dict[str, Any]) -> bool:
        return body.get("Payload", {}).get("OrderChangeNotification", {}).get("AmazonOrderId") == order_id

    deliveries = wait_until(
        lambda: (lambda found: found if len(found) == 2 else None)(receiver.deliveries(for_this_order)),
        message="two deliveries",
    )
    (headers, body), (redelivered_headers, redelivered_body) = deliveries
    assert body == redelivered_body  # a redelivery is the same message
    expected = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert headers["X-Sandbox-Signature"] == expected
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Sandbox-Notification-Type"] == "ORDER_CHANGE"
    assert (headers["X-Sandbox-Receive-Count"], redelivered_headers["X-Sandbox-Receive-Count"]) == ("1", "2")
    notification = json.loads(body)
    jsonschema.validate(notification, load_schema("order-change-notification.schema.json"))
    sample = json.loads(
        (
            REPO_ROOT / "channels" / "sandbox" / "amazon" / "schemas" / "order-change-notification.schema.json"
        ).read_text()
    )["examples"][0]
    assert set(notification) == set(sample)
    assert notification["NotificationType"] == "ORDER_CHANGE"
    assert notification["NotificationMetadata"]["NotificationId"] == sale["notification_id"]
    change = notification["Payload"]["OrderChangeNotification"]
    assert (change["SellerId"], change["Summary"]["MarketplaceId"], change["Summary"]["FulfillmentType"]) == (
        SELLER,
        MARKETPLACE,
        "MFN",
    )
    [line] = change["Summary"]["OrderItems"]
    assert (line["SellerSKU"], line["Quantity"]) == ("SKU-1", 2)
    log = wait_until(
        lambda: (lambda entries: entries if len(entries) == 2 else None)(
            control_view(sandbox, store, "deliveries")["deliveries"]
        )
    )
    assert [entry["status"] for entry in log] == [200, 200]
    assert {entry["order_id"] for entry in log} == {order_id}


def test_sale_sends_mfn_quantity_change_when_subscribed(sandbox, control, store, receiver):
    # given
    control.config(
        KIND, store, webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, send_quantity_notifications=True
    )
    sku = f"SKU-{uuid.uuid4().hex[:6]}"
    control.put_item(KIND, store, sku, price="10.00", available=5)

    # when
    control.sales(KIND, store, sku=sku, quantity=1)

    # then: the merchant's edit (5) and the sale (4), in order
    def quantity_changes() -> list[dict[str, Any]] | None:
        found = [
            json.loads(body) for _, body in receiver.deliveries(lambda body: body.get("Payload", {}).get("Sku") == sku)
        ]
        return found if len(found) == 2 else None

    first, second = wait_until(quantity_changes, message="two quantity notifications")
    for notification in (first, second):
        jsonschema.validate(notification, load_schema("listings-item-mfn-quantity-change-notification.schema.json"))
    assert [first["Payload"]["Quantity"], second["Payload"]["Quantity"]] == [5, 4]
    assert second["Payload"]["FulfillmentChannelCode"] == "DEFAULT"


@pytest.mark.parametrize(
    ("configure", "available", "quantity"),
    [(True, 1, 2), (True, None, 1), (False, 5, 1)],
    ids=["stock-short", "no-listing", "no-webhook-url"],
)
def test_sale_is_refused_with_409(sandbox, control, store, receiver, configure, available, quantity):
    # given
    if configure:
        control.config(KIND, store, webhook_url=receiver.url)
    if available is not None:
        control.put_item(KIND, store, "SKU-1", available=available)

    # when
    response = requests.post(
        f"{sandbox.url}/_sandbox/amazon/{store}/sales", json={"sku": "SKU-1", "quantity": quantity}, timeout=10
    )

    # then
    assert response.status_code == 409
    assert response.json()["error"]
    if available is not None:
        assert control.item(KIND, store, "SKU-1")["available"] == available


# --- control API and faults -----------------------------------------------------------------


def test_put_item_seeds_a_listing_the_real_api_finds_without_counting_a_write(sandbox, control, store):
    # when
    seeded = control.put_item(KIND, store, "A/B 1", price="7.25", available=2, title="Slash SKU")
    response = SpApi(sandbox, store).get_listing("A%2FB%201")

    # then
    assert (seeded["price"], seeded["available"], seeded["title"], seeded["writes"]) == ("7.25", 2, "Slash SKU", 0)
    assert response.status_code == 200
    assert response.json()["sku"] == "A/B 1"
    assert response.json()["offers"][0]["price"]["amount"] == "7.25"


def test_injected_faults_answer_in_the_sp_api_error_shape(sandbox, control, store):
    # given
    api = SpApi(sandbox, store)
    control.fault(KIND, store, status=503, count=1)

    # when
    failed = api.get_listing("SKU-1")
    recovered = api.get_listing("SKU-1")

    # then
    assert failed.status_code == 503
    assert failed.json()["errors"][0]["code"] == "ServiceUnavailable"
    assert recovered.status_code == 404


def test_bad_config_values_are_refused_naming_the_field(sandbox, store):
    # when
    response = requests.post(f"{sandbox.url}/_sandbox/amazon/{store}/config", json={"patch_burst": "many"}, timeout=10)

    # then
    assert response.status_code == 400
    assert "patch_burst" in response.json()["error"]
