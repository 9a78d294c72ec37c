from __future__ import annotations

from decimal import Decimal

import factory

from channels.models import Channel
from inventory import services


def product_with_variants(handle: str = "tee", skus=("TEE-1",), price: str = "10.00", stock: int = 0):
    """A product made the way the PIM makes one: through the service, with its changes."""
    product = services.product_create(
        handle=handle, title=handle.title(), variants=[{"sku": sku, "price": Decimal(price)} for sku in skus]
    )
    if stock:
        for sku in skus:
            services.stock_adjust(sku=sku, delta=stock, reason="receipt", reference=f"seed-{sku}")
    return product


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = "webhook"
    base_url = "http://127.0.0.1:9/unused"
    settings = factory.LazyFunction(dict)

    @factory.post_generation
    def credentials(channel, create, extracted, **kwargs):
        channel.credentials = extracted or {"secret": "test-secret"}
        if create:
            channel.save()


def webhook_channel(stack, store: str, **fields) -> Channel:
    """A webhook channel pointing at a sandbox store that checks its signatures."""
    secret = fields.pop("secret", "test-secret")
    stack.sandbox.config("webhook", store, secret=secret)
    return ChannelFactory(base_url=f"{stack.sandbox_url}/webhook/{store}", credentials={"secret": secret}, **fields)


def sandbox_channel(stack, kind: str, store: str, *, receiver_url: str = "", webhook_secret: str = "whsec-test",
                    **fields) -> Channel:
    """A channel of `kind` talking to a sandbox store, set up as the contract suite does. With
    `receiver_url` (a running syncsvc web server), the store sends its order webhooks to this
    channel's `/webhooks/{id}/` there, signed with `webhook_secret`."""
    from tests.support.kinds import KINDS

    setup = KINDS[kind]
    channel = ChannelFactory(
        name=fields.pop("name", f"{kind}-{store}"), kind=kind, base_url=f"{stack.sandbox_url}/{kind}/{store}",
        credentials={**setup.credentials, "webhook_secret": webhook_secret},
        settings={**setup.settings, **fields.pop("settings", {})}, **fields,
    )
    config = dict(setup.store_config)
    if receiver_url:
        config.update(webhook_url=f"{receiver_url}/webhooks/{channel.pk}/", webhook_secret=webhook_secret)
    stack.sandbox.config(kind, store, **config)
    return channel
