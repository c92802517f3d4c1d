import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..actors import Actor
from ..errors import Conflict
from ..models import ApiKey, App
from ..models.webhooks import url_without_query
from . import audit
from .endpoints import create_endpoint
from .sql import execute_prepared

API_KEY_PREFIX_LENGTH = 11  # "ck_" and 8 random characters: shown in the admin and the history
LAST_USED_RESOLUTION = timedelta(seconds=60)  # at most one write per key and minute


def _hash_key(plain_key: str) -> str:
    return hashlib.sha256(plain_key.encode()).hexdigest()


@dataclass(frozen=True)
class NewApp:
    app: App
    api_key: str
    webhook_secret: str | None


def create_app(*, actor: Actor, app_id: str, name: str = "", webhook_url: str | None = None) -> NewApp:
    with transaction.atomic():
        try:
            with transaction.atomic():
                app = App.objects.create(app_id=app_id, name=name or app_id)
        except IntegrityError:
            raise Conflict(f"App {app_id!r} already exists", code="app_exists") from None
        _, plain_key = issue_api_key(actor=actor, app=app, label="created with the app")
        endpoint = create_endpoint(actor=actor, app=app, url=webhook_url) if webhook_url else None
        audit.record(
            actor=actor,
            action="app.create",
            app_id=app_id,
            request={"webhook_url": webhook_url and url_without_query(webhook_url)},
        )
    return NewApp(app=app, api_key=plain_key, webhook_secret=endpoint.secret if endpoint else None)


def set_app_enabled(*, actor: Actor, app: App, enabled: bool) -> bool:
    """Enable or disable an app (a disabled app's API calls are 403); returns whether it changed."""
    with transaction.atomic():
        changed = App.objects.filter(pk=app.pk).exclude(enabled=enabled).update(enabled=enabled)
        audit.record(
            actor=actor,
            action="app.enable" if enabled else "app.disable",
            app_id=app.app_id,
            outcome="ok" if changed else "unchanged",
        )
    app.enabled = enabled
    return bool(changed)


def issue_api_key(*, actor: Actor, app: App, label: str = "") -> tuple[ApiKey, str]:
    """Mint a key (256 bits of entropy); the plain key is returned once and never stored."""
    with transaction.atomic():
        for _ in range(5):  # the visible prefix is unique; a collision (48 random bits) mints again
            plain_key = "ck_" + secrets.token_urlsafe(32)
            try:
                with transaction.atomic():
                    api_key = ApiKey.objects.create(
                        app=app, prefix=plain_key[:API_KEY_PREFIX_LENGTH], key_hash=_hash_key(plain_key), label=label
                    )
                break
            except IntegrityError:
                continue
        audit.record(actor=actor, action="api_key.issue", app_id=app.app_id, detail={"prefix": api_key.prefix})
    return api_key, plain_key


def revoke_api_key(*, actor: Actor, api_key: ApiKey) -> bool:
    """Revoke the key at once; returns False when it already was."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit.record(
            actor=actor,
            action="api_key.revoke",
            app_id=api_key.app.app_id,
            outcome="ok" if updated else "already_revoked",
            detail={"prefix": api_key.prefix},
        )
    return bool(updated)


_KEY_FIELDS, _APP_FIELDS = ApiKey._meta.concrete_fields, App._meta.concrete_fields
# Every request of every app runs this: a prepared statement, not the ORM, whose building of
# the query cost more than the query.
_COLUMNS = [f"k.{field.column}" for field in _KEY_FIELDS] + [f"a.{field.column}" for field in _APP_FIELDS]
FIND_KEY_SQL = f"""
SELECT {", ".join(_COLUMNS)}
FROM {ApiKey._meta.db_table} AS k JOIN {App._meta.db_table} AS a ON a.id = k.app_id
WHERE a.app_id = %(app_id)s AND k.prefix = %(prefix)s AND k.revoked_at IS NULL
"""


def find_api_key(*, app_id: str, plain_key: str) -> ApiKey | None:
    """The active key of that app matching `plain_key`, compared in constant time."""
    rows = execute_prepared(FIND_KEY_SQL, {"app_id": app_id, "prefix": plain_key[:API_KEY_PREFIX_LENGTH]})
    api_key = None
    if rows:  # the prefix is unique
        row = rows[0]
        api_key = ApiKey.from_db("default", [field.attname for field in _KEY_FIELDS], row[: len(_KEY_FIELDS)])
        api_key.app = App.from_db("default", [field.attname for field in _APP_FIELDS], row[len(_KEY_FIELDS) :])
    # Compare even when nothing was found, so timing does not tell which part was wrong.
    expected = api_key.key_hash if api_key else "0" * 64
    if not hmac.compare_digest(expected, _hash_key(plain_key)) or api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
