"""The rating page on a phone (390 x 844 CSS px, touch): nothing scrolls sideways, both images
are on screen, the answer buttons are visible and a tap on one stores the vote.

Fails on any console error or Content-Security-Policy violation of the page.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.browser.pages import WATCH_VIOLATIONS, dismiss_instructions, shown_lease, until
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    """A phone: its size, touch, a mobile viewport; and the page's console errors."""
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, has_touch=True,
                                  is_mobile=True, device_scale_factor=3)
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error"
            and not message.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, errors
    page.wait_for_timeout(300)  # the last prefetch, before the test database is flushed
    context.close()


def test_a_phone_rates_without_sideways_scrolling(phone):
    page, errors = phone
    world = build_world(prompts=2, sizes=((768, 768), (1024, 1024)),
                        instructions="Pick the image that follows the prompt better.")
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    dismiss_instructions(page)
    page.screenshot(path="/tmp/rate-phone.png")

    # Nothing scrolls sideways; the whole page is one screen.
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("() => document.scrollingElement.scrollHeight") <= PHONE["height"]
    for side in ("left", "right"):  # both images on screen, whole and of a usable size
        box = page.locator(f".pane-{side} .pane-view").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], side
        assert box["width"] >= 150 and box["height"] >= 150, box
    for answer in ("left", "right", "tie", "both_bad"):
        button = page.locator(f".answer-btn[data-answer={answer}]")
        assert button.is_visible()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"], answer
        assert box["height"] >= 40  # a finger's size
    assert page.locator("#rate-prompt").bounding_box()["height"] > 0

    page.tap(".answer-btn[data-answer=right]")
    shown_lease(page, other_than=lease)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert live_judgments(world.campaign).get(lease_id=lease).outcome == expected_outcome(
        lease, "right")
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert errors == [] and page.evaluate("window.__violations") == []

