"""The one rating page gives best-of-K tasks what pairs have: the task behind the one on screen
is leased and its images loaded before the annotator votes, so the next task is on screen at
the keypress without a request; a campaign whose large images are still being tiled says
"Preparing images x of y" and starts by itself once they are ready. The first task comes in the
page: its tiles are asked for before any API answer and without the .dzi descriptor, at the
level the viewer draws at fit, each once."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from playwright.sync_api import expect

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import resolve_display_name
from evalhub.blobs.tiles import Pyramid
from evalhub.campaigns.models import Judgment, Lease, LeaseStatus, TaskKind
from tests.browser.conftest import login
from tests.browser.pages import shown_lease, task_image_urls, until, wait_outbox_empty
from tests.browser.world import build_tiles, build_world, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A tile, or a whole level as one picture (blobs/tiles.py whole_levels).
TILE = re.compile(r"/rate/tiles/(?P<token>[0-9a-f]{64})_files/(?P<level>\d+)/"
                  r"(?P<name>\d+_\d+|whole)\.\w+")


def _best_of_3(*, sizes, prompts, fmt="PNG"):
    return build_campaign(
        runs=3, prompts=prompts, annotators=1,
        image_bytes=lambda p, r: picture(p * 3 + r, sizes[r], fmt=fmt),
        name="Best of three", task_kind=TaskKind.BEST_OF_K, k=3, judgments_per_pair=1)


def _active(world) -> set[str]:
    return {str(pk) for pk in Lease.objects.filter(
        campaign=world.campaign, status=LeaseStatus.ACTIVE).values_list("pk", flat=True)}


# How many of `urls` the page has loaded (Resource Timing: one entry per request).
LOADED = ("performance.getEntriesByType('resource')"
          ".filter((entry) => urls.some((url) => entry.name.endsWith(url))).length")


def _assert_fit_level_asked_once(urls: list[str]) -> None:
    """Each image's finest level asked for is complete (one whole-level picture, or every tile
    of its grid, by the server's arithmetic) and no tile was asked for twice: the page's early
    requests were for the level the viewer draws at fit (a wrong guess would leave a second
    level, or a partial finest one), and the viewer's own requests for them were answered by
    the same requests. Coarser tiles are the viewer's own stand-ins while the fit level
    loads."""
    tiles = [match for url in urls if (match := TILE.search(url))]
    assert tiles
    assert len({t.group(0) for t in tiles}) == len(tiles)
    by_image = defaultdict(list)
    for tile in tiles:
        by_image[tile["token"]].append(tile)
    for token, asked in by_image.items():
        blob = ImageBlob.objects.get(pk=resolve_display_name(token)[1])
        finest = max(int(t["level"]) for t in asked)
        at_finest = [t for t in asked if int(t["level"]) == finest]
        cols, rows = Pyramid(blob.width, blob.height).grid(finest)
        whole = any(t["name"] == "whole" for t in at_finest)
        assert len(at_finest) == (1 if whole else cols * rows), token


def test_the_next_task_is_leased_and_its_images_loaded_before_the_vote(context, traffic, errors):
    world = _best_of_3(sizes=[(512, 512), (640, 512), (768, 512)], prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")

    for slot in ("1", "3", "2"):
        on_screen = shown_lease(page)
        wait_outbox_empty(page)  # the previous vote stored: its lease is no longer active
        # Leased behind the one on screen, its three images loaded, before any key.
        assert until(lambda on_screen=on_screen: len(_active(world) - {on_screen}) == 1)
        upcoming = (_active(world) - {on_screen}).pop()
        images = task_image_urls(Lease.objects.get(pk=upcoming))
        page.wait_for_function(f"(urls) => {LOADED} === urls.length", arg=images)
        page.keyboard.press(slot)
        assert shown_lease(page, other_than=on_screen) == upcoming
        # Shown from what was loaded: not one more request for its images.
        assert page.evaluate(f"(urls) => {LOADED}", images) == len(images)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(campaign=world.campaign).count() == 3)
    assert errors == []


def test_large_images_prepare_with_progress_then_the_grid_draws_its_tiles(context, traffic,
                                                                         errors):
    world = _best_of_3(sizes=[(4200, 2400)] * 3, prompts=1, fmt="JPEG")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")

    page.wait_for_function("() => document.querySelector('#rate-preparing-message').textContent"
                           " === 'Preparing images 0 of 3'")
    assert page.locator("#rate-stage").is_hidden()
    for key in ("1", "2", "3"):
        page.keyboard.press(key)
    build_tiles(limit=1)
    page.wait_for_function("() => document.querySelector('#rate-preparing-message').textContent"
                           " === 'Preparing images 1 of 3'", timeout=20_000)
    assert page.get_attribute("#rate-preparing-bar", "value") == "1"
    build_tiles()
    lease = shown_lease(page)  # by itself, once every pyramid exists
    assert page.locator("#rate-preparing").is_hidden()
    expect(page.locator(".grid-pane[data-kind=tiles] canvas")).to_have_count(3)
    assert not Judgment.objects.exists()  # the keys pressed while preparing cast nothing

    page.keyboard.press("2")
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=lease).exists())
    # The geometry came with the task: no descriptor was asked for.
    assert not [url for url in traffic.urls if url.endswith(".dzi")]
    _assert_fit_level_asked_once(traffic.urls)
    assert errors == []


def test_the_first_tiles_are_asked_for_before_any_api_request(context, traffic, errors):
    world = build_world(prompts=2, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)

    # The tiles were asked for before any API answer came back: nothing waited for one.
    timing = page.evaluate("""() => {
        const entries = performance.getEntriesByType('resource');
        const tiles = entries.filter((e) => e.name.includes('_files/'));
        const api = entries.filter((e) => e.name.includes('/api/v1/rate/'));
        return {firstTile: Math.min(...tiles.map((e) => e.startTime)),
                firstAnswer: Math.min(...api.map((e) => e.responseEnd))};
    }""")
    assert timing["firstTile"] < timing["firstAnswer"]
    page_url = next(u for u in traffic.urls if re.search(r"/rate/\d+/$", u))
    loaded = traffic.urls[traffic.urls.index(page_url):]
    assert not [url for url in loaded if url.endswith(".dzi")]
    # Every image's tiles (this pair's, and the next pair's asked for ahead) at the one level
    # drawn at fit, each asked for once: the page's early request and the viewer's are one.
    _assert_fit_level_asked_once(loaded)
    page.keyboard.press("1")
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=lease).exists())
    assert errors == []
