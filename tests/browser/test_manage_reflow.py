"""The campaign pages at 320 CSS px (WCAG 1.4.10 Reflow: 1280 px at 400 % zoom): the campaign
page, its export page and the new-campaign form never scroll sideways. The campaign page's
figures (a label and its value side by side) let long values wrap, and the forms' groups of
checkboxes and radio buttons (fieldsets, whose default minimum width is their widest option)
shrink to the screen like the other fields.

Fails on any console error or Content-Security-Policy violation of the pages.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, watch_errors
from tests.browser.pages import WIDEST
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NARROW = {"width": 320, "height": 640}
# Run names of one unbroken word each, as pipelines name them.
RUN_NAMES = ["stable-diffusion-xl-base-1.0-finetuned-aesthetic-v2",
             "stable-diffusion-xl-base-1.0-finetuned-aesthetic-v3"]


@pytest.fixture
def narrow(browser, live_server):
    """A 320 px wide screen (a desktop browser at 400 %), and the page's console errors."""
    context = browser.new_context(viewport=NARROW, base_url=live_server.url)
    context.set_default_timeout(15_000)
    errors = watch_errors(context)
    page = context.new_page()
    yield page, errors
    context.close()


def test_the_campaign_pages_fit_320_px_without_sideways_scrolling(narrow):
    page, errors = narrow
    world = build_campaign(runs=2, prompts=2, annotators=2, run_names=RUN_NAMES,
                           name="A campaign with a long name")
    campaign = world.campaign
    wide: list = []

    def fits(url: str) -> None:
        assert page.goto(url).ok, url
        scroll, client = page.evaluate("() => [document.scrollingElement.scrollWidth, "
                                       "document.scrollingElement.clientWidth]")
        if scroll > client:
            wide.append((url, scroll, client, page.evaluate(WIDEST, NARROW["width"])))

    login(page, world.scientist.username, f"/campaigns/{campaign.pk}/manage/")
    fits(f"/campaigns/{campaign.pk}/manage/")
    page.screenshot(path="/tmp/evalhub-manage-320.png", full_page=True)
    # The figures are still there, each value beside or under its label.
    assert RUN_NAMES[0] in page.inner_text("#campaign-app .figures >> nth=1")
    fits(f"/campaigns/{campaign.pk}/export/")
    fits(f"/projects/{campaign.project_id}/campaigns/new/")
    assert page.locator("fieldset[data-field-name=runs] legend").inner_text() == "Runs"
    assert wide == [], "\n".join(map(str, wide))
    assert errors == [] and page.evaluate("window.__violations") == []
