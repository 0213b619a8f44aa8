"""Zoom and pan without a pointer (WCAG 2.1.1): each image area is a tab stop, named with its
keys; while one has the focus, + (or =) and - zoom every pane alike by one step, the arrow keys
pan them all, 0 or Home goes back to fit, and none of those keys also acts on the page (the
arrows vote only while no image area has the focus). A mouse drag does not take the focus, so
the arrows still vote after one. Best-of-K Pick buttons are named "Pick image N" whether or not
the key's number is shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalhub.campaigns.models import TaskKind
from tests.browser.conftest import login
from tests.browser.pages import TILED_VIEWS, drag_from_centre, outbox, shown_lease, until
from tests.browser.world import SECRET_NAMES, build_world, live_judgments, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What each plain image pane shows: its zoom over fit (the transform's scale) and the image
# point (0..1 of width and height) at the pane's centre.
VIEWS = """() => Object.fromEntries(['left', 'right'].map(side => {
    const view = document.querySelector(`.pane-${side} .pane-view`).getBoundingClientRect();
    const img = document.querySelector(`.pane-${side} .pane-img`);
    const box = img.getBoundingClientRect();
    return [side, {zoom: new DOMMatrixReadOnly(getComputedStyle(img).transform).a,
                   u: (view.left + view.width / 2 - box.left) / box.width,
                   v: (view.top + view.height / 2 - box.top) / box.height}];
}))"""

ZOOM = "() => document.querySelector('#zoom-level').dataset.zoom"


def tab_to(page, selector: str, presses: int = 60) -> None:
    """Press Tab, as a keyboard user does, until ``selector`` has the focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def wait_zoom(page, zoom: str) -> None:
    """Wait for the shared zoom over fit, as the read-out's data-zoom gives it."""
    page.wait_for_function(f"(zoom) => ({ZOOM})() === zoom", arg=zoom)


def same_region(views: dict) -> None:
    left, right = views["left"], views["right"]
    assert left["zoom"] == pytest.approx(right["zoom"], rel=1e-6)
    assert left["u"] == pytest.approx(right["u"], abs=1e-3)
    assert left["v"] == pytest.approx(right["v"], abs=1e-3)


def test_keys_zoom_and_pan_both_images_from_a_focused_image_area_and_never_vote(context):
    world = build_world(prompts=3, sizes=((768, 768), (1536, 1536)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)

    # A tab stop, shown as focused, that says which image it is and its keys, never whose.
    view = page.locator(".pane-left .pane-view")
    tab_to(page, ".pane-left .pane-view")
    expect(view).to_have_role("application")
    expect(view).to_have_accessible_name(re.compile(
        r"^Left image\b.*zoom: \+ and -.*pan: arrow keys", re.IGNORECASE))
    name = view.evaluate("(el) => el.getAttribute('aria-label')")
    assert not [secret for secret in SECRET_NAMES if secret in name]
    outline = view.evaluate("(el) => getComputedStyle(el).outlineStyle + ' '"
                            " + parseFloat(getComputedStyle(el).outlineWidth)")
    assert outline.split()[0] != "none" and float(outline.split()[1]) >= 2, outline
    page.screenshot(path="/tmp/rate-image-area-focused.png")  # to look at the outline

    # + zooms both images by one step, = too; - steps back out.
    page.keyboard.press("+")
    wait_zoom(page, "1.4142")
    page.keyboard.press("=")
    wait_zoom(page, "2")
    zoomed = page.evaluate(VIEWS)
    assert zoomed["left"]["zoom"] == pytest.approx(2, rel=1e-6)
    same_region(zoomed)
    assert zoomed["left"]["u"] == pytest.approx(0.5, abs=1e-3)  # around the centre

    # The arrows pan both images the same way, and do not vote (ArrowLeft/Right are answers
    # on the page): the pair stays, nothing is queued.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    panned = page.evaluate(VIEWS)
    same_region(panned)
    assert panned["left"]["u"] > 0.5 + 0.01 and panned["left"]["v"] > 0.5 + 0.01, panned
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    back = page.evaluate(VIEWS)
    assert back["left"]["u"] == pytest.approx(0.5, abs=1e-3), back
    assert back["left"]["v"] == pytest.approx(0.5, abs=1e-3), back
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert outbox(page) == []

    page.keyboard.press("-")
    wait_zoom(page, "1.4142")
    page.keyboard.press("Home")
    wait_zoom(page, "1")
    page.keyboard.press("+")
    wait_zoom(page, "1.4142")
    page.keyboard.press("0")
    wait_zoom(page, "1")
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert live_judgments(world.campaign).count() == 0

    # The page's own keys still act from the image area (t is a tie), and the focus stays
    # there for the next pair.
    page.keyboard.press("t")
    shown_lease(page, other_than=lease)
    assert page.evaluate("() => document.activeElement.matches('.pane-left .pane-view')")
    assert until(lambda: live_judgments(world.campaign).count() == 1)


def test_a_mouse_drag_leaves_the_arrows_to_the_vote(context):
    world = build_world(prompts=3, sizes=((768, 768), (1536, 1536)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    box = page.locator(".pane-left .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -500)
    drag_from_centre(page, ".pane-left .pane-view", 40, 30)
    assert not page.evaluate("() => document.activeElement.matches('.pane-view')")
    page.keyboard.press("ArrowLeft")
    shown_lease(page, other_than=lease)
    assert until(lambda: live_judgments(world.campaign).count() == 1)


def test_keys_zoom_and_pan_tiled_images_together(context):
    world = build_world(prompts=2, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)
    # The tile viewers draw only: they are no tab stop and have no keys of their own (they
    # would pan one image alone).
    tab_to(page, ".pane-right .pane-view")
    for _ in range(3):
        page.keyboard.press("+")
    wait_zoom(page, "2.8284")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"() => Object.values(({TILED_VIEWS})()).every((view) => view.front)")
    views = page.evaluate(TILED_VIEWS)
    left, right = views["left"], views["right"]
    assert left["zoom"] == pytest.approx(2.8284, rel=1e-3)
    assert left["zoom"] == pytest.approx(right["zoom"], rel=1e-4)
    assert left["u"] == pytest.approx(right["u"], abs=1e-4)
    assert left["v"] == pytest.approx(right["v"], abs=1e-4)
    assert left["u"] < 0.5 - 0.01 and left["v"] < 0.5 - 0.01, views
    page.keyboard.press("Tab")
    assert not page.evaluate("() => document.activeElement.closest('.pane-osd')")
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert outbox(page) == []


def _best_of_4():
    return build_campaign(
        runs=4, prompts=2, annotators=1, name="Best of four",
        image_bytes=lambda p, r: picture(p * 4 + r, (512, 512)),
        task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=1)


@pytest.mark.parametrize("width", [1366, 600])
def test_best_of_k_pick_buttons_are_named_by_their_image(context, width):
    world = _best_of_4()
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 768})
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    for slot in range(4):
        pick = page.locator(f".grid-pick[data-slot='{slot}']")
        expect(pick).to_have_accessible_name(f"Pick image {slot + 1}")
        expect(page.get_by_role("button", name=f"Pick image {slot + 1}")).to_have_count(1)
    # The rest of the name is said, not shown: on screen the button still reads "Pick" (with
    # its key's number where there is room for it).
    said_only = page.locator(".grid-pick[data-slot='0'] .pick-what").bounding_box()
    assert said_only["width"] <= 1 and said_only["height"] <= 1, said_only


def test_best_of_k_image_areas_zoom_all_k_together(context):
    world = _best_of_4()
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    view = page.locator(".grid-pane[data-slot='2'] .pane-view")
    tab_to(page, ".grid-pane[data-slot='2'] .pane-view")
    expect(view).to_have_accessible_name(re.compile(r"^Image 3\b.*zoom: \+ and -", re.IGNORECASE))
    page.keyboard.press("+")
    page.keyboard.press("+")
    wait_zoom(page, "2")
    page.screenshot(path="/tmp/rate-grid-image-area-focused.png")  # to look at the outline
    scales = page.evaluate("() => [...document.querySelectorAll('.grid-pane .pane-img')].map("
                           "(img) => new DOMMatrixReadOnly(getComputedStyle(img).transform).a)")
    assert scales == pytest.approx([2, 2, 2, 2], rel=1e-6)
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert outbox(page) == []
