"""Bad input gets a 400 naming the problem, and nothing is written."""
from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.models import Change, Product, Variant
from tests.factories import product_with_variants

pytestmark = pytest.mark.django_db


def test_a_negative_price_is_refused_naming_the_field(pim):
    # given
    product_with_variants(skus=["NEG-1"], price="10.00")
    changes_before = Change.objects.count()

    # when
    response = pim.patch("/api/v1/variants/NEG-1/", {"price": "-1.00"}, format="json")

    # then
    assert response.status_code == 400
    assert "price" in response.json()["errors"]
    assert Variant.objects.get(sku="NEG-1").price == Decimal("10.00")
    assert Change.objects.count() == changes_before


def test_an_unknown_sku_is_a_404_with_a_detail(pim):
    response = pim.patch("/api/v1/variants/NOPE/", {"price": "1.00"}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_malformed_json_is_a_400_saying_so(pim):
    # when
    response = pim.post("/api/v1/prices/bulk/", data='[{"sku": "A", "price": ', content_type="application/json")

    # then
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_a_bulk_list_with_one_bad_row_names_that_row_and_writes_nothing(pim):
    # given
    product_with_variants(skus=["B-1", "B-2", "B-3"], price="10.00")
    changes_before = Change.objects.count()
    rows = [{"sku": "B-1", "price": "11.00"}, {"sku": "B-2", "price": "abc"}, {"sku": "B-3", "price": "13.00"}]

    # when
    response = pim.post("/api/v1/prices/bulk/", rows, format="json")

    # then
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["[1].price"]
    assert set(Variant.objects.values_list("price", flat=True)) == {Decimal("10.00")}
    assert Change.objects.count() == changes_before


def test_a_bulk_list_with_an_unknown_sku_names_the_row_and_writes_nothing(pim):
    product_with_variants(skus=["U-1"], price="10.00")
    response = pim.post("/api/v1/prices/bulk/", [{"sku": "U-1", "price": "2"}, {"sku": "GHOST", "price": "3"}], format="json")
    assert response.status_code == 400
    assert "[1].sku" in response.json()["errors"]
    assert Variant.objects.get(sku="U-1").price == Decimal("10.00")


def test_bulk_prices_apply_in_one_request_and_ignore_older_source_times(pim):
    # given
    product_with_variants(skus=["P-1", "P-2"], price="10.00")
    pim.patch("/api/v1/variants/P-2/", {"price": "20.00", "price_changed_at": "2030-01-01T00:00:00Z"}, format="json")

    # when: P-2's row is older than the stored change
    response = pim.post(
        "/api/v1/prices/bulk/",
        [{"sku": "P-1", "price": "11.00"}, {"sku": "P-2", "price": "5.00", "changed_at": "2029-01-01T00:00:00Z"}],
        format="json",
    )

    # then
    assert response.json() == {"applied": 1, "ignored": 1}
    assert Variant.objects.get(sku="P-1").price == Decimal("11.00")
    assert Variant.objects.get(sku="P-2").price == Decimal("20.00")


def test_an_older_price_change_is_answered_not_applied(pim):
    product_with_variants(skus=["O-1"], price="10.00")
    pim.patch("/api/v1/variants/O-1/", {"price": "12.00", "price_changed_at": "2030-01-02T00:00:00Z"}, format="json")
    response = pim.patch("/api/v1/variants/O-1/", {"price": "9.00", "price_changed_at": "2030-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 200 and response.json()["applied"] is False
    assert Variant.objects.get(sku="O-1").price == Decimal("12.00")


def test_a_product_with_a_bad_variant_creates_nothing(pim):
    body = {"handle": "shirt", "title": "Shirt", "variants": [{"sku": "S-1", "price": "5"}, {"sku": "S-2", "price": "-5"}]}
    response = pim.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400
    assert "variants[1].price" in response.json()["errors"]
    assert not Product.objects.exists() and not Variant.objects.exists()


def test_requests_without_a_token_are_refused(client):
    assert client.get("/api/v1/products/").status_code in (401, 403)


def test_a_merchandiser_token_may_read_but_not_write_prices():
    from tests.conftest import api_client

    product_with_variants(skus=["M-1"], price="10.00")
    merchandiser = api_client("merchandiser")
    assert merchandiser.get("/api/v1/variants/M-1/").status_code == 200
    assert merchandiser.patch("/api/v1/variants/M-1/", {"price": "1.00"}, format="json").status_code == 403
    assert Variant.objects.get(sku="M-1").price == Decimal("10.00")


def test_a_product_patch_adds_new_variants_and_updates_existing_ones(pim):
    product_with_variants(handle="cap", skus=["CAP-1"], price="10.00")
    response = pim.patch(
        "/api/v1/products/cap/",
        {"title": "Cap", "variants": [{"sku": "CAP-1", "price": "12.00"}, {"sku": "CAP-2", "price": "9.00"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert {v["sku"]: v["price"] for v in response.json()["variants"]} == {"CAP-1": "12.00", "CAP-2": "9.00"}
    assert Change.objects.filter(variant__sku="CAP-2").count() == 3  # price, inventory, content owed


@pytest.mark.parametrize(
    "row, field",
    [
        ({"sku": "B-1", "price": "1.005"}, "price"),
        ({"sku": "B-1", "price": "NaN"}, "price"),
        ({"sku": "B-1", "price": True}, "price"),
        ({"sku": "B-1"}, "price"),
        ({"price": "1.00"}, "sku"),
        ({"sku": "", "price": "1.00"}, "sku"),
        ({"sku": "B-1", "price": "1.00", "changed_at": "yesterday"}, "changed_at"),
        ({"sku": "B-1", "price": "123456789012.00"}, "price"),
    ],
)
def test_every_kind_of_bad_bulk_row_is_named(pim, row, field):
    product_with_variants(skus=["B-1"], price="10.00")
    response = pim.post("/api/v1/prices/bulk/", [{"sku": "B-1", "price": "2.00"}, row], format="json")
    assert response.status_code == 400
    assert f"[1].{field}" in response.json()["errors"]
    assert Variant.objects.get(sku="B-1").price == Decimal("10.00")


def test_a_bulk_body_that_is_not_a_list_is_refused(pim):
    response = pim.post("/api/v1/prices/bulk/", {"sku": "B-1", "price": "1"}, format="json")
    assert response.status_code == 400 and "list" in response.json()["detail"]
