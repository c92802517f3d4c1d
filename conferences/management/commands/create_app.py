import json

from django.core.management.base import BaseCommand, CommandError

from conferences.actors import Actor
from conferences.errors import ServiceError
from conferences.ids import APP_ID_RE
from conferences.services.tenants import create_app


class Command(BaseCommand):
    help = 'Create an app with one API key; prints {"app_id", "api_key", "webhook_secret"}.'

    def add_arguments(self, parser):
        parser.add_argument("app_id")
        parser.add_argument("--name", default="")
        parser.add_argument("--webhook-url", default=None)

    def handle(self, *args, app_id, name, webhook_url, **options):
        if not APP_ID_RE.fullmatch(app_id):
            raise CommandError(f"Invalid app_id {app_id!r}: must match ^[a-z0-9][a-z0-9_-]{{0,63}}$")
        try:
            created = create_app(actor=Actor.system("create_app"), app_id=app_id, name=name, webhook_url=webhook_url)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            json.dumps(
                {"app_id": created.app.app_id, "api_key": created.api_key, "webhook_secret": created.webhook_secret}
            )
        )
