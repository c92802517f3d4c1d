"""The admin's webhook pages are staff-only, and their actions go through the services."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from conferences.actors import Actor
from conferences.models import AuditEntry, Delivery, WebhookEndpoint
from conferences.services.endpoints import create_endpoint
from conferences.services.rooms import create_room

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("support-lead", password="pw-for-tests")
    client.force_login(user)
    return client


@pytest.fixture
def failed_delivery(tenant):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        endpoint = create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
    create_room(actor=Actor.system("tests"), app=tenant.app, name="admin")
    Delivery.objects.update(status="failed")
    return Delivery.objects.get(endpoint=endpoint)


def test_admin_is_staff_only(client, failed_delivery):
    response = client.get("/admin/conferences/delivery/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_failed_deliveries_are_listed_and_redelivered_by_staff(staff_client, failed_delivery):
    page = staff_client.get("/admin/conferences/delivery/?status__exact=failed")
    assert page.status_code == 200 and f">{failed_delivery.pk}<" in page.content.decode()
    staff_client.post("/admin/conferences/delivery/", {"action": "redeliver", "_selected_action": [failed_delivery.pk]})
    assert Delivery.objects.get(pk=failed_delivery.pk).status == "pending"
    entry = AuditEntry.objects.get(action="webhook_delivery.redeliver")
    assert (entry.actor_kind, entry.actor) == ("staff", "support-lead")


def test_staff_disable_an_endpoint(staff_client, failed_delivery):
    endpoint = failed_delivery.endpoint
    staff_client.post("/admin/conferences/webhookendpoint/", {"action": "disable", "_selected_action": [endpoint.pk]})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is False
    page = staff_client.get(f"/admin/conferences/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.secret not in page.content.decode()


def test_an_endpoint_the_app_deleted_stays_in_the_admin_with_its_deliveries(staff_client, failed_delivery):
    from conferences.services.endpoints import delete_endpoint

    endpoint = failed_delivery.endpoint
    delete_endpoint(actor=Actor.app(endpoint.app.app_id), endpoint=endpoint)
    listed = staff_client.get("/admin/conferences/webhookendpoint/?deleted_at__isempty=0").content.decode()
    assert endpoint.endpoint_id in listed
    assert f">{failed_delivery.pk}<" in staff_client.get("/admin/conferences/delivery/").content.decode()
    page = staff_client.get(f"/admin/conferences/webhookendpoint/{endpoint.pk}/delete/")
    assert page.status_code == 403  # no hard delete: the history would go with it
    staff_client.post("/admin/conferences/webhookendpoint/", {"action": "enable", "_selected_action": [endpoint.pk]})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is False  # a deleted endpoint stays off
