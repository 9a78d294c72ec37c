from django.core.management.base import BaseCommand, CommandError

from syncsvc.permissions import ROLES, api_token


class Command(BaseCommand):
    help = "Create the user if needed, give it a role, and print its API token alone on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, default="pim")

    def handle(self, username, role, **options):
        if not username.strip():
            raise CommandError("username must not be empty")
        self.stdout.write(api_token(username, role))
