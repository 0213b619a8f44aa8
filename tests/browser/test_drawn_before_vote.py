"""No vote on a pair that is not drawn (issue #15): while an image or the tiles of the current
view are still on their way (the server's answers held back here), keys and clicks cast nothing;
once both panes are drawn they do. A pane that fails says so, with Retry and "Report broken
image", and is never a blank. A campaign whose large images are still being tiled shows
"Preparing images x of y" and starts by itself when they are ready. The zoom is shown in image
pixels, 1:1 is one key away, and both panes stay locked up to 16 screen pixels per image
pixel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalhub.campaigns.models import ImageReport, Judgment
from tests.browser.conftest import login
from tests.browser.pages import (
    HeldRequests,
    is_image_file,
    open_with_first_pair_held,
    outbox,
    shown_lease,
    until,
    wait_outbox_empty,
)
from tests.browser.world import build_tiles, build_world, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER_BUTTONS = ".criterion button[data-answer]"


def try_to_vote(page) -> None:
    """Every way to vote: the keys, and clicks on the buttons even while they are disabled
    (dispatched as events, as a script or an impatient double click would)."""
    for key in ("1", "2", "ArrowLeft", "3", "4"):
        page.keyboard.press(key)
    for button in page.query_selector_all(ANSWER_BUTTONS):
        button.dispatch_event("click")
    page.wait_for_timeout(600)  # long enough for a vote to leave the outbox, had one been cast


def assert_no_vote(page, world) -> None:
    assert page.get_attribute("#rate-app", "data-ready") == "0"
    assert all(button.is_disabled() for button in page.query_selector_all(ANSWER_BUTTONS))
    assert outbox(page) == []
    assert not Judgment.objects.filter(campaign=world.campaign).exists()


def test_no_vote_while_the_images_are_on_their_way(context):
    world = build_world(prompts=3)
    page, held = open_with_first_pair_held(context, world)
    try_to_vote(page)
    assert_no_vote(page, world)

    held.release()
    lease = shown_lease(page)
    assert all(not button.is_disabled() for button in page.query_selector_all(ANSWER_BUTTONS))
    page.keyboard.press("2")
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    shown_lease(page, other_than=lease)
    assert live_judgments(world.campaign).count() == 1


def test_a_pane_that_fails_offers_retry_and_report(context):
    world = build_world(prompts=3)
    page = context.new_page()
    failing = {"on": True}

    def fail_images(route) -> None:
        if failing["on"] and is_image_file(route.request):
            route.fulfill(status=500, body="server error")
        else:
            route.continue_()

    page.route("**/*", fail_images)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    for side in ("left", "right"):
        error = page.locator(f".pane-{side} .pane-error")
        error.wait_for(state="visible")
        assert "did not load" in error.text_content()
        assert error.locator(".retry-btn").is_enabled()
        assert error.locator(".error-report-btn").is_enabled()
    assert page.locator("#skip-btn").is_enabled()  # the annotator can move on
    try_to_vote(page)
    assert_no_vote(page, world)

    # Retry once the server answers again: each pane comes back; votes count when both have.
    failing["on"] = False
    page.click(".pane-left .retry-btn")
    page.locator(".pane-left .pane-error").wait_for(state="hidden")
    page.wait_for_function("() => document.querySelector('.pane-left .pane-img').naturalWidth > 0")
    page.keyboard.press("1")
    page.wait_for_timeout(300)
    assert_no_vote(page, world)  # the right pane is still an error
    page.click(".pane-right .retry-btn")
    lease = shown_lease(page)
    page.keyboard.press("1")
    # Waited for in the page: its requests pass through fail_images, which runs only while
    # the test calls into Playwright (never during until's sleeps).
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())

    # "Report broken image" in a failed pane reports that side and moves on.
    shown_lease(page, other_than=lease)
    failing["on"] = True
    page.reload()  # the pair on screen comes back, and its files fail
    page.locator(".pane-right .pane-error").wait_for(state="visible")
    reported = page.get_attribute("#rate-app", "data-lease")
    page.click(".pane-right .error-report-btn")
    # Waited for in Playwright, as the vote above: the report's request passes fail_images.
    with page.expect_response(lambda r: r.url.endswith(f"/leases/{reported}/report/")) as sent:
        page.click("#report-send")
    assert sent.value.status == 200
    report = ImageReport.objects.filter(task__leases=reported).first()
    assert report is not None and report.side == "right"


def test_large_images_prepare_then_draw_their_tiles_before_a_vote(context, traffic):
    world = build_world(prompts=1, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG", tiles=False)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")

    # Preparing: progress, then the pair by itself once a worker has built both pyramids.
    page.wait_for_function("() => document.querySelector('#rate-preparing-message').textContent"
                           " === 'Preparing images 0 of 2'")
    assert page.locator("#rate-stage").is_hidden()
    try_to_vote(page)
    assert not Judgment.objects.exists()
    build_tiles(limit=1)
    page.wait_for_function("() => document.querySelector('#rate-preparing-message').textContent"
                           " === 'Preparing images 1 of 2'", timeout=20_000)
    assert page.get_attribute("#rate-preparing-bar", "value") == "1"

    # Ready on the server, but the tiles are slow: nothing counts until they are drawn.
    held = HeldRequests(page, "**/rate/tiles/*_files/**")
    build_tiles()
    page.wait_for_selector("#rate-stage:not([hidden])", timeout=20_000)
    held.wait_for(2)
    try_to_vote(page)
    assert_no_vote(page, world)
    held.release()
    lease = shown_lease(page)
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)

    # Deep zoom on tiles: 1:1 of the larger image with one key, then 8x and more; both
    # viewers stay on the same image region.
    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    box = page.locator(".pane-left .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(12):
        page.mouse.wheel(0, -400)
    page.wait_for_timeout(300)
    views = page.evaluate("""() => ['left', 'right'].map((side) => {
        const view = document.querySelector(`.pane-${side} .pane-view`);
        const viewer = OpenSeadragon.getViewer(view.querySelector('.osd-holder'));
        const vp = viewer.viewport;
        const size = viewer.world.getItemAt(0).getContentSize();
        const centre = vp.viewportToImageCoordinates(vp.getCenter(true));
        return {pixels: vp.viewportToImageZoom(vp.getZoom(true)), width: size.x,
                u: centre.x / size.x, v: centre.y / size.y};
    })""")
    larger = max(views, key=lambda view: view["width"])
    assert larger["pixels"] >= 8  # screen pixels per image pixel
    assert views[0]["u"] == pytest.approx(views[1]["u"], abs=1e-4)
    assert views[0]["v"] == pytest.approx(views[1]["v"], abs=1e-4)

    page.keyboard.press("1")
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert [url for url in traffic.urls if "_files/" in url]


def test_zoom_in_image_pixels_locked_from_fit_to_16x(context):
    world = build_world(prompts=2, sizes=((768, 768), (1536, 1536)), instructions="")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    level = page.locator("#zoom-level")
    assert page.get_attribute("#zoom-native", "aria-keyshortcuts") == "N"
    assert "1:1" in page.text_content("#zoom-native")

    def shown() -> dict[str, dict[str, float]]:
        """Per image size ("big": 1536 px, "small": 768 px, on whichever side each is shown):
        screen pixels per image pixel, and the image point at the pane's centre."""
        return page.evaluate("""() => Object.fromEntries(['left', 'right'].map((side) => {
            const view = document.querySelector(`.pane-${side} .pane-view`).getBoundingClientRect();
            const img = document.querySelector(`.pane-${side} .pane-img`);
            const box = img.getBoundingClientRect();
            return [img.naturalWidth === 1536 ? 'big' : 'small',
                    {side, scale: box.width / img.naturalWidth,
                     u: (view.left + view.width / 2 - box.left) / box.width,
                     v: (view.top + view.height / 2 - box.top) / box.height}];
        }))""")

    # At fit both images are shown smaller than their pixels: the read-out says by how much.
    fit = shown()
    big, small = fit["big"]["side"], fit["small"]["side"]
    assert fit["big"]["scale"] < 0.5 < fit["small"]["scale"] < 1
    assert re.search(rf"{big} 1:2\.\d \(\d\d%\)", level.text_content()), level.text_content()
    assert re.search(rf"{small} 1:1\.\d \(\d\d%\)", level.text_content())

    # N: 1:1 of the larger image (one image pixel per screen pixel); the smaller one, with
    # half the pixels across, is then at 2:1.
    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    native = shown()
    assert native["big"]["scale"] == pytest.approx(1, abs=1e-3)
    assert native["small"]["scale"] == pytest.approx(2, abs=2e-3)
    assert f"{big} 1:1 (100%)" in level.text_content()
    assert f"{small} 2:1 (200%)" in level.text_content()

    # The wheel goes on to 16 screen pixels per image pixel of the larger image, no further,
    # and the two panes show the same region all the way.
    box = page.locator(f".pane-{big} .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    for _ in range(10):
        page.mouse.wheel(0, -500)
    page.wait_for_function("(side) => document.querySelector('#zoom-level').textContent"
                           ".includes(`${side} 16:1 (1600%)`)", arg=big)
    deep = shown()
    assert deep["big"]["scale"] == pytest.approx(16, rel=1e-3)
    assert deep["small"]["scale"] == pytest.approx(32, rel=1e-3)
    for key in ("u", "v"):
        assert deep["small"][key] == pytest.approx(deep["big"][key], abs=1e-4)
    assert deep["big"]["u"] != pytest.approx(0.5, abs=0.01)  # zoomed where the mouse was

    page.keyboard.press("0")
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom === '1'")
    assert shown()["big"]["scale"] == pytest.approx(fit["big"]["scale"], rel=1e-6)
    assert not Judgment.objects.exists()  # N and 0 are not votes
