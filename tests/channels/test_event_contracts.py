"""Versioned event contracts: every event syncsvc sends validates against the JSON Schema it
publishes at /api/v1/event-schemas/, and a subscriber keeps the version it pinned.

The live tests send real events through the stack (API -> worker -> webhook adapter -> the
sandbox's webhook store over HTTP) and read what the store received from its control API."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from channels.adapters.base import PushItem
from channels.contracts.catalog import (
    ALERT_EVENT_TYPES,
    ASPECT_EVENT_TYPES,
    event_schema,
    event_types,
)
from channels.contracts.events import BUILDERS, event_build
from channels.models import Alert, Channel, ChannelHealth
from channels.services.alerts import alert_clear, alert_raise
from inventory import services
from tests.factories import ChannelFactory, product_with_variants
from tests.support.sandbox import wait_until

SECRET = "contract-secret"
ALERT_SECRET = "test-alert-secret"  # SYNCSVC_ALERT_WEBHOOK_SECRET in tests/conftest.py's TEST_CLOCKS


def _validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _published_schema(event_type: str, version: int) -> dict:
    """The schema as a subscriber fetches it: anonymously, from the endpoint."""
    response = APIClient().get(f"/api/v1/event-schemas/{event_type}/{version}/")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/schema+json"
    return response.json()


def _errors(event: dict) -> list[str]:
    schema = _published_schema(event["type"], event["schema_version"])
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in _validator(schema).iter_errors(event)]


# --- builders and schemas cannot drift ----------------------------------------------------------

SAMPLE_ITEMS = {
    "price": [
        PushItem(sku="TEE-1", aspect="price", version=7, price=Decimal("12.50"), compare_at_price=Decimal("15.00")),
        PushItem(sku="TEE-1", aspect="price", version=8, price=Decimal("10"), compare_at_price=None),
    ],
    "inventory": [PushItem(sku="TEE-1", aspect="inventory", version=9, available=0)],
    "content": [PushItem(sku="TEE-1", aspect="content", version=10, handle="tee", title="Tee", description="Soft",
                         attributes={"color": "red", "sizes": ["S", "M"]})],
}


def _sample_sources(event_type: str) -> list:
    aspect = next((aspect for aspect, name in ASPECT_EVENT_TYPES.items() if name == event_type), None)
    if aspect is not None:
        return SAMPLE_ITEMS[aspect]
    channel = ChannelFactory(name="sample")
    alert, _ = alert_raise(channel=channel, kind="drift", detail="3 SKUs differ", data={"skus": 3})
    if event_type == ALERT_EVENT_TYPES["cleared"]:
        alert = alert_clear(channel=channel, kind="drift", detail="recovered")
    return [Alert.objects.select_related("channel").get(pk=alert.pk)]


def test_every_published_schema_has_a_builder_and_every_builder_a_schema():
    published = {(known.name, version) for known in event_types().values() for version in known.versions}
    assert published == set(BUILDERS)
    assert set(ASPECT_EVENT_TYPES.values()) | set(ALERT_EVENT_TYPES.values()) == set(event_types())
    for event_type, version in published:
        Draft202012Validator.check_schema(event_schema(event_type, version))


@pytest.mark.django_db
@pytest.mark.parametrize(("event_type", "version"), sorted(BUILDERS))
def test_each_builders_output_validates_against_its_schema(event_type, version):
    # given
    sources = _sample_sources(event_type)

    for source in sources:
        # when
        event = event_build(event_type=event_type, version=version, event_id="evt-1", occurred_at=datetime.now(UTC),
                            source=source, settings={"currency": "EUR"})

        # then
        errors = [error.message for error in _validator(event_schema(event_type, version)).iter_errors(event)]
        assert errors == [], (event, errors)


def test_a_schema_refuses_an_event_of_another_version():
    # given: a v1 price event (plain strings) and the v2 schema (money objects)
    event = event_build(event_type="price.updated", version=1, event_id="evt-1", occurred_at=datetime.now(UTC),
                        source=SAMPLE_ITEMS["price"][0], settings={})

    # then
    assert list(_validator(event_schema("price.updated", 2)).iter_errors(event))
    assert not list(_validator(event_schema("price.updated", 1)).iter_errors(event))


# --- the schema endpoint ------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_schema_endpoint_lists_every_type_with_its_versions_without_a_token():
    # when
    response = APIClient().get("/api/v1/event-schemas/")

    # then
    assert response.status_code == 200, response.content
    listed = {row["type"]: row for row in response.json()["results"]}
    assert set(listed) == {"price.updated", "inventory.updated", "product.updated", "alert.opened", "alert.cleared"}
    assert listed["price.updated"]["versions"] == [1, 2] and listed["price.updated"]["latest"] == 2
    assert listed["inventory.updated"]["versions"] == [1] and listed["inventory.updated"]["latest"] == 1
    for row in listed.values():
        for version, url in row["schemas"].items():
            assert url.endswith(f"/api/v1/event-schemas/{row['type']}/{version}/")
            schema = _published_schema(row["type"], int(version))
            Draft202012Validator.check_schema(schema)
            assert schema["properties"]["schema_version"] == {"const": int(version)}


@pytest.mark.django_db
def test_the_schemas_are_public_even_with_a_stale_token():
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    # when / then
    assert client.get("/api/v1/event-schemas/").status_code == 200
    assert client.get("/api/v1/event-schemas/price.updated/2/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["order.created/1", "price.updated/3", "price.updated/0", "price.updated/latest"])
def test_an_unknown_type_or_version_is_404(path):
    # when
    response = APIClient().get(f"/api/v1/event-schemas/{path}/")

    # then
    assert response.status_code == 404
    assert response.json()["detail"] and response.json()["errors"] == {}


# --- pins ---------------------------------------------------------------------------------------

def _webhook_body(name: str, base_url: str = "http://127.0.0.1:9/hook", **settings) -> dict:
    return {"name": name, "kind": "webhook", "base_url": base_url, "credentials": {"secret": SECRET}, "settings": settings}


@pytest.mark.django_db
@pytest.mark.parametrize(("pins", "field"), [
    ({"price.updated": 3}, "settings.schema_versions.price.updated"),
    ({"price.updated": "1"}, "settings.schema_versions.price.updated"),
    ({"order.created": 1}, "settings.schema_versions.order.created"),
    (["price.updated"], "settings.schema_versions"),
    (None, "settings.schema_version"),  # one number for every type: refused, pins are per type
])
def test_a_bad_pin_is_refused_naming_the_field_and_nothing_is_written(ops, pins, field):
    # when
    settings = {"schema_versions": pins} if pins is not None else {"schema_version": 2}
    response = ops.post("/api/v1/channels/", _webhook_body("search", **settings), format="json")

    # then
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert not Channel.objects.exists()


@pytest.mark.django_db
def test_a_bad_pin_in_a_patch_is_refused_and_the_old_pins_stay(ops):
    # given
    created = ops.post("/api/v1/channels/", _webhook_body("search", schema_versions={"price.updated": 1}), format="json")
    assert created.status_code == 201, created.content

    # when
    response = ops.patch(f"/api/v1/channels/{created.json()['id']}/",
                         {"settings": {"schema_versions": {"inventory.updated": 2}}}, format="json")

    # then
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["settings.schema_versions.inventory.updated"]
    assert Channel.objects.get().settings["schema_versions"]["price.updated"] == 1


@pytest.mark.django_db
def test_a_new_webhook_channel_is_pinned_at_the_latest_versions_and_a_patch_keeps_its_pins(ops):
    # when
    created = ops.post("/api/v1/channels/", _webhook_body("search", currency="EUR"), format="json")

    # then
    assert created.status_code == 201, created.content
    latest = {"price.updated": 2, "inventory.updated": 1, "product.updated": 1}
    assert created.json()["settings"]["schema_versions"] == latest

    # when: settings replaced without the pins, then one pin moved
    kept = ops.patch(f"/api/v1/channels/{created.json()['id']}/", {"settings": {"currency": "USD"}}, format="json")
    moved = ops.patch(f"/api/v1/channels/{created.json()['id']}/",
                      {"settings": {"schema_versions": {"price.updated": 1}}}, format="json")

    # then
    assert kept.status_code == 200 and kept.json()["settings"]["schema_versions"] == latest
    assert moved.status_code == 200 and moved.json()["settings"]["schema_versions"] == {**latest, "price.updated": 1}


@pytest.mark.django_db
def test_a_bad_currency_is_refused_naming_the_field(ops):
    response = ops.post("/api/v1/channels/", _webhook_body("search", currency="euro"), format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["settings.currency"]


# --- what is actually sent ----------------------------------------------------------------------

def _api_webhook_channel(live, ops, store: str, **settings) -> Channel:
    """A webhook channel created as an operator creates one (so its pins are recorded), sending
    to a sandbox store that checks its signatures."""
    live.sandbox.config("webhook", store, secret=SECRET)
    response = ops.post("/api/v1/channels/", _webhook_body(store, f"{live.sandbox_url}/webhook/{store}", **settings),
                        format="json")
    assert response.status_code == 201, response.content
    return Channel.objects.get(pk=response.json()["id"])


def _received(live, store: str, event_type: str, sku: str | None = None) -> list[dict]:
    return [
        entry for entry in live.sandbox.events(store)
        if entry["event"]["type"] == event_type and (sku is None or entry["event"]["data"].get("sku") == sku)
    ]


def _last_received(live, store: str, event_type: str, sku: str | None = None, *, where=None) -> dict:
    """The last such event the store received, once there is one (and, with `where`, once the
    last one satisfies it: e.g. the stock figure of the latest change, not of an earlier one)."""
    def ready():
        entries = _received(live, store, event_type, sku)
        return entries if entries and (where is None or where(entries[-1]["event"])) else None

    entries = wait_until(ready, timeout=15, message=f"{store} never received {event_type} {sku or ''}")
    return entries[-1]


@pytest.mark.stack
def test_an_event_of_each_type_sent_through_the_stack_validates_against_its_published_schema(live, ops, store_name):
    # given: a subscriber at the latest versions, one pinned to v1, and a channel whose alerts go to a store
    latest = _api_webhook_channel(live, ops, f"{store_name}-latest", currency="EUR")
    _api_webhook_channel(live, ops, f"{store_name}-v1", schema_versions={"price.updated": 1})
    alerts_store = f"{store_name}-alerts"
    live.sandbox.config("webhook", alerts_store, secret=ALERT_SECRET)
    ChannelHealth.objects.create(channel=latest, notify_webhook_url=f"{live.sandbox_url}/webhook/{alerts_store}")

    # when: a product (content, price) with stock (inventory), an alert opening and clearing
    services.product_create(handle="contract-tee", title="Contract tee", description="Soft", attributes={"fit": "slim"},
                            variants=[{"sku": "CT-1", "price": Decimal("12.50"), "compare_at_price": Decimal("15.00"),
                                       "attributes": {"color": "red"}}])
    services.stock_adjust(sku="CT-1", delta=4, reason="receipt", reference="seed-CT-1")
    alert_raise(channel=latest, kind="drift", detail="1 SKU differs", data={"skus": 1})
    alert_clear(channel=latest, kind="drift", detail="recovered")

    # then: each type arrived, signed, and validates against the schema the endpoint publishes
    sent = {
        ("price.updated", 2): _last_received(live, f"{store_name}-latest", "price.updated", "CT-1"),
        ("price.updated", 1): _last_received(live, f"{store_name}-v1", "price.updated", "CT-1"),
        ("inventory.updated", 1): _last_received(live, f"{store_name}-latest", "inventory.updated", "CT-1",
                                                 where=lambda event: event["data"]["available"] == 4),
        ("product.updated", 1): _last_received(live, f"{store_name}-latest", "product.updated", "CT-1"),
        ("alert.opened", 1): _last_received(live, alerts_store, "alert.opened"),
        ("alert.cleared", 1): _last_received(live, alerts_store, "alert.cleared"),
    }
    for (event_type, version), entry in sent.items():
        event = entry["event"]
        assert (event["type"], event["schema_version"]) == (event_type, version), event
        assert _errors(event) == [], event
        # the receiver applies the change types it knows; alert events carry no change
        expected = "ignored" if event_type.startswith("alert.") else "applied"
        assert entry["signature"] == "valid" and entry["outcome"] == expected, entry
    assert sent[("price.updated", 2)]["event"]["data"]["price"] == {"amount": "12.50", "currency": "EUR"}
    assert sent[("price.updated", 2)]["event"]["data"]["compare_at_price"] == {"amount": "15.00", "currency": "EUR"}
    assert sent[("price.updated", 1)]["event"]["data"] == {"sku": "CT-1", "price": "12.50", "compare_at_price": "15.00"}
    assert sent[("inventory.updated", 1)]["event"]["data"]["available"] == 4
    assert sent[("product.updated", 1)]["event"]["data"]["handle"] == "contract-tee"


@pytest.mark.stack
def test_a_subscriber_pinned_to_v1_keeps_v1_after_v2_exists_and_a_v2_pin_gets_v2(live, ops, pim, store_name):
    # given: v2 of price.updated is published; three subscribers
    pinned_v1 = _api_webhook_channel(live, ops, f"{store_name}-v1", schema_versions={"price.updated": 1})
    _api_webhook_channel(live, ops, f"{store_name}-v2", schema_versions={"price.updated": 2}, currency="GBP")
    # ... and one from before pins were recorded (no schema_versions in its settings)
    live.sandbox.config("webhook", f"{store_name}-old", secret=SECRET)
    ChannelFactory(name=f"{store_name}-old", base_url=f"{live.sandbox_url}/webhook/{store_name}-old",
                   credentials={"secret": SECRET})
    product_with_variants(handle="pin-tee", skus=["PIN-1"], price="10.00")
    for store in ("v1", "v2", "old"):
        wait_until(lambda store=store: (live.sandbox.item("webhook", f"{store_name}-{store}", "PIN-1") or {}).get("price") == "10.00",
                   timeout=15, message=f"the {store} subscriber never got the first price")

    # when: the v1 subscriber's settings are edited without mentioning its pins, then the price changes
    response = ops.patch(f"/api/v1/channels/{pinned_v1.pk}/", {"settings": {"batch_size": 50}}, format="json")
    assert response.status_code == 200, response.content
    assert pim.patch("/api/v1/variants/PIN-1/", {"price": "11.25"}, format="json").status_code == 200

    # then: each store shows the new price, and got it at its own version
    def latest_price_event(store: str) -> dict:
        def arrived():
            events = _received(live, f"{store_name}-{store}", "price.updated", "PIN-1")
            return events and events[-1]["event"]["data"]["price"] not in ("10.00", {"amount": "10.00", "currency": "GBP"}) and events[-1]
        return wait_until(arrived, timeout=15, message=f"the {store} subscriber never got 11.25")["event"]

    v1, v2, old = latest_price_event("v1"), latest_price_event("v2"), latest_price_event("old")
    assert (v1["schema_version"], v1["data"]["price"]) == (1, "11.25")
    assert (old["schema_version"], old["data"]["price"]) == (1, "11.25")
    assert (v2["schema_version"], v2["data"]["price"]) == (2, {"amount": "11.25", "currency": "GBP"})
    for event in (v1, v2, old):
        assert _errors(event) == []
    assert live.sandbox.item("webhook", f"{store_name}-v2", "PIN-1")["currency"] == "GBP"
    assert live.sandbox.item("webhook", f"{store_name}-v1", "PIN-1")["price"] == "11.25"


def _admin_form(**fields) -> dict:
    # Every inline's management form on the channel page, so only the channel's own fields decide.
    inlines = {f"{prefix}-{name}": value for prefix in ("health", "threshold_rules")
               for name, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "1000"))}
    return {"name": "search", "kind": "webhook", "base_url": "https://search.example.com/hook", "enabled": "on",
            "mode": "live", "safety_stock": "0", "settings": "{}", "new_credentials": '{"secret": "s"}', **inlines, **fields}


@pytest.mark.django_db
def test_the_admin_records_pins_on_creation_and_refuses_a_bad_one(admin_client):
    # when
    refused = admin_client.post("/admin/channels/channel/add/", _admin_form(settings='{"schema_versions": {"price.updated": 7}}'))
    created = admin_client.post("/admin/channels/channel/add/", _admin_form())

    # then
    assert refused.status_code == 200 and "settings.schema_versions.price.updated" in refused.content.decode()
    assert created.status_code == 302, created.content.decode()[:2000]
    channel = Channel.objects.get()
    assert channel.settings["schema_versions"] == {"price.updated": 2, "inventory.updated": 1, "product.updated": 1}

    # when: edited with the pins left out of the settings
    edited = admin_client.post(f"/admin/channels/channel/{channel.pk}/change/", _admin_form(settings='{"batch_size": 10}', new_credentials=""))

    # then
    assert edited.status_code == 302, edited.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.settings == {"batch_size": 10, "schema_versions": {"price.updated": 2, "inventory.updated": 1, "product.updated": 1}}
