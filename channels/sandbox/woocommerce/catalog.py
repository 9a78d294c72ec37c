"""A WooCommerce catalog: products and the variations of variable products, with WooCommerce's
stock rules, and their wc/v3 JSON.

Products and variations are WordPress posts, so they share one id sequence. Rules kept from
`WC_REST_Products_Controller::prepare_object_for_database` and `WC_Product::validate_props`:
- `stock_quantity` applies only while `manage_stock` is true; turning stock management off
  clears it (the response shows null).
- A product that manages stock gets its `stock_status` from the quantity on every save:
  above 0 `instock`, else `onbackorder` when backorders are allowed, else `outofstock`; a
  `stock_status` sent alongside is overridden.
- A variable product has no price of its own (`regular_price` is emptied); its `price` is the
  lowest of its variations' and its stock status follows them.
- SKUs are unique across products and variations (`product_invalid_sku`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import WpError

STOCK_STATUSES = ("instock", "outofstock", "onbackorder")
BACKORDERS = ("no", "notify", "yes")
POST_STATUSES = ("draft", "pending", "private", "publish", "future", "auto-draft", "trash")
PRODUCT_TYPES = ("simple", "grouped", "external", "variable")
FIRST_POST_ID = 100


def wp_datetime(timestamp: float) -> str:
    """WooCommerce's `YYYY-MM-DDTHH:MM:SS` (the sandbox site's timezone is UTC)."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "product"


def price_value(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


@dataclass
class Product:
    """A product (`simple` or `variable`) or a `variation` of a variable product."""

    id: int
    type: str
    sku: str
    name: str
    created_at: float
    modified_at: float
    parent_id: int = 0
    regular_price: str = ""
    sale_price: str = ""
    manage_stock: bool = False
    stock_quantity: int | None = None
    stock_status: str = "instock"
    backorders: str = "no"
    status: str = "publish"
    total_sales: int = 0
    writes: int = 0
    children: list[int] = field(default_factory=list)
    description: str = ""
    # `[{id, name, position, visible, variation, options}]`, as the product shows them (an
    # update replaces the whole list).
    attributes: list[dict] = field(default_factory=list)

    @property
    def post_type(self) -> str:
        return "product_variation" if self.type == "variation" else "product"

    @property
    def price(self) -> str:
        return self.sale_price or self.regular_price

    def refresh_stock_status(self) -> None:
        """`validate_props`: a product that manages stock takes its status from the quantity."""
        if self.manage_stock and self.type != "variable":
            if (self.stock_quantity or 0) > 0:
                self.stock_status = "instock"
            elif self.backorders != "no":
                self.stock_status = "onbackorder"
            else:
                self.stock_status = "outofstock"


class Catalog:
    """The products of one store; not locked itself (the store's lock guards it)."""

    def __init__(self) -> None:
        self.by_id: dict[int, Product] = {}
        self.by_sku: dict[str, Product] = {}
        self._next_post_id = FIRST_POST_ID

    def next_post_id(self) -> int:
        post_id = self._next_post_id
        self._next_post_id += 1
        return post_id

    def get(self, product_id: int) -> Product | None:
        return self.by_id.get(product_id)

    def find_sku(self, sku: str) -> Product | None:
        return self.by_sku.get(sku)

    def products(self) -> list[Product]:
        """Top-level products (what `GET /products` lists without a `sku` filter)."""
        return [product for product in self.by_id.values() if product.type != "variation"]

    def variations_of(self, parent_id: int) -> list[Product]:
        parent = self.by_id.get(parent_id)
        if parent is None:
            return []
        return [self.by_id[child] for child in parent.children if child in self.by_id]

    def create(self, product_type: str, sku: str, name: str, now: float, parent: Product | None = None) -> Product:
        self.check_sku(sku, None)
        product = Product(
            id=self.next_post_id(),
            type=product_type,
            sku=sku,
            name=name,
            created_at=now,
            modified_at=now,
            parent_id=parent.id if parent else 0,
        )
        self.by_id[product.id] = product
        if sku:
            self.by_sku[sku] = product
        if parent is not None:
            parent.children.append(product.id)
        return product

    def delete(self, product: Product) -> None:
        for child in list(product.children):
            child_product = self.by_id.get(child)
            if child_product is not None:
                self.delete(child_product)
        self.by_id.pop(product.id, None)
        if product.sku and self.by_sku.get(product.sku) is product:
            del self.by_sku[product.sku]
        parent = self.by_id.get(product.parent_id)
        if parent is not None and product.id in parent.children:
            parent.children.remove(product.id)
            self.sync_parent(parent)

    def check_sku(self, sku: str, owner: Product | None) -> None:
        """`wc_product_has_unique_sku`: an empty SKU is always allowed."""
        holder = self.by_sku.get(sku) if sku else None
        if holder is not None and holder is not owner:
            raise WpError(
                400,
                "product_invalid_sku",
                "Invalid or duplicated SKU.",
                data={"resource_id": holder.id, "unique_sku": f"{sku}-1"},
            )

    def apply(self, product: Product, changes: dict[str, Any], now: float) -> None:
        """Apply already-checked field changes in WooCommerce's order; raises before changing
        anything when the new SKU is taken."""
        if "sku" in changes:
            self.check_sku(changes["sku"], product)
        if "sku" in changes and changes["sku"] != product.sku:
            if product.sku and self.by_sku.get(product.sku) is product:
                del self.by_sku[product.sku]
            product.sku = changes["sku"]
            if product.sku:
                self.by_sku[product.sku] = product
        for name in ("name", "status", "backorders", "regular_price", "sale_price", "description", "attributes"):
            if name in changes:
                setattr(product, name, changes[name])
        requested_status = changes.get("stock_status", product.stock_status)
        if "manage_stock" in changes:
            product.manage_stock = changes["manage_stock"]
        if product.manage_stock:
            if product.type != "variable":
                product.stock_status = requested_status
            if "stock_quantity" in changes:
                product.stock_quantity = changes["stock_quantity"]
        else:
            # Not managing stock: any stock_quantity sent is ignored and the old one cleared.
            product.stock_quantity = None
            product.stock_status = requested_status
        if product.type == "variable":
            product.regular_price = product.sale_price = ""
        product.refresh_stock_status()
        product.modified_at = now
        if product.type == "variable":
            self.sync_parent(product)
        parent = self.by_id.get(product.parent_id)
        if parent is not None:
            self.sync_parent(parent)

    def sync_parent(self, parent: Product) -> None:
        """A variable product is in stock when any of its variations is."""
        if parent.manage_stock:
            return
        statuses = {child.stock_status for child in self.variations_of(parent.id)}
        if "instock" in statuses:
            parent.stock_status = "instock"
        elif "onbackorder" in statuses:
            parent.stock_status = "onbackorder"
        elif statuses:
            parent.stock_status = "outofstock"


class Renderer:
    """wc/v3 JSON for products and variations, with links under the store's site URL."""

    def __init__(self, catalog: Catalog, site_url: str) -> None:
        self.catalog = catalog
        self.site_url = site_url
        self.api_url = f"{site_url}wp-json/wc/v3"

    def product(self, product: Product) -> dict[str, Any]:
        if product.type == "variation":
            return self._variation_as_product(product)
        price = product.price
        if product.type == "variable":
            prices = [price_value(child.price) for child in self.catalog.variations_of(product.id)]
            known = [value for value in prices if value is not None]
            price = format(min(known), "f") if known else ""
        return {
            "id": product.id,
            "name": product.name,
            "slug": slugify(product.name),
            "permalink": f"{self.site_url}product/{slugify(product.name)}/",
            **self._dates(product),
            "type": product.type,
            "status": product.status,
            "featured": False,
            "catalog_visibility": "visible",
            "description": product.description,
            "short_description": "",
            "sku": product.sku,
            "price": price,
            "regular_price": product.regular_price,
            "sale_price": product.sale_price,
            "date_on_sale_from": None,
            "date_on_sale_from_gmt": None,
            "date_on_sale_to": None,
            "date_on_sale_to_gmt": None,
            "on_sale": bool(product.sale_price),
            "purchasable": bool(price) and product.status == "publish",
            "total_sales": product.total_sales,
            "virtual": False,
            "downloadable": False,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "external_url": "",
            "button_text": "",
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": product.manage_stock,
            "stock_quantity": product.stock_quantity if product.manage_stock else None,
            "backorders": product.backorders,
            "backorders_allowed": product.backorders != "no",
            "backordered": False,
            "low_stock_amount": None,
            "sold_individually": False,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "shipping_required": True,
            "shipping_taxable": True,
            "shipping_class": "",
            "shipping_class_id": 0,
            "reviews_allowed": True,
            "average_rating": "0.00",
            "rating_count": 0,
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": product.parent_id,
            "purchase_note": "",
            "categories": [],
            "tags": [],
            "images": [],
            "attributes": [dict(attribute) for attribute in product.attributes],
            "default_attributes": [],
            "variations": list(product.children),
            "grouped_products": [],
            "menu_order": 0,
            "price_html": "",
            "related_ids": [],
            "meta_data": [],
            "stock_status": product.stock_status,
            "has_options": product.type == "variable",
            "post_password": "",
            "global_unique_id": "",
            "_links": {
                "self": [{"href": f"{self.api_url}/products/{product.id}"}],
                "collection": [{"href": f"{self.api_url}/products"}],
            },
        }

    def variation(self, variation: Product) -> dict[str, Any]:
        parent = self.catalog.get(variation.parent_id)
        parent_slug = slugify(parent.name) if parent else "product"
        return {
            "id": variation.id,
            "type": "variation",
            **self._dates(variation),
            "description": "",
            "permalink": f"{self.site_url}product/{parent_slug}/?variation_id={variation.id}",
            "sku": variation.sku,
            "global_unique_id": "",
            "price": variation.price,
            "regular_price": variation.regular_price,
            "sale_price": variation.sale_price,
            "date_on_sale_from": None,
            "date_on_sale_from_gmt": None,
            "date_on_sale_to": None,
            "date_on_sale_to_gmt": None,
            "on_sale": bool(variation.sale_price),
            "status": variation.status,
            "purchasable": bool(variation.price) and variation.status == "publish",
            "virtual": False,
            "downloadable": False,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": variation.manage_stock,
            "stock_quantity": variation.stock_quantity if variation.manage_stock else None,
            "stock_status": variation.stock_status,
            "backorders": variation.backorders,
            "backorders_allowed": variation.backorders != "no",
            "backordered": False,
            "low_stock_amount": None,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "shipping_class": "",
            "shipping_class_id": 0,
            "image": None,
            "attributes": [],
            "menu_order": 0,
            "meta_data": [],
            "name": variation.name,
            "parent_id": variation.parent_id,
            "_links": {
                "self": [{"href": f"{self.api_url}/products/{variation.parent_id}/variations/{variation.id}"}],
                "collection": [{"href": f"{self.api_url}/products/{variation.parent_id}/variations"}],
                "up": [{"href": f"{self.api_url}/products/{variation.parent_id}"}],
            },
        }

    def _variation_as_product(self, variation: Product) -> dict[str, Any]:
        """A variation found through `/products` (a `sku` filter or its id) is rendered by the
        products controller: the product shape with `type: variation` and its `parent_id`."""
        body = self.product(Product(**{**variation.__dict__, "type": "simple", "children": []}))
        body.update(
            type="variation",
            parent_id=variation.parent_id,
            permalink=self.variation(variation)["permalink"],
            _links={
                "self": [{"href": f"{self.api_url}/products/{variation.id}"}],
                "collection": [{"href": f"{self.api_url}/products"}],
                "up": [{"href": f"{self.api_url}/products/{variation.parent_id}"}],
            },
        )
        return body

    @staticmethod
    def _dates(product: Product) -> dict[str, str]:
        created, modified = wp_datetime(product.created_at), wp_datetime(product.modified_at)
        return {
            "date_created": created,
            "date_created_gmt": created,
            "date_modified": modified,
            "date_modified_gmt": modified,
        }


def product_attributes(value: Any) -> list[dict] | None:
    """A product's `attributes` as WooCommerce keeps them (`WC_Product_Attribute`): a global
    attribute by `id`, a local one by `name`; entries with neither are skipped; `options` a list
    of term names (a `|`-separated string is split, as the admin does). None: not a list."""
    if not isinstance(value, list):
        return None
    kept = []
    for position, entry in enumerate(value):
        if not isinstance(entry, dict):
            continue
        try:
            attribute_id = int(entry.get("id") or 0)
        except (TypeError, ValueError):
            attribute_id = 0
        name = str(entry.get("name") or "").strip()
        if not attribute_id and not name:
            continue
        options = entry.get("options", [])
        if isinstance(options, str):
            options = [part.strip() for part in options.split("|")]
        options = [str(option) for option in options if str(option) != ""] if isinstance(options, list) else []
        kept.append({
            "id": attribute_id, "name": name, "position": int(entry.get("position") or position),
            "visible": bool(entry.get("visible", False)), "variation": bool(entry.get("variation", False)),
            "options": options,
        })
    return kept
