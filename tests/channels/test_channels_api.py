from __future__ import annotations

import pytest
from django.core.management import call_command

from channels.models import Channel, SyncAttempt
from tests.factories import ChannelFactory, product_with_variants

pytestmark = pytest.mark.django_db

BODY = {"name": "search", "kind": "webhook", "base_url": "http://127.0.0.1:8765/webhook/search", "credentials": {"secret": "abc"}}


def test_credentials_are_write_only_and_encrypted_at_rest(ops):
    # when
    response = ops.post("/api/v1/channels/", BODY, format="json")

    # then
    assert response.status_code == 201, response.content
    assert "credentials" not in response.json() and response.json()["has_credentials"] is True
    channel = Channel.objects.get(name="search")
    assert "abc" not in channel.credentials_encrypted
    assert channel.credentials == {"secret": "abc"}
    assert "abc" not in ops.get(f"/api/v1/channels/{channel.pk}/").content.decode()


def test_a_channel_without_its_kinds_credentials_is_refused_naming_the_field(ops):
    response = ops.post("/api/v1/channels/", {**BODY, "credentials": {}}, format="json")
    assert response.status_code == 400
    assert "credentials.secret" in response.json()["errors"]
    assert not Channel.objects.exists()


def test_an_unknown_kind_is_refused_with_the_kinds_available(ops):
    response = ops.post("/api/v1/channels/", {**BODY, "kind": "webhok"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()["errors"]


def test_a_pim_token_cannot_create_channels(pim):
    assert pim.post("/api/v1/channels/", BODY, format="json").status_code == 403
    assert not Channel.objects.exists()


def test_inventory_shows_each_channel_its_stock_less_safety_stock(pim):
    ChannelFactory(name="shop", safety_stock=0)
    ChannelFactory(name="market", safety_stock=3)
    ChannelFactory(name="tiny", safety_stock=50)
    product_with_variants(skus=["I-1"], stock=10)
    pim.post("/api/v1/inventory/adjustments/", {"sku": "I-1", "delta": 2, "reason": "reservation", "reference": "r"}, format="json")
    body = pim.get("/api/v1/inventory/I-1/").json()
    assert body == {"sku": "I-1", "on_hand": 10, "reserved": 2, "available": 8, "channels": {"market": 5, "shop": 8, "tiny": 0}}


def test_status_reports_pending_and_state_per_channel(ops):
    channel = ChannelFactory(name="shop")
    ChannelFactory(name="off", enabled=False)
    product_with_variants(skus=["ST-1"])
    body = {row["name"]: row for row in ops.get("/api/v1/status/").json()["channels"]}
    assert body["shop"]["pending"] == 3 and body["shop"]["state"] == "healthy"
    assert body["shop"]["oldest_pending_age_s"] >= 0
    assert body["off"]["state"] == "paused"
    assert channel.pk == body["shop"]["id"]


def test_sync_logs_filter_by_channel_sku_and_status(ops):
    from django.utils import timezone

    shop, other = ChannelFactory(name="shop"), ChannelFactory(name="other")
    now = timezone.now()
    for channel, sku, status in [(shop, "A", "success"), (shop, "B", "failure"), (other, "A", "failure")]:
        SyncAttempt.objects.create(
            channel=channel, sku=sku, event_type="price", status=status, version=1,
            committed_at=now, started_at=now, timestamp=now,
        )
    rows = ops.get("/api/v1/sync-logs/?channel=shop&status=failure").json()["results"]
    assert [(r["channel"], r["sku"], r["status"]) for r in rows] == [("shop", "B", "failure")]
    rows = ops.get("/api/v1/sync-logs/?sku=A").json()["results"]
    assert sorted(r["channel"] for r in rows) == ["other", "shop"]
    assert ops.get("/api/v1/sync-logs/?since=not-a-date").status_code == 400


def test_createapitoken_prints_a_working_token(capsys):
    call_command("createapitoken", "integration", "--role", "pim")
    token = capsys.readouterr().out.strip()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/products/").status_code == 200


def test_the_openapi_schema_and_docs_are_served(ops):
    schema = ops.get("/api/v1/schema/")
    assert schema.status_code == 200 and b"/api/v1/prices/bulk/" in schema.content
    assert ops.get("/api/v1/docs/").status_code == 200


def test_credentials_survive_a_key_rotation(settings):
    from channels.crypto import fernet

    old_keys = list(settings.ENCRYPTION_KEYS)
    channel = ChannelFactory(credentials={"secret": "s1"})
    settings.ENCRYPTION_KEYS = [b"bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleTE=", *old_keys]
    call_command("rotate_credentials")
    settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]  # the old key is gone
    channel.refresh_from_db()
    assert channel.credentials == {"secret": "s1"}
    assert fernet().decrypt(channel.credentials_encrypted.encode())


def test_listings_filter_by_status(ops):
    from channels.models import Listing
    from inventory.models import Variant

    channel = ChannelFactory()
    product_with_variants(skus=["L-1", "L-2"])
    Listing.objects.create(channel=channel, variant=Variant.objects.get(sku="L-1"), status="listed", external_ids={"id": 1})
    Listing.objects.create(channel=channel, variant=Variant.objects.get(sku="L-2"), status="unlisted")
    rows = ops.get(f"/api/v1/channels/{channel.pk}/listings/?status=unlisted").json()["results"]
    assert [(r["sku"], r["status"]) for r in rows] == [("L-2", "unlisted")]
    assert ops.get(f"/api/v1/channels/{channel.pk}/listings/?status=nope").status_code == 400


def test_the_admin_masks_stored_credentials(admin_client):
    channel = ChannelFactory(credentials={"secret": "super-secret-value-1234"})
    page = admin_client.get(f"/admin/channels/channel/{channel.pk}/change/").content.decode()
    assert "super-secret-value" not in page and "secret: ••••34" in page
