"""The first pair's fit pictures, asked for by the rating page's HTML (``<link rel=preload
as=image>``), so they load while the page's modules do instead of after them.

A tiled image whose fit level is stored whole is shown from that one picture
(static/js/rate/images.js ``fitPicture``); the page's script picks the level from the pane's
laid-out size, which the server does not know. The HTML therefore gives one preload per
level the script could pick, each with a media query that matches exactly the viewports in
which the script picks it, so the browser fetches one picture per pane (or none) and the
script's own request for it is answered from the browser's cache.

Which level (images.js ``fitLevel``, OpenSeadragon's rule): with the pane ``pw`` x ``ph`` CSS
pixels and the image ``W`` x ``H``, ``fit = min(pw / W, ph / H)``; level ``L`` of ``max =
ceil(log2(max(W, H)))`` is chosen when ``2**L <= 2 * fit * 2**max < 2**(L + 1)``, i.e. when
the image's shown width ``dw = W * fit`` lies in ``[s / 2, s)`` for ``s = W / 2**(max - L)``
(the level's width before rounding). ``fitPicture`` then takes it if it has at least
``dw * devicePixelRatio`` pixels across: always at one device pixel per CSS pixel, so the
preloads are for ``(max-resolution: 1dppx)`` screens only (on denser ones the pane usually
draws tiles instead, and nothing is preloaded for it).

The pane's width follows the pair layout of static/css/rate.css above 640 px: the stage has
1rem padding on each side and .75rem gaps (``STAGE_SIDE_PX``, ``STAGE_GAP_PX``, at 16 px to
the rem), columns ``1fr 1fr``, or ``.7fr 1fr 1fr`` with an edit's source, so ``pw = (vw -
2 * 16 - gaps * 12) * fraction``. The shown width is ``pw`` while the pane is tall enough
(``ph >= pw * H / W``, width-limited); its height is the viewport's less the page's other rows,
at most ``CHROME_PX``, so each width band is cut into ``SLICES`` slices, each asking for a
viewport tall enough for its widest pane. A layout these queries do not describe (a stacked
phone layout, best of K, a user font size other than 16 px) gets no preload or, at worst, a
picture the script does not use: never a wrong picture on screen, because the script decides
what it shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evalhub.blobs.tiles import Pyramid

STAGE_SIDE_PX = 32  # .rate-stage: padding 1rem left and right
STAGE_GAP_PX = 12  # .rate-stage: gap .75rem between columns
SIDE_BY_SIDE_MIN_PX = 641  # at most 640 px the panes are stacked (rate.css)
# The page's rows other than the panes' pictures (top bar, prompt, answers, captions,
# paddings): measured 230 px at 1366 x 768 with a one-line prompt (tests/browser), and the
# prompt may take two more lines.
CHROME_PX = 280
SLICES = 6  # height conditions per level's width band


@dataclass(frozen=True)
class PicturePreload:
    """One ``<link rel=preload as=image>``: the picture's URL (with the tile grant) and the
    media query of the viewports in which the page shows it at fit."""

    url: str
    media: str


def whole_url(pyramid: dict[str, Any], level: int) -> str:
    """A whole level's URL as the page builds it (images.js ``wholeUrl``)."""
    return f"{pyramid['url']}{level}/whole.{pyramid['format']}{pyramid.get('query') or ''}"


def _columns(task: dict[str, Any]) -> list[tuple[dict[str, Any] | None, float]]:
    """The first task's images with their column's share of the stage's width."""
    if task.get("source_image"):
        return [(task["source_image"], 0.7 / 2.7), (task.get("left"), 1 / 2.7),
                (task.get("right"), 1 / 2.7)]
    return [(task.get("left"), 0.5), (task.get("right"), 0.5)]


def _image_preloads(pyramid: dict[str, Any], share: float, gaps: int) -> list[PicturePreload]:
    """The preloads of one pane (module doc): for each whole level, the viewport widths whose
    pane shows the image between half the level's width and its width, in slices."""
    geometry = Pyramid(pyramid["width"], pyramid["height"])
    aspect = geometry.height / geometry.width
    fixed = STAGE_SIDE_PX + gaps * STAGE_GAP_PX
    preloads = []
    for level in pyramid.get("whole_levels") or ():
        span = geometry.width / 2 ** (geometry.max_level - level)  # s: unrounded width
        # dw = (vw - fixed) * share in [s / 2, s)  <=>  vw in [low, high)
        low = max(SIDE_BY_SIDE_MIN_PX, math.ceil(fixed + span / 2 / share))
        high = math.ceil(fixed + span / share)  # first width that picks the next level
        if low >= high:
            continue
        step = math.ceil((high - low) / SLICES)
        for start in range(low, high, step):
            end = min(high, start + step)  # widths start .. end - 1
            widest = (end - 1 - fixed) * share
            min_height = math.ceil(widest * aspect + CHROME_PX)
            media = (f"(min-width: {start}px) and (max-width: {end - 1}px) and "
                     f"(min-height: {min_height}px) and (max-resolution: 1dppx)")
            preloads.append(PicturePreload(whole_url(pyramid, level), media))
    return preloads


def first_picture_preloads(task: dict[str, Any], *, grid: bool) -> list[PicturePreload]:
    """The preloads of a pair's first task (module doc); none for best of K (its grid's
    panes are not described here), a task without tiled images, or videos."""
    if grid or not task or not task.get("lease"):
        return []
    columns = _columns(task)
    preloads = []
    for image, share in columns:
        pyramid = image and not image.get("video") and image.get("pyramid")
        if pyramid:
            preloads += _image_preloads(pyramid, share, len(columns) - 1)
    return preloads
