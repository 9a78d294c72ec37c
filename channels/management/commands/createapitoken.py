from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from syncsvc.permissions import ROLES


class Command(BaseCommand):
    help = "Create the user if needed, give it a role, and print its API token alone on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, default="pim")

    def handle(self, username, role, **options):
        if not username.strip():
            raise CommandError("username must not be empty")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
