from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.tokens import create_token


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME, to use as MLFLOW_TRACKING_TOKEN. "
        "The token is shown once, alone on the last line; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="default", help="A label to recognise the token.")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        token, raw = create_token(user=user, name=name)
        self.stdout.write(f"Created token {token.name!r} ({token.prefix}…) for {username}:")
        self.stdout.write(raw)
