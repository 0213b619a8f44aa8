"""The rating page's HTML asks for the first pair's fit pictures (campaigns/page/preloads.py):
on any side-by-side screen at one device pixel per CSS pixel, at most one preload per pane
matches, and it is the whole level the page's script shows there (static/js/rate/images.js
``fitLevel``: the finest level whose pixels cover at least half a screen pixel); none where
the pane could be limited by its height, for best of K, videos or untiled images. The
browser side (the preload used, no second download) is tests/browser/test_tiles_and_layout.py.
"""

from __future__ import annotations

import math
import re

import pytest

from evalhub.blobs.tiles import Pyramid
from evalhub.campaigns.page.preloads import (
    CHROME_PX,
    STAGE_GAP_PX,
    STAGE_SIDE_PX,
    first_picture_preloads,
)

QUERY = re.compile(r"\(min-width: (\d+)px\) and \(max-width: (\d+)px\) and "
                   r"\(min-height: (\d+)px\) and \(max-resolution: 1dppx\)")


def _image(width: int, height: int, token: str) -> dict:
    pyramid = Pyramid(width, height)
    return {"url": f"/media/display/{token}.png", "video": None,
            "tiles": f"/rate/tiles/{token}.dzi",
            "pyramid": {"url": f"/rate/tiles/{token}_files/", "width": width,
                        "height": height, "tile_size": 510, "overlap": 1, "format": "jpeg",
                        "whole_levels": pyramid.whole_levels(), "query": "?g=grant"}}


def _task(**images) -> dict:
    return {"lease": 1, "prompt": "p", "source_image": None, **images}


def _matching(preloads, width: int, height: int) -> list[str]:
    """The URLs whose media query matches a ``width`` x ``height`` screen at 1 dppx."""
    urls = []
    for preload in preloads:
        low, high, min_height = map(int, QUERY.fullmatch(preload.media).groups())
        if low <= width <= high and height >= min_height:
            urls.append(preload.url)
    return urls


def _script_level(pyramid: Pyramid, pane_width: float, pane_height: float) -> int:
    """images.js fitLevel, as the page computes it from the pane's laid-out size."""
    fit = min(pane_width / pyramid.width, pane_height / pyramid.height)
    return max(0, min(pyramid.max_level,
                      math.floor(math.log2(fit * 2 ** pyramid.max_level / 0.5) + 1e-9)))


@pytest.mark.parametrize("size", [(15360, 8640), (5000, 3000), (8640, 15360), (4200, 2800)])
def test_each_screen_preloads_at_most_the_picture_the_page_shows_per_pane(size):
    left, right = _image(*size, "a" * 64), _image(*size, "b" * 64)
    preloads = first_picture_preloads(_task(left=left, right=right), grid=False)
    pyramid = Pyramid(*size)
    hits = 0
    for width in range(641, 4000, 7):
        for height in (600, 768, 900, 1080, 1440, 2160):
            pane_width = (width - STAGE_SIDE_PX - STAGE_GAP_PX) / 2
            # The tallest the panes are (the page's other rows at their smallest measured).
            pane_height = height - (CHROME_PX - 50)
            for image in (left, right):
                matched = [url for url in _matching(preloads, width, height)
                           if url.startswith(image["pyramid"]["url"])]
                assert len(matched) <= 1, (width, height, matched)
                if matched:
                    hits += 1
                    level = _script_level(pyramid, pane_width, pane_height)
                    assert matched == [f"{image['pyramid']['url']}{level}/whole.jpeg?g=grant"]
    if size[0] > size[1]:
        assert hits  # landscape pictures are preloaded on common screens


def test_a_laptop_screen_preloads_level_10_of_a_16k_pair_and_nothing_else():
    task = _task(left=_image(15360, 8640, "a" * 64), right=_image(15360, 8640, "b" * 64))
    preloads = first_picture_preloads(task, grid=False)
    assert _matching(preloads, 1440, 900) == [f"/rate/tiles/{t * 64}_files/10/whole.jpeg?g=grant"
                                              for t in "ab"]
    assert _matching(preloads, 640, 900) == []  # phones: panes stacked, not described


def test_best_of_k_videos_plain_images_and_no_task_get_no_preload():
    tiled = _image(15360, 8640, "a" * 64)
    plain = {"url": "/media/display/c.png", "video": None, "tiles": None, "pyramid": None}
    video = {**tiled, "video": {"url": "/media/video/v.webm"}}
    assert first_picture_preloads(_task(left=tiled, right=tiled), grid=True) == []
    assert first_picture_preloads(_task(left=plain, right=video), grid=False) == []
    assert first_picture_preloads({"done": True, "detail": "closed"}, grid=False) == []


def test_an_edits_source_pane_is_narrower_and_preloaded_for_its_own_width():
    source, left = _image(15360, 8640, "s" * 64), _image(15360, 8640, "a" * 64)
    task = _task(source_image=source, left=left, right=_image(15360, 8640, "b" * 64))
    matched = _matching(first_picture_preloads(task, grid=False), 1920, 1080)
    # Columns .7fr 1fr 1fr of 1920 - 32 - 24: the source 490 px wide (level 10 spans
    # 480-960), the pair 700 px (level 10 too).
    assert f"{source['pyramid']['url']}10/whole.jpeg?g=grant" in matched
    assert f"{left['pyramid']['url']}10/whole.jpeg?g=grant" in matched
