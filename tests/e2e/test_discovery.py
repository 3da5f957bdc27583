"""The footer's links to the stats exports and discovery documents, in real Chromium."""

import json
import xml.etree.ElementTree as ET

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width, height, name", [(1280, 800, "desktop"), (390, 844, "phone")])
def test_footer_links_reach_the_documents(live_daphne, page: Page, width, height, name):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_daphne.url}/stats/")
    footer = page.locator("footer.site-footer")
    for label in ("statistics exports", "project config", "XML", "JSON"):
        expect(footer.get_by_role("link", name=label, exact=True)).to_be_visible()
    footer.scroll_into_view_if_needed()
    page.screenshot(path=f"/tmp/export-footer-{name}.png", full_page=True)
    with page.expect_response(lambda r: r.url.endswith("/server_status.json")) as info:
        footer.get_by_role("link", name="JSON", exact=True).click()
    assert json.loads(info.value.body())["results_ready_to_send"] == 0
    page.goto(f"{live_daphne.url}/stats/")
    with page.expect_response(lambda r: r.url.endswith("/get_project_config.php")) as info:
        page.locator("footer.site-footer").get_by_role("link", name="project config").click()
    assert ET.fromstring(info.value.body()).findtext("platforms/platform/platform_name") == \
        "browser"
