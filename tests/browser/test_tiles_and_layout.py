"""Large images open as tiles (never as the whole file); zoom is shared by both panes; the
layout is looked at on a laptop and on a large monitor."""

from __future__ import annotations

import pytest

from evalhub.runs.models import Image
from tests.browser.conftest import login
from tests.browser.pages import dismiss_instructions, images_loaded, shown_lease, until
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = {"laptop": (1366, 768), "monitor": (2560, 1440)}


def test_a_large_image_opens_as_tiles(context, traffic):
    world = build_world(prompts=1, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    assert page.locator(".pane[data-kind=tiles] canvas").count() == 2
    originals = [image.blob.file.url for image in Image.objects.select_related("blob")]
    # The pyramids' geometry comes with the task: tiles, and no descriptor round trip.
    dzi = [url for url in traffic.urls if url.endswith(".dzi")]
    tiles = [url for url in traffic.urls if "_files/" in url]
    assert not dzi and tiles
    assert not [url for url in traffic.urls if any(url.endswith(o) for o in originals)]
    # Zoom is shared: both viewers show the same image-relative region.
    page.mouse.move(400, 400)
    page.mouse.wheel(0, -600)
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    page.screenshot(path="/tmp/rate-tiles-zoomed.png")
    assert len(set(traffic.urls)) > len(set(tiles)) + 2  # deeper tiles were fetched


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
