"""Every way a change is made records it: services, ORM saves (admin, shell), bulk."""
from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.models import Change, StockLevel, Variant
from tests.factories import product_with_variants

pytestmark = pytest.mark.django_db


def test_an_orm_save_of_a_price_records_one_price_change():
    product_with_variants(skus=["O-1"])
    before = Change.objects.count()
    variant = Variant.objects.get(sku="O-1")
    variant.price = Decimal("99.00")
    variant.save()
    assert list(Change.objects.filter(pk__gt=Change.objects.order_by("pk")[before - 1].pk).values_list("aspect", "origin")) == [
        ("price", "orm")
    ]


def test_an_orm_save_that_changes_nothing_records_nothing():
    product_with_variants(skus=["O-2"])
    before = Change.objects.count()
    Variant.objects.get(sku="O-2").save()
    assert Change.objects.count() == before


def test_a_product_title_edit_records_content_changes_for_every_variant():
    product = product_with_variants(skus=["T-1", "T-2"])
    before = Change.objects.count()
    product.title = "New title"
    product.save()
    assert sorted(Change.objects.order_by("pk")[before:].values_list("aspect", flat=True)) == ["content", "content"]


def test_a_service_save_is_not_recorded_twice():
    from inventory import services

    product_with_variants(skus=["S-1"])
    before = Change.objects.count()
    services.variant_update(variant=Variant.objects.get(sku="S-1"), fields={"price": Decimal("5.00")})
    assert Change.objects.count() == before + 1


def test_deleting_a_product_loaded_with_deferred_fields_works():
    product = product_with_variants(skus=["X-1"])
    product.delete()
    assert not Variant.objects.exists()


def test_the_admin_edit_of_a_variant_price_is_captured(admin_client):
    product = product_with_variants(skus=["A-1"])
    variant = Variant.objects.get(sku="A-1")
    before = Change.objects.count()
    response = admin_client.post(
        f"/admin/inventory/variant/{variant.pk}/change/",
        {
            "product": product.pk, "sku": "A-1", "price": "42.00", "compare_at_price": "", "attributes": "{}", "barcode": "",
            # the read-only inlines' formset management forms (no stock yet)
            **{f"{prefix}-{name}": "0" for prefix in ("stock_levels", "movements") for name in ("TOTAL_FORMS", "INITIAL_FORMS")},
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert Variant.objects.get(sku="A-1").price == Decimal("42.00")
    assert list(Change.objects.order_by("pk")[before:].values_list("aspect", flat=True)) == ["price"]


def test_stock_levels_are_read_only_in_the_admin(admin_client):
    product_with_variants(skus=["RO-1"], stock=3)
    level = StockLevel.objects.get(variant__sku="RO-1")
    response = admin_client.post(f"/admin/inventory/stocklevel/{level.pk}/change/", {"on_hand": 100})
    assert response.status_code == 403
    assert StockLevel.objects.get(pk=level.pk).on_hand == 3


def test_the_variant_admin_page_shows_its_stock_and_ledger(admin_client):
    product_with_variants(skus=["L-1"], stock=4)
    variant = Variant.objects.get(sku="L-1")
    page = admin_client.get(f"/admin/inventory/variant/{variant.pk}/change/").content.decode()
    assert "seed-L-1" in page and "receipt" in page
