"""Demo data for `make run`: an admin, a catalog, three webhook channels on the sandbox."""
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
PRODUCTS = ["classic-tee", "hoodie", "cap", "socks", "jacket", "beanie", "scarf", "polo", "shorts", "sweater"]
SIZES = ["S", "M", "L"]


class Command(BaseCommand):
    help = "Create (idempotently) the demo admin user, catalog and sandbox channels, and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:8765")

    def handle(self, sandbox_url, **options):
        sandbox_url = sandbox_url.rstrip("/")
        password, token = self._admin()
        with transaction.atomic():
            channels = [self._channel(name, safety, sandbox_url) for name, safety in DEMO_CHANNELS]
            self._catalog()
        for channel in channels:
            self._configure_store(sandbox_url, channel)
            # The sandbox keeps its stores in memory: fill them again on every start.
            channel_owe_all(channel=channel)
        self.stdout.write(
            f"demo admin: username admin, password {password}  (http://127.0.0.1:8000/admin/)\n"
            f"demo API token (all roles): {token}\n"
            f"demo channels: {', '.join(c.name for c in channels)} -> {sandbox_url}/webhook/<name>"
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
