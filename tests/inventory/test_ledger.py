from __future__ import annotations

import threading

import pytest
from django.db import connection

from inventory.models import StockLevel, StockMovement
from tests.factories import product_with_variants


@pytest.mark.django_db
def test_the_same_adjustment_reference_twice_is_applied_once(pim):
    # given
    product_with_variants(skus=["L-1"])
    body = {"sku": "L-1", "delta": 5, "reason": "receipt", "reference": "po-1"}

    # when
    first = pim.post("/api/v1/inventory/adjustments/", body, format="json")
    second = pim.post("/api/v1/inventory/adjustments/", body, format="json")

    # then
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert StockLevel.objects.get(variant__sku="L-1").on_hand == 5


@pytest.mark.django_db(transaction=True)
def test_the_same_adjustment_reference_posted_concurrently_is_applied_once():
    from inventory import services

    # given
    product_with_variants(skus=["C-1"])
    barrier = threading.Barrier(8)
    outcomes = []

    def post():
        barrier.wait()
        try:
            outcomes.append(services.stock_adjust(sku="C-1", delta=3, reason="receipt", reference="dup")[1])
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert sorted(outcomes) == [False] * 7 + [True]
    assert StockLevel.objects.get(variant__sku="C-1").on_hand == 3
    assert StockMovement.objects.filter(reference="dup").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_sales_with_distinct_references_all_count():
    from inventory import services

    product_with_variants(skus=["C-2"], stock=20)
    barrier = threading.Barrier(10)

    def sell(n):
        barrier.wait()
        try:
            services.stock_adjust(sku="C-2", delta=-1, reason="sale", reference=f"order-{n}")
        finally:
            connection.close()

    threads = [threading.Thread(target=sell, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert StockLevel.objects.get(variant__sku="C-2").on_hand == 10


@pytest.mark.django_db
def test_a_count_is_recorded_as_the_delta_that_makes_it_true(pim):
    product_with_variants(skus=["K-1"], stock=7)
    response = pim.post("/api/v1/inventory/counts/", {"sku": "K-1", "on_hand": 4, "reference": "count-1"}, format="json")
    assert response.status_code == 201
    assert response.json()["delta"] == -3
    assert StockLevel.objects.get(variant__sku="K-1").on_hand == 4


@pytest.mark.django_db
def test_a_sale_with_a_positive_delta_is_refused_naming_delta(pim):
    product_with_variants(skus=["S-1"], stock=7)
    response = pim.post("/api/v1/inventory/adjustments/", {"sku": "S-1", "delta": 2, "reason": "sale", "reference": "x"}, format="json")
    assert response.status_code == 400 and "delta" in response.json()["errors"]
    assert StockLevel.objects.get(variant__sku="S-1").on_hand == 7


@pytest.mark.django_db
def test_a_list_of_adjustments_with_one_bad_row_applies_none(pim):
    product_with_variants(skus=["A-1"], stock=1)
    rows = [
        {"sku": "A-1", "delta": 1, "reason": "receipt", "reference": "a"},
        {"sku": "NOPE", "delta": 1, "reason": "receipt", "reference": "b"},
    ]
    response = pim.post("/api/v1/inventory/adjustments/", rows, format="json")
    assert response.status_code == 400 and "[1].sku" in response.json()["errors"]
    assert StockLevel.objects.get(variant__sku="A-1").on_hand == 1
    assert not StockMovement.objects.filter(reference__in=["a", "b"]).exists()
