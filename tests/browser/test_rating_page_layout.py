"""The rating page's headers at the widths annotators use, with the counts of a large campaign
(thousands of judgments still needed) and the badges the page shows when votes wait:

- laptop widths (1024, 1280 px): the prompt keeps a readable width beside the counter, the
  "1 vote waiting to send (offline)" badge and the "Your session has ended" banner; nothing
  leaves the screen;
- a phone (390 px): the counter is one line, with its progress bar beside it; best-of-K "Pick"
  buttons keep a finger's size beside the report link;
- the site's top bar on a phone: "EvalHub" apart from the links, "Log out" on one line.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from evalhub.campaigns.models import TaskKind
from tests.browser.conftest import login
from tests.browser.pages import shown_lease, until
from tests.browser.world import build_world, live_judgments, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
MORE_NEEDED = 2910  # added to the campaign's count: as a large campaign's answers say
MORE_VOTES = 1200  # added to the annotator's votes: one who has rated for weeks

BOXES = """(selectors) => Object.fromEntries(selectors.map((selector) => {
  const el = document.querySelector(selector);
  const box = el.getBoundingClientRect();
  return [selector, {x: box.x, y: box.y, width: box.width, height: box.height,
                     right: box.right, bottom: box.bottom,
                     fontSize: parseFloat(getComputedStyle(el).fontSize),
                     clipped: el.scrollWidth > el.clientWidth + 1}];
}))"""


class Network:
    offline = False  # the test's routes answer nothing (as the browser, offline, would not)


def as_a_large_campaign(page, network=Network) -> None:
    """Every rating API answer that carries progress says what a large campaign's would."""

    def answer(route):
        if network.offline:
            route.abort("internetdisconnected")
            return
        response = route.fetch()
        try:
            body = response.json()
        except ValueError:
            route.fulfill(response=response)
            return
        if isinstance(body, dict) and isinstance(body.get("progress"), dict):
            body["progress"]["remaining"] += MORE_NEEDED
            body["progress"]["my_votes"] += MORE_VOTES
        route.fulfill(response=response, json=body)

    page.route("**/api/v1/rate/**", answer)


def _open(context, world, viewport=None, network=Network):
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    as_a_large_campaign(page, network)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.wait_for_function("() => /by you · \\S/.test("  # the campaign's count is in
                           "document.querySelector('#rate-count').textContent)")
    return page, lease


def _assert_prompt_readable(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 720})
    page.wait_for_timeout(100)  # a layout
    boxes = page.evaluate(BOXES, [".rate-head", "#rate-prompt", ".rate-meta"])
    head, prompt, meta = boxes[".rate-head"], boxes["#rate-prompt"], boxes[".rate-meta"]
    assert prompt["width"] >= 300 and prompt["height"] > 0, (width, boxes)
    assert not prompt["clipped"], (width, boxes)
    assert prompt["right"] <= meta["x"], (width, boxes)  # the counter beside it, not over it
    assert head["right"] <= width and meta["right"] <= width, (width, boxes)
    assert page.is_visible("#rate-prompt")


def test_the_prompt_keeps_its_width_beside_an_offline_badge(context):
    world = build_world(prompts=4, sizes=((512, 512), (512, 512)))
    network = Network()
    page, _ = _open(context, world, {"width": 1280, "height": 720}, network)
    context.set_offline(True)
    network.offline = True
    page.keyboard.press("1")
    page.wait_for_function("() => /waiting to send \\(offline\\)/.test("
                           "document.querySelector('#rate-pending').textContent)")
    for width in (1024, 1280):
        _assert_prompt_readable(page, width)
        badge = page.locator("#rate-pending").bounding_box()
        assert badge["x"] >= 0 and badge["x"] + badge["width"] <= width
    assert page.text_content("#rate-count") == "1,201 votes by you · 2,913 left in the campaign"
    network.offline = False
    context.set_offline(False)


def test_the_prompt_keeps_its_width_beside_the_session_ended_banner(context):
    world = build_world(prompts=4, sizes=((512, 512), (512, 512)))
    page, _ = _open(context, world, {"width": 1280, "height": 720})
    # The session ended: the vote waits in the outbox and the page asks to sign in again.
    page.route("**/votes/", lambda route: route.fulfill(
        status=403, json={"detail": "Authentication credentials were not provided."}))
    page.keyboard.press("1")
    page.wait_for_selector("#rate-signed-out", state="visible")
    for width in (1024, 1280):
        _assert_prompt_readable(page, width)
        page.screenshot(path=f"/tmp/rate-signed-out-{width}.png")  # to look at the layout
        banner = page.locator("#rate-signed-out").bounding_box()
        assert banner["x"] >= 0 and banner["x"] + banner["width"] <= width


def test_a_phone_shows_the_counter_on_one_line_beside_its_bar(context):
    world = build_world(prompts=4, sizes=((512, 512), (512, 512)))
    page, _ = _open(context, world, PHONE)
    page.screenshot(path="/tmp/rate-phone-counter.png")  # to look at the layout
    boxes = page.evaluate(BOXES, ["#rate-count", "#rate-bar"])
    count, bar = boxes["#rate-count"], boxes["#rate-bar"]
    assert count["height"] < 2 * count["fontSize"], boxes  # one line (two would be 3 em)
    assert count["y"] <= bar["y"] + bar["height"] / 2 <= count["bottom"], boxes  # beside it
    assert bar["right"] <= PHONE["width"] and bar["width"] > 0, boxes
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert page.text_content("#rate-count") == "1,200 votes by you · 2,914 left in the campaign"


def test_a_phone_gives_best_of_k_pick_buttons_a_fingers_size(context):
    world = build_campaign(
        runs=4, prompts=2, annotators=1, name="Best of four",
        image_bytes=lambda p, r: picture(p * 4 + r, (512, 512)),
        task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=1)
    page = context.new_page()
    page.set_viewport_size(PHONE)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    page.screenshot(path="/tmp/rate-phone-best-of-4.png")  # to look at the layout
    panes = page.locator(".grid-pane:not([hidden])")
    assert panes.count() == 4
    for index in range(4):
        pick = panes.nth(index).locator(".grid-pick").bounding_box()
        report = panes.nth(index).locator(".report-btn").bounding_box()
        assert pick["width"] >= 44 and pick["height"] >= 44, (index, pick)
        # Side by side, not on top of each other ("Pick" spilled over the link).
        assert pick["x"] + pick["width"] <= report["x"], (index, pick, report)
        assert report["x"] + report["width"] <= PHONE["width"], (index, report)
    assert not page.evaluate("() => [...document.querySelectorAll('.grid-pick')]"
                             ".some((b) => b.scrollWidth > b.clientWidth + 1)")
    page.click(".grid-pane[data-slot='2'] .grid-pick")  # and it picks
    assert until(lambda: live_judgments(world.campaign).count() == 1)


def test_a_phone_keeps_the_brand_apart_from_the_links_and_log_out_on_one_line(context):
    world = build_world(prompts=2, sizes=((512, 512), (512, 512)))
    get_user_model().objects.filter(pk=world.annotator.pk).update(username="annotator1")
    world.annotator.refresh_from_db()
    page, _ = _open(context, world, PHONE)
    boxes = page.evaluate(BOXES, [".topbar .brand", ".topbar nav a", ".topbar nav button",
                                  ".topbar"])
    brand, first_link = boxes[".topbar .brand"], boxes[".topbar nav a"]
    log_out, bar = boxes[".topbar nav button"], boxes[".topbar"]
    assert first_link["x"] - brand["right"] >= 12, boxes  # a gap, not touching
    assert log_out["height"] < 2 * log_out["fontSize"], boxes  # "Log out" on one line
    assert log_out["right"] <= PHONE["width"] and bar["right"] <= PHONE["width"], boxes
    assert bar["height"] < 3 * log_out["fontSize"], boxes  # the bar stays one line
