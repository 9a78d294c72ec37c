"""Magento orders made by the sandbox's `sales` control call, as `GET /V1/orders` lists them.

Magento sends no order webhooks (Adobe Commerce's own webhooks module aside), so a channel
learns of sales by polling `GET /V1/orders` with an `updated_at` filter. The order is shaped
like the Adobe docs example in `reference/samples/magento-order-get.docs-abbreviated.txt`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .catalog import MagentoProduct, magento_datetime, number

ADDRESS = {
    "city": "Purchase",
    "country_id": "US",
    "email": "customer@example.com",
    "firstname": "Sandbox",
    "lastname": "Customer",
    "postcode": "10577",
    "region": "New York",
    "region_code": "NY",
    "region_id": 43,
    "street": ["1 Test Street"],
    "telephone": "512-555-1111",
}


def order_resource(
    *,
    entity_id: int,
    increment_id: str,
    item_id: int,
    product: MagentoProduct,
    unit_price: Decimal,
    quantity: int,
    store_id: int,
    now: float,
) -> dict[str, Any]:
    stamp = magento_datetime(now)
    row_total = unit_price * quantity
    item = {
        "amount_refunded": 0,
        "base_amount_refunded": 0,
        "base_discount_amount": 0,
        "base_original_price": number(unit_price),
        "base_price": number(unit_price),
        "base_price_incl_tax": number(unit_price),
        "base_row_total": number(row_total),
        "base_row_total_incl_tax": number(row_total),
        "base_tax_amount": 0,
        "created_at": stamp,
        "discount_amount": 0,
        "discount_percent": 0,
        "free_shipping": 0,
        "is_qty_decimal": 0,
        "is_virtual": 0,
        "item_id": item_id,
        "name": product.name,
        "no_discount": 0,
        "order_id": entity_id,
        "original_price": number(unit_price),
        "price": number(unit_price),
        "price_incl_tax": number(unit_price),
        "product_id": product.id,
        "product_type": product.type_id,
        "qty_canceled": 0,
        "qty_invoiced": 0,
        "qty_ordered": quantity,
        "qty_refunded": 0,
        "qty_shipped": 0,
        "row_total": number(row_total),
        "row_total_incl_tax": number(row_total),
        "sku": product.sku,
        "store_id": store_id,
        "tax_amount": 0,
        "tax_percent": 0,
        "updated_at": stamp,
    }
    return {
        "base_currency_code": "USD",
        "base_discount_amount": 0,
        "base_grand_total": number(row_total),
        "base_shipping_amount": 0,
        "base_subtotal": number(row_total),
        "base_tax_amount": 0,
        "base_total_due": number(row_total),
        "base_to_global_rate": 1,
        "base_to_order_rate": 1,
        "billing_address_id": entity_id * 2,
        "created_at": stamp,
        "customer_email": ADDRESS["email"],
        "customer_firstname": ADDRESS["firstname"],
        "customer_group_id": 0,
        "customer_is_guest": 1,
        "customer_lastname": ADDRESS["lastname"],
        "customer_note_notify": 1,
        "discount_amount": 0,
        "email_sent": 1,
        "entity_id": entity_id,
        "global_currency_code": "USD",
        "grand_total": number(row_total),
        "increment_id": increment_id,
        "is_virtual": 0,
        "order_currency_code": "USD",
        "protect_code": f"{entity_id:06x}",
        "quote_id": entity_id,
        "shipping_amount": 0,
        "shipping_description": "Flat Rate - Fixed",
        "state": "new",
        "status": "pending",
        "store_currency_code": "USD",
        "store_id": store_id,
        "store_name": "Main Website\nMain Website Store\nDefault Store View",
        "subtotal": number(row_total),
        "subtotal_incl_tax": number(row_total),
        "tax_amount": 0,
        "total_due": number(row_total),
        "total_item_count": 1,
        "total_qty_ordered": quantity,
        "updated_at": stamp,
        "weight": 0,
        "items": [item],
        "billing_address": {"address_type": "billing", "entity_id": entity_id * 2, "parent_id": entity_id, **ADDRESS},
        "payment": {
            "account_status": None,
            "additional_information": ["Check / Money order"],
            "amount_ordered": number(row_total),
            "base_amount_ordered": number(row_total),
            "base_shipping_amount": 0,
            "cc_last4": None,
            "entity_id": entity_id,
            "method": "checkmo",
            "parent_id": entity_id,
            "shipping_amount": 0,
        },
        "status_histories": [],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": {
                            "address_type": "shipping",
                            "entity_id": entity_id * 2 - 1,
                            "parent_id": entity_id,
                            **ADDRESS,
                        },
                        "method": "flatrate_flatrate",
                        "total": {
                            "base_shipping_amount": 0,
                            "shipping_amount": 0,
                            "shipping_incl_tax": 0,
                            "shipping_tax_amount": 0,
                        },
                    },
                    "items": [dict(item)],
                }
            ]
        },
    }
