import json
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conferences.actors import Actor
from conferences.models import App, WebhookEndpoint
from conferences.services.endpoints import create_endpoint, delete_endpoint
from conferences.services.tenants import create_app, find_api_key, issue_api_key

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.json"


class Command(BaseCommand):
    help = "Create (or reuse) the demo app, its API key and a staff superuser; print them as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--inbox-url", help="point the demo app's webhook endpoint at this development inbox")

    def handle(self, *args, **options):
        saved = json.loads(CREDENTIALS_FILE.read_text()) if CREDENTIALS_FILE.exists() else {}
        actor = Actor.system("bootstrap_demo")
        app_id = "demo"
        api_key = saved.get("api_key")
        if not App.objects.filter(app_id=app_id).exists():
            api_key = create_app(actor=actor, app_id=app_id, name="Demo app").api_key
        elif not api_key or find_api_key(app_id=app_id, plain_key=api_key) is None:
            # Keys are stored hashed; a lost demo key is replaced by a new one.
            api_key = issue_api_key(actor=actor, app=App.objects.get(app_id=app_id), label="demo")[1]
        if options["inbox_url"]:
            point_at_inbox(actor=actor, app=App.objects.get(app_id=app_id), inbox_url=options["inbox_url"])

        User = get_user_model()
        password = saved.get("admin_password") or secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        if not user.check_password(password):
            user.set_password(password)
            user.save()

        credentials = {"app_id": app_id, "api_key": api_key, "admin_user": "admin", "admin_password": password}
        CREDENTIALS_FILE.write_text(json.dumps(credentials))
        CREDENTIALS_FILE.chmod(0o600)
        self.stdout.write(json.dumps(credentials))


def point_at_inbox(*, actor: Actor, app: App, inbox_url: str) -> None:
    """One endpoint of the app at `inbox_url`. Those at the inbox of an earlier run on another
    port are deleted, so runs on many ports never reach the app's endpoint limit."""
    inbox_path = urlsplit(inbox_url).path
    endpoints = list(WebhookEndpoint.objects.current().filter(app=app))
    for endpoint in endpoints:
        url = urlsplit(endpoint.url)
        if url.hostname == "127.0.0.1" and url.path == inbox_path and endpoint.url != inbox_url:
            delete_endpoint(actor=actor, endpoint=endpoint)
    if not any(endpoint.url == inbox_url for endpoint in endpoints):
        create_endpoint(actor=actor, app=app, url=inbox_url, description="the development inbox of make run")
