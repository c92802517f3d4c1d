"""A support engineer in a real browser: logs in, finds a room by a member's session_uuid,
kicks the member, sees the kick on the room's timeline; the app's receiver gets the signed
conference.member.left webhook (delivered by a real worker)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from standardwebhooks.webhooks import Webhook

from conferences.actors import Actor
from conferences.services import members
from conferences.services.rooms import create_room
from conferences.services.sessions import create_session
from conferences.services.tenants import create_app
from tests.console.conftest import support_group

pytestmark = pytest.mark.django_db(transaction=True)
ENGINE = Actor.engine("tests")


@pytest.fixture
def call_in_a_room(celery_worker, receiver):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        created = create_app(actor=Actor.system("tests"), app_id="browser-app", webhook_url=receiver.url)
    room = create_room(actor=Actor.app("browser-app"), app=created.app, name="weekly")
    session = create_session(actor=ENGINE, app_id="browser-app", caller_id="+15550003", session_uuid=None)
    api = APIClient()
    api.credentials(HTTP_X_APP_ID="browser-app", HTTP_X_API_KEY=created.api_key)
    joining = api.post(
        f"/api/v1/sessions/{session.session_uuid}/commands/conference/join", {"room_id": room.room_id}, format="json"
    )
    assert joining.status_code == 202, joining.content
    assert members.confirm_join(actor=ENGINE, session_uuid=session.session_uuid, room_id=room.room_id)
    receiver.wait_for(lambda got: any(r.json["event"] == "conference.member.joined" for r in got))
    return created.webhook_secret, room, session


def test_support_kicks_a_member_and_sees_it_on_the_timeline(live_server, browser, receiver, call_in_a_room):
    secret, room, session = call_in_a_room
    user = get_user_model().objects.create_user("sam-support", password="support-pw-1", is_staff=True)
    user.groups.add(support_group())
    wait = WebDriverWait(browser, 20)

    browser.get(f"{live_server.url}/admin/")
    browser.find_element(By.NAME, "username").send_keys("sam-support")
    browser.find_element(By.NAME, "password").send_keys("support-pw-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(lambda page: "Support console" in page.page_source)

    browser.find_element(By.LINK_TEXT, "Rooms").click()
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys(session.session_uuid)
    search.submit()
    browser.find_element(By.LINK_TEXT, room.room_id).click()
    wait.until(lambda page: session.session_uuid in page.page_source)  # the members inline

    browser.find_element(By.PARTIAL_LINK_TEXT, "members (kick").click()
    browser.find_element(By.CSS_SELECTOR, "#result_list input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("kick")
    browser.find_element(By.NAME, "index").click()
    wait.until(lambda page: f"kicked from {room.room_id}" in page.find_element(By.CSS_SELECTOR, "ul.messagelist").text)

    browser.get(f"{live_server.url}/admin/conferences/room/{room.pk}/change/")
    browser.find_element(By.CSS_SELECTOR, '.object-tools a[href$="/timeline/"]').click()
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")]
    assert any("member.end" in row and "staff: sam-support" in row for row in rows), rows
    assert any("conference.member.left" in row for row in rows), rows

    got = receiver.wait_for(lambda got: any(r.json["event"] == "conference.member.left" for r in got))
    left = next(r for r in got if r.json["event"] == "conference.member.left")
    assert Webhook(secret).verify(left.body, left.headers) == {
        "event": "conference.member.left",
        "room_id": room.room_id,
        "session_uuid": session.session_uuid,
        "caller_id": "+15550003",
        "reason": "removed",
    }
