"""Attribute mappings and schema drift: a PIM attribute no mapping covers is flagged (an
alert, a list in the API and admin), not silently dropped; a mapping sends it in the channel's
field; an invalid mapping is refused naming the field."""
from __future__ import annotations

import pytest
from django.urls import reverse

from channels.models import Alert, AttributeMapping, SyncAttempt, UnmappedAttribute
from channels.services.mapping import mapping_validate
from inventory import services
from inventory.models import Change, Product
from tests.factories import ChannelFactory, product_with_variants, sandbox_channel
from tests.support.sandbox import wait_until


@pytest.mark.parametrize(
    ("kind", "target", "extra", "field"),
    [
        ("shopify", "material", {"target_type": "single_line_text_field"}, "target"),  # no namespace
        ("shopify", "ab.material", {"target_type": "single_line_text_field"}, "target"),  # namespace too short
        ("shopify", "custom.m", {"target_type": "single_line_text_field"}, "target"),  # key too short
        ("shopify", "custom.material", {}, "target_type"),
        ("shopify", "custom.material", {"target_type": "text"}, "target_type"),
        ("woocommerce", "pa_Colour!", {}, "target"),
        ("woocommerce", "Size|Fit", {}, "target"),
        ("woocommerce", "Colour", {"target_type": "single_line_text_field"}, "target_type"),
        ("amazon", "Color", {}, "target"),
        ("amazon", "purchasable_offer", {}, "target"),
        ("amazon", "color", {"product_type": "luggage"}, "product_type"),
        ("magento", "1color", {}, "target"),
        ("magento", "price", {}, "target"),
        ("webhook", "anything", {}, "target"),
    ],
)
def test_an_invalid_mapping_is_refused_naming_its_field(kind, target, extra, field):
    errors = mapping_validate(kind, target, **extra)

    assert field in errors, errors


@pytest.mark.parametrize(
    ("kind", "target", "extra"),
    [
        ("shopify", "custom.material", {"target_type": "single_line_text_field"}),
        ("shopify", "specs.care-notes", {"target_type": "list.single_line_text_field"}),
        ("woocommerce", "pa_color", {}),
        ("woocommerce", "Material", {}),
        ("amazon", "material", {"product_type": "SHIRT"}),
        ("magento", "material_code", {}),
    ],
)
def test_a_valid_mapping_is_accepted(kind, target, extra):
    assert mapping_validate(kind, target, **extra) == {}


@pytest.mark.django_db
def test_the_api_refuses_an_invalid_mapping_with_a_400_naming_the_field_and_writes_nothing(ops):
    # given
    channel = ChannelFactory(kind="shopify", credentials={"access_token": "x"})

    # when
    response = ops.post(f"/api/v1/channels/{channel.pk}/attribute-mappings/",
                        {"pim_attribute": "material", "target": "x.material"}, format="json")

    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body["errors"]) == {"target", "target_type"} and body["detail"]
    assert not AttributeMapping.objects.exists()


@pytest.mark.django_db
def test_the_api_creates_lists_patches_and_deletes_a_mapping(ops):
    # given
    channel = ChannelFactory(kind="woocommerce", credentials={"consumer_key": "k", "consumer_secret": "s"})
    url = f"/api/v1/channels/{channel.pk}/attribute-mappings/"

    # when
    created = ops.post(url, {"pim_attribute": "material", "target": "Material"}, format="json")
    again = ops.post(url, {"pim_attribute": "material", "target": "Fabric"}, format="json")
    patched = ops.patch(f"{url}{created.json()['id']}/", {"target": "pa_bad name"}, format="json")
    listed = ops.get(url)
    deleted = ops.delete(f"{url}{created.json()['id']}/")

    # then
    assert created.status_code == 201, created.content
    assert again.status_code == 400 and "pim_attribute" in again.json()["errors"]
    assert patched.status_code == 400 and "target" in patched.json()["errors"]
    assert [row["target"] for row in listed.json()["results"]] == ["Material"]
    assert deleted.status_code == 204 and not AttributeMapping.objects.exists()


@pytest.mark.django_db
def test_the_admin_form_refuses_an_invalid_mapping_naming_the_field(admin_client):
    # given
    channel = ChannelFactory(kind="shopify", credentials={"access_token": "x"})

    # when
    response = admin_client.post(reverse("admin:channels_attributemapping_add"), {
        "channel": channel.pk, "pim_attribute": "material", "target": "custom.material", "target_type": "text",
        "product_type": "", "enabled": "on",
    })

    # then
    assert response.status_code == 200
    assert "target_type" in response.context["adminform"].form.errors
    assert "is not a Shopify metafield type" in response.content.decode()
    assert not AttributeMapping.objects.exists()


def _woo_attributes(live, store, sku) -> dict:
    item = live.sandbox.item("woocommerce", store, sku)
    return (item or {}).get("attributes") or {}


@pytest.mark.stack
def test_a_new_unmapped_attribute_is_flagged_and_a_mapping_sends_it_in_the_mapped_field(live, store_name, ops,
                                                                                        admin_client):
    # given: a WooCommerce store holding the SKUs, the channel mapping `material`
    channel = sandbox_channel(live, "woocommerce", store_name)
    for sku in ("MAP-1", "MAP-2"):
        live.sandbox.put_item("woocommerce", store_name, sku, price="1.00", available=0, title=sku)
    assert ops.post(f"/api/v1/channels/{channel.pk}/attribute-mappings/",
                    {"pim_attribute": "material", "target": "Material"}, format="json").status_code == 201
    product = services.product_create(
        handle="map-tee", title="Map tee", attributes={"material": "cotton"},
        variants=[{"sku": "MAP-1", "price": "10.00"}, {"sku": "MAP-2", "price": "10.00"}],
    )
    wait_until(lambda: _woo_attributes(live, store_name, "MAP-1") == {"Material": ["cotton"]}, timeout=30,
               message="the mapped attribute never reached the store")
    assert not Alert.objects.filter(channel=channel, kind=Alert.Kind.SCHEMA_DRIFT).exists()

    # when: the PIM adds an attribute no mapping covers
    services.product_update(product=Product.objects.get(pk=product.pk),
                            fields={"attributes": {"material": "cotton", "fit_type": "slim"}})

    # then: flagged, not silently dropped: an unmapped attribute, the alert naming it
    alert = wait_until(
        lambda: Alert.objects.filter(channel=channel, kind=Alert.Kind.SCHEMA_DRIFT, cleared_at__isnull=True).first(),
        timeout=30, message="no schema_drift alert",
    )
    assert "fit_type" in alert.detail and alert.data["attributes"] == ["fit_type"]
    row = UnmappedAttribute.objects.get(channel=channel, attribute="fit_type")
    assert row.example_sku in ("MAP-1", "MAP-2") and row.count == 2 and row.resolved_at is None  # dropped from both variants
    listed = ops.get(f"/api/v1/channels/{channel.pk}/unmapped-attributes/").json()["results"]
    assert [r["attribute"] for r in listed] == ["fit_type"]
    page = admin_client.get(reverse("admin:channels_unmappedattribute_changelist") + "?resolved_at__isempty=1")
    assert "fit_type" in page.content.decode() and "map…" in page.content.decode()
    # the mapped one still went out, the unmapped one did not
    assert _woo_attributes(live, store_name, "MAP-1") == {"Material": ["cotton"]}

    # when: an operator maps it
    response = ops.post(f"/api/v1/channels/{channel.pk}/attribute-mappings/",
                        {"pim_attribute": "fit_type", "target": "Fit"}, format="json")

    # then: the flag clears, and the attribute reaches the store in the mapped field
    assert response.status_code == 201, response.content
    alert.refresh_from_db()
    assert alert.cleared_at is not None
    assert UnmappedAttribute.objects.get(channel=channel, attribute="fit_type").resolution == "mapped"
    for sku in ("MAP-1", "MAP-2"):
        wait_until(lambda sku=sku: _woo_attributes(live, store_name, sku) == {"Material": ["cotton"], "Fit": ["slim"]},
                   timeout=30, message=f"{sku} never got the Fit attribute")


@pytest.mark.stack
def test_a_webhook_channel_passes_attributes_through_and_never_flags(live, store_name):
    # given
    from tests.factories import webhook_channel

    channel = webhook_channel(live, store_name)

    # when
    product_with_variants(handle="pass", skus=["PASS-1"])
    services.product_update(product=Product.objects.get(handle="pass"), fields={"attributes": {"brand_new": "x"}})

    # then: the updated content is delivered, and nothing is flagged
    latest = Change.objects.filter(aspect="content", variant__sku="PASS-1").latest("pk").pk
    wait_until(lambda: SyncAttempt.objects.filter(channel=channel, sku="PASS-1", event_type="content",
                                                  status="success", version__gte=latest).exists(),
               timeout=30, message="the content was never delivered")
    assert not UnmappedAttribute.objects.filter(channel=channel).exists()
    assert not Alert.objects.filter(channel=channel, kind=Alert.Kind.SCHEMA_DRIFT).exists()


def _content_item(**fields):
    from channels.adapters.base import MappedAttribute, PushItem

    return PushItem(sku="C-1", aspect="content", version=1, title="Tee", description="Soft",
                    attributes={"material": "cotton", "secret_note": "internal"},
                    mapped_attributes=(MappedAttribute("fabric", "cotton"),), **fields)


def test_each_store_kind_sends_only_the_mapped_attributes_in_its_content_body():
    # given: an item carrying a mapped attribute and an unmapped one
    from channels.adapters.amazon.refresh import content_patches
    from channels.adapters.magento_refresh import product_body
    from channels.adapters.woocommerce import content_fields

    item = _content_item()

    # when
    amazon = content_patches(item, "ATVPDKIKX0DER", "en_US")
    magento = product_body(item)["product"]["custom_attributes"]
    woo = content_fields(item)["attributes"]

    # then
    assert {"op": "replace", "path": "/attributes/fabric",
            "value": [{"value": "cotton", "marketplace_id": "ATVPDKIKX0DER"}]} in amazon
    assert {"attribute_code": "fabric", "value": "cotton"} in magento
    assert woo == [{"name": "fabric", "visible": True, "options": ["cotton"]}]
    for body in (amazon, magento, woo):
        assert "secret_note" not in str(body) and "internal" not in str(body)


@pytest.mark.django_db
def test_a_disabled_mapping_keeps_an_attribute_off_the_channel_without_flagging_it():
    # given: a WooCommerce channel sends `color`; `season` is known and kept off it on purpose
    from channels.adapters.base import PushItem
    from channels.services.mapping import mapping_apply, mapping_save

    channel = ChannelFactory(kind="woocommerce", credentials={"consumer_key": "ck", "consumer_secret": "cs"})
    product_with_variants(handle="m-off", skus=["M-OFF-1"])
    Product.objects.filter(handle="m-off").update(attributes={"color": "red", "season": "winter"})
    mapping_save(channel=channel, pim_attribute="color", target="Color")
    mapping_save(channel=channel, pim_attribute="season", target="Season", enabled=False)

    # when
    [item] = mapping_apply(channel=channel, items=[PushItem(sku="M-OFF-1", aspect="content", version=1)])

    # then
    assert [(m.target, m.value) for m in item.mapped_attributes] == [("Color", "red")]
    assert not UnmappedAttribute.objects.filter(channel=channel, resolved_at__isnull=True).exists()
    assert not Alert.objects.filter(channel=channel, kind="schema_drift", cleared_at__isnull=True).exists()
