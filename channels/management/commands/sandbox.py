"""`python manage.py sandbox`: serve the channel emulators until SIGINT or SIGTERM."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from channels.sandbox.server import DEFAULT_HOST, DEFAULT_PORT, run


class Command(BaseCommand):
    help = "Serve emulated channel stores (webhook, ...) and their control API over HTTP."

    # The sandbox uses neither the database nor URLs: it must start while those are broken.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=DEFAULT_HOST)
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")

    def handle(self, *args: Any, **options: Any) -> None:
        def announce(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()  # launchers wait for this line on a pipe

        run(options["host"], options["port"], announce=announce)
