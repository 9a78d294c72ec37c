"""A content item as Shopify's `productUpdate` input: the one content mapping of this adapter.

- `title` -> `title` (left out when empty: Shopify refuses a blank title);
- `description` -> `descriptionHtml` (the PIM's description is sent as it is: HTML or text);
- `mapped_attributes` (the channel's attribute mappings, `services/mapping.py`) -> product
  `metafields`, each `namespace.key` with its metafield type; values that are not strings are
  written as Shopify stores them (JSON for `json` and `list.*`, `true`/`false`, numbers as
  text). Raw, unmapped attributes are never sent;
- media links: the PIM attribute named by the channel setting `media_attribute` (a URL or a
  list of URLs) -> `media` (`CreateMediaInput`, IMAGE). Off unless set, because Shopify adds
  the media it is given every time, even a URL the product already shows.

Title and description are the product's, so SKUs of one product share one line: the first
item of the product gives its content.
"""
from __future__ import annotations

import json

from ..base import PushItem

JSON_TYPES = ("json",)


def metafield_value(value: object, metafield_type: str) -> str:
    """A PIM value as the string Shopify stores for a metafield of `metafield_type`."""
    if metafield_type in JSON_TYPES or metafield_type.startswith("list."):
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def product_update_input(item: PushItem, product_id: str) -> dict:
    """`ProductUpdateInput` for the product of `item`."""
    product: dict = {"id": product_id}
    if item.title:
        product["title"] = item.title
    product["descriptionHtml"] = item.description or ""
    metafields = []
    for mapped in item.mapped_attributes:
        namespace, _, key = mapped.target.partition(".")
        metafields.append({
            "namespace": namespace,
            "key": key,
            "type": mapped.type or "single_line_text_field",
            "value": metafield_value(mapped.value, mapped.type or "single_line_text_field"),
        })
    if metafields:
        product["metafields"] = metafields
    return product


def media_input(item: PushItem, media_attribute: str) -> list[dict]:
    """`CreateMediaInput` entries for the image URLs in the item's `media_attribute`."""
    if not media_attribute:
        return []
    value = item.attributes.get(media_attribute)
    urls = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
    return [
        {"originalSource": url, "mediaContentType": "IMAGE"}
        for url in urls if isinstance(url, str) and url.startswith(("http://", "https://"))
    ]


def content_variables(item: PushItem, product_id: str, media_attribute: str = "") -> dict:
    """The variables of one `productUpdate` (one bulk line)."""
    variables: dict = {"product": product_update_input(item, product_id)}
    media = media_input(item, media_attribute)
    if media:
        variables["media"] = media
    return variables
