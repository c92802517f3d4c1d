"""Who may do what in the console (SPEC 10): support views everything and runs the call and
webhook actions; only superusers manage apps, keys and secrets, or change what a periodic task
runs; nobody edits history or deletes endpoints and apps."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from conferences.actors import Actor
from conferences.models import ApiKey, App, AuditEntry, WebhookEndpoint
from conferences.services.endpoints import create_endpoint
from conferences.services.tenants import find_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(tenant):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        return create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")


def action(client, model, name, *objects):
    return client.post(
        f"/admin/conferences/{model}/", {"action": name, "_selected_action": [o.pk for o in objects]}, follow=True
    )


def test_the_support_group_holds_views_and_the_console_actions_only(support_user):
    codenames = set(support_user.get_all_permissions())
    assert {
        "conferences.kick_member",
        "conferences.mute_member",
        "conferences.hang_up_session",
        "conferences.stop_playback",
        "conferences.destroy_room",
        "conferences.redeliver_delivery",
        "conferences.recover_endpoint",
        "conferences.disable_endpoint",
        "django_celery_beat.change_periodictask",
    } <= codenames
    assert "conferences.view_auditentry" in codenames and "conferences.view_app" in codenames
    assert not {c for c in codenames if c.split(".")[1].startswith(("add_", "delete_"))}
    assert {c for c in codenames if c.split(".")[1].startswith("change_")} == {"django_celery_beat.change_periodictask"}


def test_support_sees_every_page_but_no_secret_or_key_hash(support, tenant, endpoint):
    index = support.get("/admin/").content.decode()
    assert "Conference control plane" in index and "Django administration" not in index
    api_key = ApiKey.objects.get(app=tenant.app)
    for url in [
        f"/admin/conferences/webhookendpoint/{endpoint.pk}/change/",
        "/admin/conferences/webhookendpoint/",
        f"/admin/conferences/apikey/{api_key.pk}/change/",
        f"/admin/conferences/app/{tenant.app.pk}/change/",
        "/admin/conferences/auditentry/",
    ]:
        page = support.get(url)
        assert page.status_code == 200, url
        body = page.content.decode()
        assert endpoint.secret not in body and api_key.key_hash not in body and tenant.api_key not in body


def test_nobody_edits_history_superusers_included(support, superuser_client, tenant):
    entry = AuditEntry.objects.filter(app_id=tenant.app.app_id).first()
    for client in (support, superuser_client):
        assert client.get("/admin/conferences/auditentry/add/").status_code == 403
        assert client.get(f"/admin/conferences/auditentry/{entry.pk}/delete/").status_code == 403
        changed = client.post(f"/admin/conferences/auditentry/{entry.pk}/change/", {"action": "forged"})
        assert changed.status_code == 403
        assert "Save" not in client.get(f"/admin/conferences/auditentry/{entry.pk}/change/").content.decode()
    assert AuditEntry.objects.get(pk=entry.pk).action == entry.action


def test_nobody_deletes_an_endpoint_or_an_app(support, superuser_client, tenant, endpoint):
    for client in (support, superuser_client):
        assert client.get(f"/admin/conferences/webhookendpoint/{endpoint.pk}/delete/").status_code == 403
        assert client.get(f"/admin/conferences/app/{tenant.app.pk}/delete/").status_code == 403
        action(client, "webhookendpoint", "delete_selected", endpoint)
        action(client, "app", "delete_selected", tenant.app)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists() and App.objects.filter(pk=tenant.app.pk).exists()


def test_support_cannot_manage_apps_keys_or_secrets(support, tenant, endpoint):
    assert support.get("/admin/conferences/app/add/").status_code == 403
    keys_before = ApiKey.objects.filter(app=tenant.app).count()
    action(support, "app", "issue_api_key", tenant.app)
    action(support, "app", "disable", tenant.app)
    action(support, "apikey", "revoke", *ApiKey.objects.filter(app=tenant.app))
    action(support, "webhookendpoint", "rotate_secret", endpoint)
    assert ApiKey.objects.filter(app=tenant.app).count() == keys_before
    assert not ApiKey.objects.filter(app=tenant.app, revoked_at__isnull=False).exists()
    assert App.objects.get(pk=tenant.app.pk).enabled is True
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == endpoint.secret


def test_a_view_only_user_runs_no_action(client, tenant, endpoint):
    viewer = get_user_model().objects.create_user("viewer", password="viewer-pw-1", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    page = client.get("/admin/conferences/webhookendpoint/").content.decode()
    assert 'value="disable"' not in page
    action(client, "webhookendpoint", "disable", endpoint)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is True


def test_superusers_create_apps_and_keys_shown_once(superuser_client, tenant, endpoint, client_for):
    created = superuser_client.post(
        "/admin/conferences/app/add/", {"app_id": "acme", "name": "Acme", "webhook_url": ""}, follow=True
    )
    shown = [str(m) for m in created.context["messages"] if "API key" in str(m)]
    assert len(shown) == 1
    plain_key = shown[0].split("API key ")[1].split(".")[0]
    assert find_api_key(app_id="acme", plain_key=plain_key) is not None
    assert plain_key not in superuser_client.get(created.redirect_chain[-1][0]).content.decode()
    entry = AuditEntry.objects.get(action="app.create", app_id="acme")
    assert (entry.actor_kind, entry.actor) == ("staff", "root-admin")

    refused = superuser_client.post(
        "/admin/conferences/app/add/", {"app_id": "Bad Id", "name": "x", "webhook_url": "http://127.0.0.1/hook"}
    )
    assert refused.status_code == 200 and not App.objects.filter(name="x").exists()
    assert "errorlist" in refused.content.decode()

    issued = action(superuser_client, "app", "issue_api_key", tenant.app)
    new_key = next(str(m) for m in issued.context["messages"]).split("new API key ")[1].split(" ")[0]
    assert next(str(m) for m in issued.context["messages"]).startswith(f"{tenant.app.app_id}: new API key ck_")
    assert find_api_key(app_id=tenant.app.app_id, plain_key=new_key) is not None
    action(superuser_client, "apikey", "revoke", ApiKey.objects.get(prefix=new_key[:11]))
    assert find_api_key(app_id=tenant.app.app_id, plain_key=new_key) is None

    rotated = action(superuser_client, "webhookendpoint", "rotate_secret", endpoint)
    secret = next(str(m) for m in rotated.context["messages"]).split("new secret ")[1].split(" ")[0]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret != endpoint.secret

    action(superuser_client, "app", "disable", tenant.app)
    assert client_for(tenant).get("/api/v1/conferences").status_code == 403


def periodic_task_form(periodic: PeriodicTask, **changes) -> dict:
    form = {
        "name": periodic.name,
        "regtask": "",
        "task": periodic.task,
        "enabled": "on" if periodic.enabled else "",
        "interval": periodic.interval_id or "",
        "args": periodic.args,
        "kwargs": periodic.kwargs,
        "queue": "",
        "exchange": "",
        "routing_key": "",
        "headers": "{}",
        "priority": "",
        "expire_seconds": "",
        "description": "",
        "start_time_0": "",
        "start_time_1": "",
        "one_off": "",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not False}


def test_support_tunes_a_periodic_task_but_not_what_it_runs(support, superuser_client):
    task = PeriodicTask.objects.get(name="Orphan sessions")
    slower, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    url = f"/admin/django_celery_beat/periodictask/{task.pk}/change/"
    response = support.post(
        url,
        periodic_task_form(task, enabled="", interval=slower.pk, task="conferences.tasks.prune_history", args='["x"]'),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tuned = PeriodicTask.objects.get(pk=task.pk)
    assert (tuned.enabled, tuned.interval_id) == (False, slower.pk)
    assert (tuned.task, tuned.args) == (task.task, task.args)
    assert support.get("/admin/django_celery_beat/periodictask/add/").status_code == 403
    assert support.get(f"/admin/django_celery_beat/periodictask/{task.pk}/delete/").status_code == 403
    assert "run_tasks" not in support.get("/admin/django_celery_beat/periodictask/").content.decode()

    response = superuser_client.post(url, periodic_task_form(tuned, args='["x"]', enabled="on"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert PeriodicTask.objects.get(pk=task.pk).args == '["x"]'


def test_endpoint_urls_are_shown_without_their_query(superuser_client):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        created = superuser_client.post(
            "/admin/conferences/app/add/",
            {"app_id": "tokened", "name": "T", "webhook_url": "http://127.0.0.1:9/hook?token=s3cr3t"},
            follow=True,
        )
    assert created.status_code == 200
    endpoint = WebhookEndpoint.objects.get(app__app_id="tokened")
    for url in (
        "/admin/conferences/webhookendpoint/",
        f"/admin/conferences/webhookendpoint/{endpoint.pk}/change/",
        f"/admin/conferences/app/{endpoint.app.pk}/change/",
    ):
        page = superuser_client.get(url).content.decode()
        assert "http://127.0.0.1:9/hook" in page and "s3cr3t" not in page, url
    assert "s3cr3t" not in str(list(AuditEntry.objects.values_list("request", flat=True)))


def test_superusers_enable_an_app_again(superuser_client, tenant, client_for):
    action(superuser_client, "app", "disable", tenant.app)
    enabled = action(superuser_client, "app", "enable", tenant.app)
    assert [str(m) for m in enabled.context["messages"]] == [f"{tenant.app.app_id}: enabled."]
    assert client_for(tenant).get("/api/v1/conferences").status_code == 200
    assert list(AuditEntry.objects.filter(action__startswith="app.e").values_list("action", "actor")) == [
        ("app.enable", "root-admin")
    ]
