"""Demo data for `make run`: an admin, a catalog, three webhook channels on the sandbox, and a
Shopify sandbox shop whose sales come back as its signed order webhooks."""
from __future__ import annotations

import json
import secrets
from decimal import Decimal

import requests
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from channels.models import Channel
from channels.services.owe import channel_owe_all
from inventory import services
from inventory.models import Product

DEMO_CHANNELS = [("search-index", 0), ("cms", 0), ("analytics", 2)]
DEMO_SHOP = "demo-shop"
PRODUCTS = ["classic-tee", "hoodie", "cap", "socks", "jacket", "beanie", "scarf", "polo", "shorts", "sweater"]
SIZES = ["S", "M", "L"]


class Command(BaseCommand):
    help = "Create (idempotently) the demo admin user, catalog and sandbox channels, and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8765")
        parser.add_argument("--web-url", default="http://127.0.0.1:8000", help="where the demo shop sends its webhooks")

    def handle(self, sandbox_url, web_url, **options):
        sandbox_url = sandbox_url.rstrip("/")
        password, token = self._admin()
        with transaction.atomic():
            channels = [self._channel(name, safety, sandbox_url) for name, safety in DEMO_CHANNELS]
            shop = self._shop(sandbox_url)
            self._catalog()
        for channel in channels:
            self._configure_store(sandbox_url, channel)
        self._configure_shop(sandbox_url, web_url.rstrip("/"), shop)
        for channel in [*channels, shop]:
            # The sandbox keeps its stores in memory: fill them again on every start.
            channel_owe_all(channel=channel)
        self.stdout.write(
            f"demo admin: username admin, password {password}  (http://127.0.0.1:8000/admin/)\n"
            f"demo API token (all roles): {token}\n"
            f"demo channels: {', '.join(c.name for c in channels)} -> {sandbox_url}/webhook/<name>; "
            f"{DEMO_SHOP} -> {sandbox_url}/shopify/{DEMO_SHOP} (sell on it: POST "
            f"{sandbox_url}/_sandbox/shopify/{DEMO_SHOP}/sales {{\"sku\": \"HOODIE-M\", \"quantity\": 1}})"
        )

    def _admin(self) -> tuple[str, str]:
        credentials_file = settings.VAR_DIR / "demo-credentials.json"
        user = User.objects.filter(username="admin").first()
        if user is None or not credentials_file.exists():
            password = secrets.token_urlsafe(12)
            user = user or User(username="admin", email="admin@example.com")
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            credentials_file.write_text(json.dumps({"username": "admin", "password": password}))
        password = json.loads(credentials_file.read_text())["password"]
        for role in ("pim", "ops", "merchandiser"):
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return password, Token.objects.get_or_create(user=user)[0].key

    def _channel(self, name: str, safety_stock: int, sandbox_url: str) -> Channel:
        channel = Channel.objects.filter(name=name).first()
        if channel is None:
            channel = Channel(name=name, kind="webhook", safety_stock=safety_stock)
            channel.credentials = {"secret": secrets.token_hex(16)}
        channel.base_url = f"{sandbox_url}/webhook/{name}"
        channel.save()
        return channel

    def _shop(self, sandbox_url: str) -> Channel:
        shop = Channel.objects.filter(name=DEMO_SHOP).first()
        if shop is None:
            shop = Channel(name=DEMO_SHOP, kind="shopify", settings={"api_version": "2026-10"})
            shop.credentials = {"access_token": f"shpat_{secrets.token_hex(12)}", "webhook_secret": secrets.token_hex(16)}
        shop.base_url = f"{sandbox_url}/shopify/{DEMO_SHOP}"
        shop.save()
        return shop

    def _configure_shop(self, sandbox_url: str, web_url: str, shop: Channel) -> None:
        """The shop holds the catalog (a real shop has its products before we sync them) and
        sends its order webhooks to this syncsvc."""
        control = f"{sandbox_url}/_sandbox/shopify/{DEMO_SHOP}"
        credentials = shop.credentials
        try:
            requests.post(f"{control}/config", timeout=5, json={
                "access_token": credentials["access_token"], "plan": "standard",
                "webhook_url": f"{web_url}/webhooks/{shop.pk}/", "webhook_secret": credentials["webhook_secret"],
            }).raise_for_status()
            for product in Product.objects.prefetch_related("variants"):
                for variant in product.variants.all():
                    requests.put(f"{control}/items/{variant.sku}", timeout=5, json={
                        "price": str(variant.price), "available": 0, "title": product.title, "product": product.handle,
                    }).raise_for_status()
        except requests.RequestException as exc:
            raise CommandError(f"sandbox at {sandbox_url} did not take the demo shop: {exc}") from exc

    def _catalog(self) -> None:
        if Product.objects.exists():
            return
        for index, handle in enumerate(PRODUCTS):
            price = Decimal(15 + 5 * index)
            services.product_create(
                handle=handle,
                title=handle.replace("-", " ").title(),
                description=f"The demo {handle.replace('-', ' ')}.",
                variants=[{"sku": f"{handle.upper()}-{size}", "price": price} for size in SIZES],
                origin="demo",
            )
            for size in SIZES:
                services.stock_adjust(
                    sku=f"{handle.upper()}-{size}", delta=10 + index, reason="receipt", reference=f"demo-{handle}-{size}"
                )

    def _configure_store(self, sandbox_url: str, channel: Channel) -> None:
        try:
            requests.post(
                f"{sandbox_url}/_sandbox/webhook/{channel.name}/config",
                json={"secret": channel.credentials["secret"]},
                timeout=5,
            ).raise_for_status()
        except requests.RequestException as exc:
            raise CommandError(f"sandbox at {sandbox_url} did not take the store config: {exc}") from exc
