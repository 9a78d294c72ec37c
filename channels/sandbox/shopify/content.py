"""Product content writes: `productUpdate` and `productSet`, with Shopify's checks and user errors.

What is emulated: title, handle, descriptionHtml, metafields (created or updated by namespace
and key; `productSet` also deletes the ones it does not list, as its declarative contract
says) and media links (`productUpdate(media: [CreateMediaInput])`, images by URL). Variants,
options, collections and the rest of the inputs are accepted by the schema but not applied;
`productSet` with `variants` is refused with a user error rather than silently ignored,
because the real mutation would delete the variants it is not given.

Messages follow the Admin API's user errors (`UserError` for productUpdate, `ProductSetUserError`
with codes for productSet); the metafield checks are the documented type rules.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .catalog import MediaImage, Metafield, Product, parse_gid
from .mutations import Outcome
from .views import APP_NAMESPACE, ProductView, Shop

# shopify.dev, "Metafield types" (the ones a product's content mapping uses).
METAFIELD_TYPES = frozenset(
    {
        "boolean",
        "color",
        "date",
        "date_time",
        "dimension",
        "json",
        "money",
        "multi_line_text_field",
        "number_decimal",
        "number_integer",
        "rating",
        "rich_text_field",
        "single_line_text_field",
        "url",
        "volume",
        "weight",
        "list.single_line_text_field",
        "list.number_integer",
        "list.number_decimal",
        "list.url",
    }
)
MAX_TITLE = 255
MAX_NAMESPACE = 255
MAX_KEY = 64
MAX_SINGLE_LINE = 65_535  # characters ("single_line_text_field ... up to 65,535")
MAX_MEDIA_PER_PRODUCT = 250
HANDLE = re.compile(r"[a-z0-9][a-z0-9\-]*")
URL = re.compile(r"https?://\S+")


def problem(message: str, field: list[str] | None, code: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        entry["code"] = code
    return entry


def product_update(shop: Shop, arguments: dict[str, Any], now: float) -> Outcome:
    """`productUpdate(product:, media:)`: all checks first, then nothing or everything applied."""
    data = arguments.get("product") or {}
    media = arguments.get("media") or []
    product = _product(shop, data.get("id"))
    if product is None:
        return Outcome({"product": None, "userErrors": [problem("Product does not exist", ["id"])]}, failed=True)
    problems = _content_problems(data, ["product"], codes=False)
    problems += _media_problems(product, media)
    if problems:
        return Outcome({"product": None, "userErrors": problems}, failed=True)
    _apply(shop, product, data, now, replace_metafields=False)
    # Shopify adds the media it is given, even a URL the product already shows.
    for entry in media:
        product.media.append(
            MediaImage(shop.catalog.next_id("MediaImage"), entry["originalSource"], entry.get("alt") or "", now)
        )
    return Outcome({"product": ProductView(shop, product), "userErrors": []})


def product_set(shop: Shop, arguments: dict[str, Any], now: float) -> Outcome:
    """`productSet(input:)` on an existing product (the sandbox creates products through its
    control API only); list fields given replace what the product had."""
    data = arguments.get("input") or {}
    empty = {"product": None, "productSetOperation": None}
    if data.get("id") is None:
        error = problem("Creating products with productSet is not emulated by the syncsvc sandbox", ["input", "id"],
                        "INVALID_PRODUCT")
        return Outcome({**empty, "userErrors": [error]}, failed=True)
    product = _product(shop, data["id"])
    if product is None:
        error = problem("Product does not exist", ["input", "id"], "PRODUCT_DOES_NOT_EXIST")
        return Outcome({**empty, "userErrors": [error]}, failed=True)
    problems = _content_problems(data, ["input"], codes=True)
    if data.get("variants") is not None:
        problems.append(problem("Variants in productSet are not emulated by the syncsvc sandbox",
                                ["input", "variants"], "INVALID_VARIANT"))
    if problems:
        return Outcome({**empty, "userErrors": problems}, failed=True)
    _apply(shop, product, data, now, replace_metafields="metafields" in data)
    return Outcome({"product": ProductView(shop, product), "productSetOperation": None, "userErrors": []})


def _product(shop: Shop, text: Any) -> Product | None:
    parsed = parse_gid(text, "Product")
    return shop.catalog.products.get(parsed[1]) if parsed else None


def _content_problems(data: dict[str, Any], where: list[str], *, codes: bool) -> list[dict[str, Any]]:
    def code(name: str) -> str | None:
        return name if codes else None

    problems = []
    # productUpdate's paths start at the field ("title"), productSet's at the argument ("input").
    base = where if codes else []
    if "title" in data:
        title = data["title"]
        if title is None or not title.strip():
            problems.append(problem("Title can't be blank", [*base, "title"], code("BLANK")))
        elif len(title) > MAX_TITLE:
            problems.append(problem(f"Title is too long (maximum is {MAX_TITLE} characters)", [*base, "title"],
                                    code("TOO_LONG")))
    handle = data.get("handle")
    if handle is not None and not HANDLE.fullmatch(handle):
        problems.append(problem("Handle is invalid", [*base, "handle"], code("INVALID")))
    for index, metafield in enumerate(data.get("metafields") or []):
        problems.extend(_metafield_problems(metafield, [*base, "metafields", str(index)], code))
    return problems


def _metafield_problems(metafield: dict[str, Any], where: list[str], code) -> list[dict[str, Any]]:
    namespace = metafield.get("namespace") or APP_NAMESPACE
    key, kind, value = metafield.get("key"), metafield.get("type"), metafield.get("value")
    problems = []
    if not key:
        problems.append(problem("Key can't be blank", [*where, "key"], code("BLANK")))
    elif not 2 <= len(key) <= MAX_KEY or not re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        problems.append(problem(
            f"Key must be 2-{MAX_KEY} characters long and can only contain alphanumeric, hyphen, and underscore "
            "characters.", [*where, "key"], code("INVALID")))
    if namespace != APP_NAMESPACE and (
        not 2 <= len(namespace) <= MAX_NAMESPACE or not re.fullmatch(r"[A-Za-z0-9_\-$:]+", namespace)
    ):
        problems.append(problem(
            f"Namespace must be 2-{MAX_NAMESPACE} characters long and can only contain alphanumeric, hyphen, and "
            "underscore characters.", [*where, "namespace"], code("INVALID")))
    if not kind:
        problems.append(problem("Type can't be blank", [*where, "type"], code("BLANK")))
    elif kind not in METAFIELD_TYPES:
        problems.append(problem(f"Type '{kind}' is not a valid metafield type.", [*where, "type"], code("INVALID")))
    if value is None:
        problems.append(problem("Value can't be blank", [*where, "value"], code("BLANK")))
    elif kind in METAFIELD_TYPES:
        message = _value_problem(kind, value)
        if message:
            problems.append(problem(message, [*where, "value"], code("INVALID")))
    return problems


def _value_problem(kind: str, value: str) -> str | None:
    if kind == "single_line_text_field":
        if "\n" in value:
            return "Value must be a single line text string."
        if len(value) > MAX_SINGLE_LINE:
            return f"Value is too long (maximum is {MAX_SINGLE_LINE} characters)"
    if kind == "number_integer" and not re.fullmatch(r"-?\d+", value.strip()):
        return "Value must be an integer."
    if kind == "number_decimal":
        try:
            Decimal(value)
        except InvalidOperation:
            return "Value must be a decimal."
    if kind == "boolean" and value not in ("true", "false"):
        return "Value must be true or false."
    if kind == "url" and not URL.fullmatch(value):
        return "Value must be a valid URL."
    if kind == "json" or kind.startswith("list."):
        try:
            json.loads(value)
        except ValueError:
            return "Value is invalid JSON."
    return None


def _media_problems(product: Product, media: list[dict[str, Any]]) -> list[dict[str, Any]]:
    problems = []
    for index, entry in enumerate(media):
        where = ["media", str(index)]
        if entry.get("mediaContentType") != "IMAGE":
            problems.append(problem("Only IMAGE media is emulated by the syncsvc sandbox",
                                    [*where, "mediaContentType"]))
        if not URL.fullmatch(entry.get("originalSource") or ""):
            problems.append(problem("Image URL is invalid", [*where, "originalSource"]))
    if len(product.media) + len(media) > MAX_MEDIA_PER_PRODUCT:
        problems.append(problem(f"Exceeded the maximum number of media, {MAX_MEDIA_PER_PRODUCT}.", ["media"]))
    return problems


def _apply(shop: Shop, product: Product, data: dict[str, Any], now: float, *, replace_metafields: bool) -> None:
    if data.get("title") is not None:
        product.title = data["title"]
    if data.get("handle") is not None:
        product.handle = data["handle"]
    if "descriptionHtml" in data:
        product.description_html = data["descriptionHtml"] or ""
    given: set[tuple[str, str]] = set()
    for entry in data.get("metafields") or []:
        name = (entry.get("namespace") or APP_NAMESPACE, entry["key"])
        given.add(name)
        existing = product.metafields.get(name)
        if existing is None:
            product.metafields[name] = Metafield(
                shop.catalog.next_id("Metafield"), name[0], name[1], entry["type"], entry["value"], now, now
            )
        else:
            existing.type, existing.value, existing.updated_at = entry["type"], entry["value"], now
    if replace_metafields:
        for name in [name for name in product.metafields if name not in given]:
            del product.metafields[name]
    product.updated_at = now
