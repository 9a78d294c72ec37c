"""Attribute mappings: which PIM attribute goes to which channel field, validated per kind,
and applied to content items before an adapter sees them.

A PIM attribute is a key of `Product.attributes` or `Variant.attributes` (the variant's value
wins). Per kind, a mapping's `target` is:
- shopify: a metafield `namespace.key` with a `target_type` (Shopify's metafield types);
- woocommerce: an attribute name, global (`pa_<slug>`) or local (any other name);
- amazon: an attribute name of the listing's product type (`product_type` optional: blank
  applies to every product type);
- magento: a custom attribute code;
- webhook: passthrough, no mapping (every attribute goes as it is).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from inventory.models import Change, Variant

from ..adapters.base import MappedAttribute, PushItem
from ..adapters.registry import adapter_class
from ..marks import marks_upsert
from ..models import AttributeMapping, Channel
from ..wakeups import wake_channel

# Shopify metafield types (shopify.dev "Metafield types"); each but json/rich text/rating
# also exists as `list.<type>`.
SHOPIFY_METAFIELD_TYPES = frozenset({
    "boolean", "color", "date", "date_time", "dimension", "id", "json", "link", "money", "multi_line_text_field",
    "number_decimal", "number_integer", "rating", "rich_text_field", "single_line_text_field", "url", "volume",
    "weight", "collection_reference", "customer_reference", "company_reference", "file_reference",
    "metaobject_reference", "mixed_reference", "page_reference", "product_reference", "product_taxonomy_value_reference",
    "variant_reference",
})
SHOPIFY_LIST_TYPES = frozenset(
    f"list.{t}" for t in SHOPIFY_METAFIELD_TYPES - {"boolean", "json", "money", "rich_text_field", "multi_line_text_field"}
)
# MetafieldsSetInput (Admin 2025-01 schema): namespace 3-255, key 2-64 characters, both
# alphanumeric, hyphen and underscore.
SHOPIFY_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{3,255}$")
SHOPIFY_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
# WooCommerce: a global attribute's taxonomy is `pa_` + a slug of at most 28 characters in all
# (wc_check_if_attribute_name_is_reserved / the 28-character taxonomy limit); a local one is a
# free name, but `|` separates its options and `,` its terms.
WOOCOMMERCE_GLOBAL = re.compile(r"^pa_[a-z0-9_-]{1,25}$")
# Amazon: attribute names in product type definitions are lower snake case; product types
# upper snake case (e.g. `LUGGAGE`). The offer and stock attributes belong to the price and
# inventory pushes and cannot be mapped.
AMAZON_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
AMAZON_PRODUCT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
AMAZON_RESERVED = frozenset({"purchasable_offer", "fulfillment_availability", "list_price", "merchant_suggested_asin"})
# Magento: attribute codes start with a letter, then letters, digits and underscores, at most
# 60 characters (Magento\Eav\Model\Entity\Attribute validation); system attributes are ours.
MAGENTO_CODE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,59}$")
MAGENTO_RESERVED = frozenset({"sku", "price", "qty", "quantity_and_stock_status", "status", "type_id", "attribute_set_id"})


def mapping_validate(kind: str, target: str, *, target_type: str = "", product_type: str = "") -> dict[str, list[str]]:
    """Field -> messages for what is wrong with this mapping on a channel of `kind`; empty
    when it is valid."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    target = target or ""
    if kind == Channel.Kind.WEBHOOK:
        add("target", "webhook channels pass every attribute through as it is: nothing to map")
        return errors
    if not target.strip():
        add("target", "required")
        return errors
    if kind == Channel.Kind.SHOPIFY:
        namespace, dot, key = target.partition(".")
        if not dot:
            add("target", "a Shopify metafield is `namespace.key`")
        else:
            if not SHOPIFY_NAMESPACE.match(namespace):
                add("target", f"metafield namespace {namespace!r}: 3-255 letters, digits, `-` or `_`")
            if not SHOPIFY_KEY.match(key):
                add("target", f"metafield key {key!r}: 2-64 letters, digits, `-` or `_`")
        if not target_type:
            add("target_type", "a Shopify metafield needs its type, e.g. single_line_text_field")
        elif target_type not in SHOPIFY_METAFIELD_TYPES | SHOPIFY_LIST_TYPES:
            add("target_type", f"{target_type!r} is not a Shopify metafield type")
    elif kind == Channel.Kind.WOOCOMMERCE:
        if target.startswith("pa_"):
            if not WOOCOMMERCE_GLOBAL.match(target):
                add("target", "a global WooCommerce attribute is `pa_` and a slug (a-z, 0-9, `-`, `_`), 28 characters at most")
        elif len(target) > 200 or "|" in target or "," in target:
            add("target", "a local WooCommerce attribute name: at most 200 characters, without `|` or `,`")
    elif kind == Channel.Kind.AMAZON:
        if not AMAZON_ATTRIBUTE.match(target):
            add("target", "an Amazon attribute name is lower snake case, e.g. `color` or `item_package_weight`")
        elif target in AMAZON_RESERVED:
            add("target", f"{target!r} is written by the price and stock pushes")
        if product_type and not AMAZON_PRODUCT_TYPE.match(product_type):
            add("product_type", "an Amazon product type is upper snake case, e.g. `LUGGAGE`")
    elif kind == Channel.Kind.MAGENTO:
        if not MAGENTO_CODE.match(target):
            add("target", "a Magento attribute code: a letter, then letters, digits or `_`, 60 characters at most")
        elif target.lower() in MAGENTO_RESERVED:
            add("target", f"{target!r} is a system attribute syncsvc writes itself")
    if product_type and kind != Channel.Kind.AMAZON:
        add("product_type", "only Amazon mappings are per product type")
    if target_type and kind != Channel.Kind.SHOPIFY:
        add("target_type", "only Shopify metafields have a type")
    return errors


class MappingInvalid(Exception):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


MAPPING_FIELDS = ("pim_attribute", "target", "target_type", "product_type", "enabled")


def mapping_save(*, channel: Channel, mapping: AttributeMapping | None = None, **values) -> AttributeMapping:
    """Create or update a mapping after validating it; resolves the schema drift it answers.
    Raises MappingInvalid naming the fields."""
    from .schema_drift import schema_drift_mapped

    mapping = mapping or AttributeMapping(channel=channel)
    for name in MAPPING_FIELDS:
        if name in values:
            setattr(mapping, name, values[name] if values[name] is not None else "")
    errors = {} if str(mapping.pim_attribute or "").strip() else {"pim_attribute": ["required"]}
    for name, messages in mapping_validate(
        channel.kind, mapping.target, target_type=mapping.target_type, product_type=mapping.product_type
    ).items():
        errors.setdefault(name, []).extend(messages)
    if errors:
        raise MappingInvalid(errors)
    try:
        with transaction.atomic():
            mapping.save()
            # A disabled mapping says "known, not sent": it resolves the drift as well.
            schema_drift_mapped(channel=channel, attribute=mapping.pim_attribute)
            if mapping.enabled:
                mapping_content_owe(channel=channel, attribute=mapping.pim_attribute)
    except IntegrityError:
        raise MappingInvalid({"pim_attribute": [
            f"{mapping.pim_attribute!r} is mapped already on this channel"
            + (f" for {mapping.product_type}" if mapping.product_type else "")
        ]}) from None
    return mapping


def mapping_content_owe(*, channel: Channel, attribute: str) -> int:
    """Owe content to the channel for every variant whose product or variant has `attribute`
    (its value now goes out in the mapped field), when the channel takes content in its
    flush; channels that take content only through the catalog refresh get it at the next
    one. Returns how many variants are owed."""
    if "content" not in adapter_class(channel.kind).aspects:
        return 0
    variant_ids = list(
        Variant.objects.filter(Q(attributes__has_key=attribute) | Q(product__attributes__has_key=attribute))
        .values_list("pk", flat=True)
    )
    if not variant_ids:
        return 0
    versions = dict(
        Change.objects.filter(variant_id__in=variant_ids, aspect="content")
        .values("variant_id").annotate(version=Max("pk")).values_list("variant_id", "version")
    )
    now = timezone.now()
    marks_upsert(channel_ids=[channel.pk], aspect="content", changes=[(pk, versions.get(pk, 0), now) for pk in variant_ids])
    if channel.enabled:
        transaction.on_commit(lambda: wake_channel(channel.pk))
    return len(variant_ids)


def mapping_delete(*, mapping: AttributeMapping) -> None:
    mapping.delete()


def _value_for(mappings: list[AttributeMapping], product_type: str) -> list[AttributeMapping]:
    """Per PIM attribute the mapping that applies: one for this product type first, then one
    for every product type."""
    chosen: dict[str, AttributeMapping] = {}
    for mapping in sorted(mappings, key=lambda m: m.product_type == ""):
        if mapping.product_type in ("", product_type):
            chosen.setdefault(mapping.pim_attribute, mapping)
    return list(chosen.values())


def mapping_apply(*, channel: Channel, items: Sequence[PushItem]) -> list[PushItem]:
    """Content items with their attributes as the channel's fields (`mapped_attributes`); the
    attributes no mapping covers are recorded as schema drift. Other items, and every item of
    a passthrough (webhook) channel, are returned as they are.

    Cost: nothing for price and stock batches; one query for the channel's mappings one for the
    products' attributes and one upsert for drift per batch that holds content items.
    """
    if channel.kind == Channel.Kind.WEBHOOK or not any(item.aspect == "content" for item in items):
        return list(items)
    from .schema_drift import schema_drift_note

    every_mapping = list(AttributeMapping.objects.filter(channel_id=channel.pk))
    product_type = str(channel.settings.get("product_type") or "")
    applying = _value_for([m for m in every_mapping if m.enabled], product_type)
    # Known attributes: mapped, or mapped and disabled on purpose (never sent, never drift).
    mapped_keys = {m.pim_attribute for m in every_mapping if m.product_type in ("", product_type)}
    product_attributes = dict(
        Variant.objects.filter(sku__in=[i.sku for i in items if i.aspect == "content"])
        .values_list("sku", "product__attributes")
    )
    out, unmapped, seen = [], {}, {}
    for item in items:
        if item.aspect != "content":
            out.append(item)
            continue
        attributes = {**(product_attributes.get(item.sku) or {}), **item.attributes}
        fields = tuple(
            MappedAttribute(m.target, attributes[m.pim_attribute], m.target_type)
            for m in applying if m.pim_attribute in attributes
        )
        for key in attributes:
            seen.setdefault(key, item.sku)
            if key not in mapped_keys:
                unmapped.setdefault(key, [item.sku, 0])[1] += 1
        out.append(dataclasses.replace(item, mapped_attributes=fields))
    schema_drift_note(
        channel=channel, unmapped={k: (sku, n) for k, (sku, n) in unmapped.items()},
        skus=[i.sku for i in items if i.aspect == "content"], seen=set(seen),
    )
    return out
