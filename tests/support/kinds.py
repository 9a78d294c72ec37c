"""What each channel kind needs to talk to its sandbox store: credentials on both sides, the
store's config, the channel's settings, and what the kind can do."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KindSetup:
    kind: str
    credentials: dict
    store_config: dict
    settings: dict = field(default_factory=dict)
    # Real shops only accept writes for SKUs they already hold; a webhook receiver takes any.
    store_holds_skus: bool = True
    can_fetch: bool = True
    per_item_failures: bool = True


KINDS = {
    "webhook": KindSetup(
        "webhook", {"secret": "contract-secret"}, {"secret": "contract-secret"},
        store_holds_skus=False, can_fetch=False, per_item_failures=False,
    ),
    "shopify": KindSetup(
        "shopify", {"access_token": "shpat_contract"}, {"access_token": "shpat_contract", "plan": "standard"},
        settings={"api_version": "2026-10"},
    ),
    "woocommerce": KindSetup(
        "woocommerce",
        {"consumer_key": "ck_contract", "consumer_secret": "cs_contract"},
        {"consumer_key": "ck_contract", "consumer_secret": "cs_contract"},
    ),
    "magento": KindSetup(
        "magento", {"username": "syncsvc", "password": "contract-pass1"},
        {"admin_username": "syncsvc", "admin_password": "contract-pass1"},
    ),
    "amazon": KindSetup(
        "amazon",
        {"client_id": "amzn1.application-oa2-client.contract", "client_secret": "contract-secret",
         "refresh_token": "Atzr|contract", "seller_id": "A1SANDBOXSELLER"},
        {"client_id": "amzn1.application-oa2-client.contract", "client_secret": "contract-secret",
         "refresh_token": "Atzr|contract", "seller_id": "A1SANDBOXSELLER"},
    ),
}
