"""The side-by-side gallery in Chromium: a scientist pages through two runs with the keyboard,
both panes always show the same prompt and seed, and zoom and pan stay in sync.

Fails on any console error or Content-Security-Policy violation of the page (the browser's
own request for /favicon.ico is not the page's).
"""

from __future__ import annotations

import pytest

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import blob_build_tiles
from evalhub.campaigns.models import JudgeKind, Judgment
from evalhub.prompts.models import Prompt
from evalhub.runs.models import GenerationRun, Image
from tests.browser.conftest import login
from tests.browser.pages import GALLERY_SHOWN, drag_from_centre
from tests.browser.world import build_world
from tests.leaderboards.helpers import cast, set_image_metric

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOWN = GALLERY_SHOWN

# Where each pane's centre falls on its image (0..1 of width and height) and the image's
# drawn width: equal in both panes when they show the same region at the same zoom.
GEOMETRY = """() => [...document.querySelectorAll('.pane[data-side]')].map((pane) => {
  const view = pane.querySelector('.pane-view').getBoundingClientRect();
  const img = pane.querySelector('.pane-img').getBoundingClientRect();
  return {u: (view.left + view.width / 2 - img.left) / img.width,
          v: (view.top + view.height / 2 - img.top) / img.height, width: img.width};
})"""

# A 5,000-character prompt: a row of the page's list clamped to a few lines, its full text in
# the cell's title (and above the images once its row is opened).
LONG = ("a red cube on a blue sphere beside a green cone " * 105)[:5000]
ROW = """(n) => { const row = document.querySelectorAll('#gallery-list tbody tr')[n];
  const text = row.querySelector('.prompt-cell [dir=auto]');
  return {height: row.getBoundingClientRect().height, title: text.title,
          text: text.textContent}; }"""




def _shown_images(page) -> tuple[Image, Image]:
    """The two images the panes show, from their image-page links."""
    ids = [int(page.get_attribute(f"[data-field={side}-href]", "href").rstrip("/")
               .rsplit("/", 1)[1]) for side in ("left", "right")]
    left, right = (Image.objects.select_related("prompt").get(pk=pk) for pk in ids)
    return left, right


def _same_region(page) -> list[dict]:
    left, right = page.evaluate(GEOMETRY)
    assert left["u"] == pytest.approx(right["u"], abs=2e-3)
    assert left["v"] == pytest.approx(right["v"], abs=2e-3)
    assert left["width"] == pytest.approx(right["width"], abs=1.0)
    return [left, right]


def test_paging_two_runs_with_the_keyboard_in_sync(context, errors):
    world = build_world(prompts=3, sizes=((320, 320), (480, 480)))
    left_run, right_run = world.runs
    first = world.tasks[0]
    set_image_metric(first.image_a, "clip_score", 30.5)
    cast(first, world.annotator, "a")
    # Pair 2: a metric judge that scored with random weights, contradicted by the one vote.
    second = world.tasks[1]
    Judgment.objects.create(task=second, campaign=second.campaign, criterion="overall",
                            outcome="a", judge_kind=JudgeKind.METRIC, metric_name="clip_score",
                            metric_calibrated=False)
    cast(second, world.annotator, "b")
    Prompt.objects.filter(pk=world.prompts[2].pk).update(text=LONG)
    world.prompts[2].refresh_from_db()
    page = context.new_page()
    gallery = f"/gallery/{world.campaign.project_id}/"
    login(page, world.scientist.username, gallery)
    page.goto(f"{gallery}?a={left_run.pk}&b={right_run.pk}")
    page.wait_for_function(SHOWN, arg=1)
    assert page.evaluate("[...document.querySelectorAll('.pane-img')].map(i => i.naturalWidth)"
                         ) == [320, 480]
    assert page.text_content("[data-field=left-clip]") == "30.50"
    assert page.text_content("[data-field=votes]") == "left 1 · right 0 · tie 0 · both bad 0"
    long_row = page.evaluate(ROW, 2)
    assert long_row["title"] == long_row["text"] == LONG
    assert long_row["height"] < 4 * page.evaluate(ROW, 0)["height"] < 400
    # Run names and prompts are isolated from the text around them (docs/accessibility.md).
    assert page.eval_on_selector_all(".run-name bdi, #gallery-prompt",
                                     "els => els.map(e => getComputedStyle(e).unicodeBidi)"
                                     ) == ["isolate"] * 3

    # ← → and j / k step through the pairs; both sides always answer the same prompt and seed.
    for key, number in (("ArrowRight", 2), ("j", 3), ("k", 2), ("ArrowLeft", 1),
                        ("ArrowRight", 2)):
        page.keyboard.press(key)
        page.wait_for_function(SHOWN, arg=number)
        left, right = _shown_images(page)
        assert (left.run_id, right.run_id) == (left_run.pk, right_run.pk)
        assert (left.prompt_id, left.seed) == (right.prompt_id, right.seed)
        assert left.prompt == world.prompts[number - 1]
        assert page.text_content("#gallery-prompt") == world.prompts[number - 1].text
    assert "item=1" in page.url  # a reload shows the same pair
    # Drawn by gallery.js from the page's data: the judge is labelled as its scores are.
    assert page.text_content("[data-field=metric_outcome]") == "left (uncalibrated)"
    assert page.text_content("[data-field=metric_disagreement]") == "1.00 (uncalibrated)"

    # Zoom on the left pane: the right one follows; pan on the right: the left one follows.
    before = _same_region(page)
    box = page.locator(".pane[data-side=left] .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    page.mouse.wheel(0, -400)
    page.wait_for_function("() => document.querySelector('#zoom-level').textContent !== '100%'")
    zoomed = _same_region(page)
    assert zoomed[0]["width"] > before[0]["width"] * 1.5
    drag_from_centre(page, ".pane[data-side=right] .pane-view", 60, 30)
    panned = _same_region(page)
    assert panned[0]["u"] != pytest.approx(zoomed[0]["u"], abs=1e-3)

    # The next pair starts from the whole image again.
    page.keyboard.press("ArrowRight")
    page.wait_for_function(SHOWN, arg=3)
    assert page.text_content("#zoom-level") == "100%"
    assert page.evaluate("window.__violations") == []

    # The left image's page: the same image, its prompt and seed.
    left, _ = _shown_images(page)
    # Until the navigation commits, the gallery (which has no #image-app) is still the page.
    with page.expect_navigation():
        page.click("[data-field=left-href]")
    page.wait_for_function("() => document.querySelector('#image-app')?.dataset.ready === '1'")
    assert page.evaluate("document.querySelector('.pane-img').naturalWidth") == 320
    assert page.text_content("#image-prompt") == left.prompt.text
    assert page.text_content("#image-seed") == str(left.seed)
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_large_images_open_as_tiles(context, errors, traffic):
    world = build_world(prompts=1, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    for blob in ImageBlob.objects.filter(images__run__in=world.runs):
        blob_build_tiles(blob)  # as a worker does after an import (never twice)
    gallery = f"/gallery/{world.campaign.project_id}/"
    page = context.new_page()
    login(page, world.scientist.username, gallery)
    page.wait_for_function(SHOWN, arg=1)
    assert page.locator(".pane[data-kind=tiles] canvas").count() == 2
    assert not [url for url in traffic.urls if "/media/display/" in url]  # never the whole file
    box = page.locator(".pane[data-side=right] .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function("() => document.querySelector('#zoom-level').textContent !== '100%'")
    assert [url for url in traffic.urls if "_files/" in url]
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_the_run_pages_gallery_link_shows_a_lone_run_as_a_grid(context, errors):
    # A project with one run: its page's "Gallery" link names that run alone, and the gallery
    # shows its outputs rather than "Right run: This field is required".
    world = build_world(prompts=3, sizes=((320, 320), (480, 480)))
    lone = world.runs[1]
    world.campaign.delete()  # its tasks hold the other run's images
    GenerationRun.objects.filter(pk=world.runs[0].pk).delete()
    page = context.new_page()
    login(page, world.scientist.username, f"/workspace/runs/{lone.pk}/")
    page.click("#run-gallery")
    page.wait_for_selector("#gallery-alone")
    assert "This field is required" not in page.content()
    assert page.locator(".output-grid img").count() == 3
    page.wait_for_function("() => [...document.querySelectorAll('.output-grid img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    first = Image.objects.filter(run=lone).order_by("prompt__position").first()
    assert page.get_attribute(".output-grid a", "href") == f"/gallery/images/{first.pk}/"
    assert page.evaluate("window.__violations") == []
    assert errors == []
