"""/api/docs opened in a real browser lists the API's operations, and fetches nothing from
outside this service (the page's policy blocks what the docs bundle would fetch)."""

import pytest
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.django_db(transaction=True)

OPERATIONS = [
    "conferences_create",
    "sessions_conference_join",
    "webhooks_endpoints_create",
    "webhooks_deliveries_redeliver",
]
RECORD_BLOCKED = (
    "window.blocked = []; document.addEventListener('securitypolicyviolation', "
    "event => window.blocked.push(event.blockedURI));"
)


def test_the_docs_page_lists_the_operations_and_fetches_nothing_from_outside(live_server, browser):
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_BLOCKED})
    browser.get(f"{live_server.url}/api/docs")
    WebDriverWait(browser, 30).until(lambda page: all(name in page.page_source for name in OPERATIONS))
    assert "Conference control plane" in browser.find_element("tag name", "body").text
    assert "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret" in browser.page_source
    requested = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside = {url for url in requested if not url.startswith(live_server.url)}
    assert outside <= set(browser.execute_script("return window.blocked")), outside
