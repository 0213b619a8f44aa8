"""Large images open as tiles (never as the whole file); zoom is shared by both panes; the
layout is looked at on a laptop and on a large monitor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalhub.runs.models import Image
from tests.browser.conftest import login
from tests.browser.pages import (
    TILED_VIEWS,
    dismiss_instructions,
    images_loaded,
    shown_lease,
    until,
)
from tests.browser.world import build_world

# A tile of a grid (not a whole level): level/col_row.format.
TILE = re.compile(r"_files/\d+/\d+_\d+\.\w+")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = {"laptop": (1366, 768), "monitor": (2560, 1440)}


# Kept by the page from its first script on: when the pair first counted as drawn, and every
# resource the page asked for (Resource Timing keeps when each was asked for).
RECORD_DRAWN = """
window.__drawnAt = null;
new MutationObserver(() => {
  const app = document.querySelector('#rate-app');
  if (window.__drawnAt === null && app && app.dataset.ready === '1') {
    window.__drawnAt = performance.now();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
"""

def test_a_tiled_pair_is_drawn_from_its_fit_pictures_then_zooms_in_on_tiles(context, traffic):
    world = build_world(prompts=2, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    page = context.new_page()
    page.add_init_script(RECORD_DRAWN)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)

    # Drawn from one picture per pane, the fit level stored whole, in the pane's <img>: nothing
    # else of the pyramids was asked for before the pair counted as drawn.
    before = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('_files/') && e.startTime < window.__drawnAt)
        .map((e) => new URL(e.name).pathname)""")
    assert len(before) == 2 and all("/whole." in url for url in before), before
    shown = page.evaluate("""() => ['left', 'right'].map((side) => {
        const img = document.querySelector(`.pane-${side} .pane-img`);
        return !img.hidden && img.naturalWidth > 0 && new URL(img.src).pathname;
    })""")
    assert sorted(shown) == sorted(before)
    originals = [image.blob.file.url for image in Image.objects.select_related("blob")]
    assert not [url for url in traffic.urls if url.endswith(".dzi")]
    assert not [url for url in traffic.urls if any(url.endswith(o) for o in originals)]

    # The viewers open behind the pictures and follow the shared zoom; zooming in past fit
    # loads tiles, and each viewer comes in front once its view is drawn. Both panes show
    # the same image region all along.
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)
    at_fit = page.evaluate(TILED_VIEWS)
    assert not any(view["front"] for view in at_fit.values())
    tiles_at_fit = {url for url in traffic.urls if TILE.search(url)}
    box = page.locator(".pane-left .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    page.mouse.wheel(0, -900)
    page.wait_for_function(f"() => Object.values(({TILED_VIEWS})()).every((view) => view.front)")
    assert {url for url in traffic.urls if TILE.search(url)} - tiles_at_fit
    views = page.evaluate(TILED_VIEWS)
    left, right = views["left"], views["right"]
    assert left["zoom"] > 1.5
    assert left["zoom"] == pytest.approx(right["zoom"], rel=1e-4)
    assert left["u"] == pytest.approx(right["u"], abs=1e-4)
    assert left["v"] == pytest.approx(right["v"], abs=1e-4)
    assert left["u"] != pytest.approx(0.5, abs=0.01)  # zoomed where the mouse was
    page.screenshot(path="/tmp/rate-tiles-zoomed.png")


def test_zoom_is_synchronised_and_layout_screenshots(context):
    world = build_world(prompts=3, sizes=((768, 768), (1536, 1536)),
                        instructions="Look at the shape first, then the colours.\n"
                                     "Use Tie when you cannot tell them apart.")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    assert images_loaded(page) == {"left": images_loaded(page)["left"],
                                   "right": images_loaded(page)["right"]}
    assert set(images_loaded(page).values()) == {768, 1536}
    dismiss_instructions(page)  # the first visit shows them; closed for the shots

    for name, (width, height) in SCREENS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=f"/tmp/rate-{name}.png")
        # Both images fill most of the screen, side by side, and the controls fit.
        boxes = [page.locator(f".pane-{side} .pane-view").bounding_box()
                 for side in ("left", "right")]
        assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]
        assert all(box["height"] > height * 0.5 for box in boxes)
        answers = page.locator(".rate-answers").bounding_box()
        assert answers["y"] + answers["height"] <= height

    # Different resolutions, same region: zoom into the left pane, compare image centres.
    page.set_viewport_size({"width": 1366, "height": 768})
    box = page.locator(".pane-left .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.wheel(0, -500)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4, steps=5)
    page.mouse.up()
    centres = page.evaluate("""() => ['left', 'right'].map(side => {
        const view = document.querySelector(`.pane-${side} .pane-view`).getBoundingClientRect();
        const img = document.querySelector(`.pane-${side} .pane-img`).getBoundingClientRect();
        return [(view.left + view.width / 2 - img.left) / img.width,
                (view.top + view.height / 2 - img.top) / img.height, img.width / view.width];
    })""")
    (lx, ly, lzoom), (rx, ry, rzoom) = centres
    assert lzoom > 1.5 and abs(lzoom - rzoom) < 0.01
    assert abs(lx - rx) < 0.005 and abs(ly - ry) < 0.005
    page.screenshot(path="/tmp/rate-zoomed.png")
    page.keyboard.press("0")
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom === '1'")


def test_an_editing_task_shows_its_source(context):
    world = build_world(prompts=2, source=True, criteria=["overall", "alignment", "artifacts"])
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    assert set(images_loaded(page)) == {"source", "left", "right"}
    assert all(width > 0 for width in images_loaded(page).values())
    page.screenshot(path="/tmp/rate-editing-laptop.png")


def test_reporting_a_broken_image_skips_the_pair(context):
    from evalhub.campaigns.models import ImageReport, Lease, LeaseStatus

    world = build_world(prompts=2, source=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.click(".pane-right .report-btn")
    page.fill("#report-note", "all black")
    page.keyboard.press("1")  # typing in the dialog must not vote
    page.click("#report-send")
    shown_lease(page, other_than=lease)
    report = until(lambda: ImageReport.objects.filter(task__leases=lease).first())
    shown = Lease.objects.get(pk=lease)
    task = shown.task
    assert report.side == "right" and report.note == "all black1"
    assert report.image_id == (task.image_b_id if shown.a_side == "left" else task.image_a_id)
    assert until(lambda: Lease.objects.get(pk=lease).status == LeaseStatus.REPORTED)
