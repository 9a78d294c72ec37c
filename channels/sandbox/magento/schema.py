"""Request bodies checked the way Magento's `ServiceInputProcessor` does, for the data
interfaces the emulated routes take (field names and types from the 2.4.8 swagger
definitions `catalog-data-base-price-interface`, `inventory-api-data-source-item-interface`,
`catalog-data-product-interface`, ...).

- A scalar is cast to the declared type when it can be ("12.5" for a float, 3 for a string);
  otherwise 400 `The "%value" value's type is invalid. The "%type" type was expected.`,
  prefixed with `Error occurred during "<field>" processing.` for each enclosing field.
- A field the interface has no getter for is refused with the exception Magento raises
  (`Property "X" does not have accessor method "getX" ...`). Some Magento 2.4 releases answer
  it as a 500; the sandbox answers 400 so the misspelt field is named either way.
- A missing method parameter (`prices`, `sourceItems`, `product`) is `"%fieldName" is required.`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import MagentoError, required_fields

ANY = "mixed"


@dataclass(frozen=True)
class DataInterface:
    """A Magento data interface: its PHP name and its fields' types."""

    name: str
    fields: dict[str, FieldType] = field(default_factory=dict)
    open: bool = False  # extension attribute holders take anything


@dataclass(frozen=True)
class ListOf:
    item: FieldType


FieldType = str | DataInterface | ListOf


class SerializationError(Exception):
    """A value that cannot become its declared type; the message is Magento's."""


def _php_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return "array"
    return str(value)


def _type_error(value: Any, type_name: str) -> SerializationError:
    return SerializationError(
        f'The "{_php_text(value)}" value\'s type is invalid. The "{type_name}" type was expected. Verify and try again.'
    )


def _scalar(value: Any, type_name: str) -> Any:
    if isinstance(value, (dict, list)):
        raise _type_error(value, type_name)
    if type_name == "string":
        return _php_text(value)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) or (
            isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "")
        ):
            return str(value).strip().lower() in ("1", "true", "1.0")
        raise _type_error(value, type_name)
    try:
        number = float(value) if not isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        raise _type_error(value, type_name) from None
    if type_name == "int":
        if not number.is_integer():
            raise _type_error(value, type_name)
        return int(number)
    return number


def convert(value: Any, field_type: FieldType) -> Any:
    """The value as the declared type; raises SerializationError."""
    if value is None or field_type == ANY:
        return value
    if isinstance(field_type, ListOf):
        if not isinstance(value, list):
            raise _type_error(value, f"{_type_name(field_type.item)}[]")
        return [convert(item, field_type.item) for item in value]
    if isinstance(field_type, DataInterface):
        return parse_object(field_type, value)
    return _scalar(value, field_type)


def _type_name(field_type: FieldType) -> str:
    if isinstance(field_type, DataInterface):
        return f"\\{field_type.name}"
    if isinstance(field_type, ListOf):
        return f"{_type_name(field_type.item)}[]"
    return field_type


def parse_object(interface: DataInterface, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _type_error(data, _type_name(interface))
    if interface.open:
        return dict(data)
    parsed: dict[str, Any] = {}
    for name, value in data.items():
        if name not in interface.fields:
            getter = "get" + "".join(part[:1].upper() + part[1:] for part in str(name).split("_"))
            raise SerializationError(
                f'Property "{name}" does not have accessor method "{getter}" in class "{interface.name}".'
            )
        try:
            parsed[name] = convert(value, interface.fields[name])
        except SerializationError as error:
            raise SerializationError(f'Error occurred during "{name}" processing. {error}') from None
    return parsed


def parse_parameters(body: Any, parameters: dict[str, tuple[FieldType, bool]]) -> dict[str, Any]:
    """The service method's parameters from a JSON body: `{name: (type, required)}`."""
    if not isinstance(body, dict):
        body = {}
    missing = [name for name, (_, required) in parameters.items() if required and body.get(name) is None]
    if missing:
        raise required_fields(missing)
    parsed: dict[str, Any] = {}
    for name, (field_type, _) in parameters.items():
        if name in body:
            try:
                parsed[name] = convert(body[name], field_type)
            except SerializationError as error:
                raise MagentoError(400, str(error)) from None
    return parsed


EXTENSION_ATTRIBUTES = DataInterface("ExtensionAttributes", open=True)

BASE_PRICE = DataInterface(
    "Magento\\Catalog\\Api\\Data\\BasePriceInterface",
    {"price": "float", "store_id": "int", "sku": "string", "extension_attributes": EXTENSION_ATTRIBUTES},
)
SOURCE_ITEM = DataInterface(
    "Magento\\InventoryApi\\Api\\Data\\SourceItemInterface",
    {
        "sku": "string",
        "source_code": "string",
        "quantity": "float",
        "status": "int",
        "extension_attributes": EXTENSION_ATTRIBUTES,
    },
)
STOCK_ITEM = DataInterface(
    "Magento\\CatalogInventory\\Api\\Data\\StockItemInterface",
    {
        "item_id": "int",
        "product_id": "int",
        "stock_id": "int",
        "qty": "float",
        "is_in_stock": "bool",
        "is_qty_decimal": "bool",
        "show_default_notification_message": "bool",
        "use_config_min_qty": "bool",
        "min_qty": "float",
        "use_config_min_sale_qty": "int",
        "min_sale_qty": "float",
        "use_config_max_sale_qty": "bool",
        "max_sale_qty": "float",
        "use_config_backorders": "bool",
        "backorders": "int",
        "use_config_notify_stock_qty": "bool",
        "notify_stock_qty": "float",
        "use_config_qty_increments": "bool",
        "qty_increments": "float",
        "use_config_enable_qty_inc": "bool",
        "enable_qty_increments": "bool",
        "use_config_manage_stock": "bool",
        "manage_stock": "bool",
        "low_stock_date": "string",
        "is_decimal_divided": "bool",
        "stock_status_changed_auto": "int",
        "extension_attributes": EXTENSION_ATTRIBUTES,
    },
)
PRODUCT_EXTENSION = DataInterface(
    "Magento\\Catalog\\Api\\Data\\ProductExtensionInterface",
    {
        "website_ids": ListOf("int"),
        "category_links": ListOf(ANY),
        "discounts": ListOf(ANY),
        "bundle_product_options": ListOf(ANY),
        "stock_item": STOCK_ITEM,
        "configurable_product_options": ListOf(ANY),
        "configurable_product_links": ListOf("int"),
        "downloadable_product_links": ListOf(ANY),
        "downloadable_product_samples": ListOf(ANY),
        "giftcard_amounts": ListOf(ANY),
    },
)
ATTRIBUTE = DataInterface("Magento\\Framework\\Api\\AttributeInterface", {"attribute_code": "string", "value": ANY})
PRODUCT = DataInterface(
    "Magento\\Catalog\\Api\\Data\\ProductInterface",
    {
        "id": "int",
        "sku": "string",
        "name": "string",
        "attribute_set_id": "int",
        "price": "float",
        "status": "int",
        "visibility": "int",
        "type_id": "string",
        "created_at": "string",
        "updated_at": "string",
        "weight": "float",
        "extension_attributes": PRODUCT_EXTENSION,
        "product_links": ListOf(ANY),
        "options": ListOf(ANY),
        "media_gallery_entries": ListOf(ANY),
        "tier_prices": ListOf(ANY),
        "custom_attributes": ListOf(ATTRIBUTE),
    },
)

# Service method parameters per operation: {name: (type, required)}.
ADMIN_TOKEN_PARAMETERS: dict[str, tuple[FieldType, bool]] = {"username": ("string", True), "password": ("string", True)}
BASE_PRICES_PARAMETERS: dict[str, tuple[FieldType, bool]] = {"prices": (ListOf(BASE_PRICE), True)}
BASE_PRICES_INFORMATION_PARAMETERS: dict[str, tuple[FieldType, bool]] = {"skus": (ListOf("string"), True)}
SOURCE_ITEMS_PARAMETERS: dict[str, tuple[FieldType, bool]] = {"sourceItems": (ListOf(SOURCE_ITEM), True)}
PRODUCT_SAVE_PARAMETERS: dict[str, tuple[FieldType, bool]] = {
    "product": (PRODUCT, True),
    "saveOptions": ("bool", False),
}
