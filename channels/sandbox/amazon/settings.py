"""The `amazon` store's settings (`POST /_sandbox/amazon/{store}/config`): names, checks, defaults."""
from __future__ import annotations

import re
from typing import Any

from ..typed_config import ConfigParser, non_negative_number, positive_number
from ..validation import invalid, number, text
from .throttle import USAGE_PLANS

DEFAULT_SELLER_ID = "A1SANDBOXSELLER"
DEFAULT_MARKETPLACE_ID = "ATVPDKIKX0DER"
DEFAULT_APPLICATION_ID = "amzn1.sellerapps.app.00000000-0000-4000-8000-00000000sbox"

# Currency of each marketplace (SP-API "Marketplace IDs" table); `currency` overrides it.
MARKETPLACE_CURRENCIES = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1805IZSGTT6HS": "EUR",
    "AMEN7PMS3EDWL": "EUR",
    "A2NODRKZP88ZB9": "SEK",
    "A1C3SOZRARQ6R3": "PLN",
    "A33AVAJ2PDY3EV": "TRY",
    "A2VIGQ35RCS4UG": "AED",
    "A17E79C6D8DWNP": "SAR",
    "ARBP9OOSHTCHU": "EGP",
    "A21TJRUUN4KGV": "INR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A19VAU5U5O7RUS": "SGD",
}

def _non_empty_text(value: Any, field: str) -> str:
    checked = text(value, field)
    if not checked:
        raise invalid(field, "a non-empty string", value)
    return checked


def _currency(value: Any, field: str) -> str:
    checked = _non_empty_text(value, field)
    if not re.fullmatch(r"[A-Z]{3}", checked):
        raise invalid(field, "an ISO 4217 currency code like USD", value)
    return checked


def _burst(value: Any, field: str) -> float:
    return number(value, field, minimum=1.0)


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, "true or false", value)
    return value


# Each setting with its check; null in a config body puts a setting back to its default.
PARSERS: dict[str, ConfigParser] = {
    # shared by every kind
    "webhook_url": text,
    "webhook_secret": text,
    "plan": text,
    "secret": text,
    # the seller and where it sells
    "seller_id": _non_empty_text,
    "marketplace_id": _non_empty_text,
    "currency": _currency,
    # LWA: unset means any non-empty value is accepted
    "client_id": _non_empty_text,
    "client_secret": _non_empty_text,
    "refresh_token": _non_empty_text,
    "token_lifetime_s": positive_number,
    # feeds
    "feed_processing_ms": non_negative_number,
    # notifications
    "application_id": _non_empty_text,
    "send_quantity_notifications": _boolean,
    # usage plans, one rate and one burst per operation (see throttle.USAGE_PLANS)
    **{plan.rate_key: positive_number for plan in USAGE_PLANS.values()},
    **{plan.burst_key: _burst for plan in USAGE_PLANS.values()},
}

DEFAULTS: dict[str, Any] = {
    "seller_id": DEFAULT_SELLER_ID,
    "marketplace_id": DEFAULT_MARKETPLACE_ID,
    "token_lifetime_s": 3600.0,
    "feed_processing_ms": 1000.0,
    "application_id": DEFAULT_APPLICATION_ID,
    "send_quantity_notifications": False,
    **{plan.rate_key: plan.default_rate for plan in USAGE_PLANS.values()},
    **{plan.burst_key: plan.default_burst for plan in USAGE_PLANS.values()},
}

SECRET_FIELDS = frozenset({"webhook_secret", "secret", "client_secret", "refresh_token"})


def currency_for(config: dict[str, Any]) -> str:
    if config.get("currency"):
        return str(config["currency"])
    return MARKETPLACE_CURRENCIES.get(setting(config, "marketplace_id"), "USD")


def setting(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    return DEFAULTS.get(name) if value is None else value
