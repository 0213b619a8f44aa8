"""Fingers on a touch screen (tablet, touch laptop): spreading two apart zooms both images
alike, pinching zooms back out (never below fit), one finger pans both, the image point
between the fingers stays between them, and no touch gesture ever casts a vote.

The touches are real: Chrome DevTools Protocol ``Input.dispatchTouchEvent`` feeds them in as
from a touch screen, and Chromium turns them into pointer events (pointerType "touch") for
static/js/rate/zoom.js, after its own touch-action handling (rate.css: ``.pane-view`` has
``touch-action: none``; without it Chromium would take the gesture and cancel the pointers)."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from evalhub.campaigns.models import Judgment
from tests.browser.conftest import LAPTOP, login
from tests.browser.pages import TILED_VIEWS, outbox, shown_lease, until, wait_outbox_empty
from tests.browser.world import build_world, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every pointer event the page sees, in order (capture phase: before zoom.js sees it).
RECORD_POINTERS = """
window.__pointers = [];
for (const type of ['pointerdown', 'pointermove', 'pointerup', 'pointercancel']) {
  document.addEventListener(type, (e) => {
    const pane = e.target.closest ? e.target.closest('.pane') : null;
    window.__pointers.push({type, id: e.pointerId, kind: e.pointerType,
                            pane: pane ? pane.dataset.side : null});
  }, true);
}
"""

# What each plain image pane shows: the zoom over "fit" and the offset of its CSS transform,
# the displayed width, and which image point (0..1 of width and height) is at the pane centre.
VIEWS = """() => Object.fromEntries(['left', 'right'].map(side => {
    const view = document.querySelector(`.pane-${side} .pane-view`).getBoundingClientRect();
    const img = document.querySelector(`.pane-${side} .pane-img`);
    const box = img.getBoundingClientRect();
    const m = new DOMMatrixReadOnly(getComputedStyle(img).transform);
    return [side, {zoom: m.a, tx: m.e, ty: m.f, width: box.width,
                   u: (view.left + view.width / 2 - box.left) / box.width,
                   v: (view.top + view.height / 2 - box.top) / box.height}];
}))"""

# The image point (0..1) under a screen point, in the left pane (plain image).
IMAGE_POINT = """([x, y]) => {
    const box = document.querySelector('.pane-left .pane-img').getBoundingClientRect();
    return [(x - box.left) / box.width, (y - box.top) / box.height];
}"""

PX = 0.5  # pixel offsets: zoom.js computes in floats and the transform carries them exactly

Point = tuple[float, float]


class Fingers:
    """Touch-screen fingers through CDP; each gesture returns once the page has handled it."""

    def __init__(self, page):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)

    def touch(self, kind: str, points: list[Point], ids: list[int] | None = None) -> None:
        # Finger ``ids[i]`` (default i) is at ``points[i]``; Chromium sends one pointer event
        # per finger that went down or moved. touchEnd lifts the fingers listed, or all of
        # them when none is (a finger left out of a touchMove is still down).
        ids = list(range(len(points))) if ids is None else ids
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": finger, "radiusX": 5, "radiusY": 5, "force": 1}
            for finger, (x, y) in zip(ids, points, strict=True)]})

    def move(self, start: list[Point], end: list[Point], steps: int = 12,
             ids: list[int] | None = None) -> None:
        """Move the fingers that are down from ``start`` to ``end``, together, in ``steps``."""
        for step in range(1, steps + 1):
            t = step / steps
            self.touch("touchMove", [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                                     for (x0, y0), (x1, y1) in zip(start, end, strict=True)],
                       ids)

    def settle(self) -> None:
        # A round trip through the page's next frame: every pointer event has been handled.
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")

    def gesture(self, start: list[Point], end: list[Point], steps: int = 12) -> None:
        """Put the fingers down at ``start``, move them together to ``end``, lift them."""
        self.touch("touchStart", start)
        self.move(start, end, steps)
        self.touch("touchEnd", [])
        self.settle()

    def spread(self, centre: Point, gap_from: float, gap_to: float, steps: int = 12) -> None:
        """Two fingers level with ``centre``, ``gap_from`` apart, moved to ``gap_to`` apart."""
        cx, cy = centre
        self.gesture([(cx - gap_from / 2, cy), (cx + gap_from / 2, cy)],
                     [(cx - gap_to / 2, cy), (cx + gap_to / 2, cy)], steps)


@pytest.fixture
def touch_page(browser, live_server):
    """A page on a touch-screen device; no mouse is used for any gesture."""
    context = browser.new_context(viewport=LAPTOP, base_url=live_server.url, has_touch=True)
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_POINTERS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors  # no script error on the page, from any gesture


def open_pair(page, **world_options):
    """A campaign (no instructions over the images); the annotator's first pair shown."""
    world = build_world(instructions="", **world_options)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    assert page.evaluate("navigator.maxTouchPoints") > 0  # a touch screen, as far as it knows
    return world, lease


def views(page) -> dict[str, dict[str, float]]:
    return page.evaluate(VIEWS)


def pointer_events(page) -> list[dict]:
    """The pointer events since the last call."""
    return page.evaluate("() => window.__pointers.splice(0)")


def zoom_over_fit(page) -> str:
    """The shared zoom as a multiple of fit, as the read-out's data-zoom gives it (the text
    shows screen pixels per image pixel, which differs between images of different sizes)."""
    return f"{float(page.get_attribute('#zoom-level', 'data-zoom')) * 100:.0f}%"


def wait_zoom(page, label: str) -> None:
    """Wait for the zoom over fit (``400%``); on failure say what the page did instead."""
    try:
        page.wait_for_function("(label) => `${Math.round(Number(document.querySelector("
                               "'#zoom-level').dataset.zoom) * 100)}%` === label", arg=label,
                               timeout=5_000)
    except PlaywrightTimeout:
        shown = zoom_over_fit(page)
        kinds = sorted({(e["type"], e["kind"]) for e in pointer_events(page)})
        raise AssertionError(f"zoom stayed {shown!r}, not {label!r}; pointer events: {kinds};"
                             f" scroll/page zoom: {page.evaluate(SCROLLED)}") from None


SCROLLED = "[scrollX, scrollY, visualViewport.scale]"


def assert_same_view(shown: dict[str, dict[str, float]]) -> None:
    """Both panes show the same zoom, offset and image region. Their images have the same
    shape and the panes the same size, so even the pixel offsets agree, although one image
    has twice the resolution of the other."""
    left, right = shown["left"], shown["right"]
    assert left["zoom"] == pytest.approx(right["zoom"], rel=1e-9)
    for key in ("tx", "ty", "width"):
        assert left[key] == pytest.approx(right[key], abs=PX), key
    for key in ("u", "v"):
        assert left[key] == pytest.approx(right[key], abs=1e-4), key


def assert_only_touch(events: list[dict], pane: str = "left", fingers: int = 2) -> None:
    """Real touch pointers, each down and up once, none taken over by the browser."""
    types = [event["type"] for event in events]
    assert {event["kind"] for event in events} == {"touch"}
    assert {event["pane"] for event in events} == {pane}
    assert types.count("pointerdown") == types.count("pointerup") == fingers
    assert types.count("pointermove") >= fingers
    assert "pointercancel" not in types


def test_pinch_zooms_both_images_and_one_finger_pans_them(touch_page):
    page = touch_page
    world, lease = open_pair(page, prompts=2, sizes=((768, 768), (1536, 1536)))
    start = views(page)
    assert start["left"]["zoom"] == 1 and start["left"]["u"] == pytest.approx(0.5, abs=1e-4)
    assert_same_view(start)
    pointer_events(page)
    fingers = Fingers(page)
    box = page.locator(".pane-left .pane-img").bounding_box()
    centre = (box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.4)
    under_fingers = page.evaluate(IMAGE_POINT, list(centre))
    assert under_fingers == pytest.approx([0.35, 0.4], abs=1e-3)

    # (1) Two fingers spread from 80 to 320 px apart on the left image: 4x, the same on the
    # right, and the image point between the fingers is still between them.
    fingers.spread(centre, 80, 320)
    wait_zoom(page, "400%")
    zoomed = views(page)
    assert zoomed["left"]["zoom"] == pytest.approx(4.0, rel=1e-6)
    assert zoomed["left"]["width"] == pytest.approx(start["left"]["width"] * 4, abs=PX)
    assert_same_view(zoomed)
    assert page.evaluate(IMAGE_POINT, list(centre)) == pytest.approx(under_fingers, abs=1e-3)
    assert_only_touch(pointer_events(page))
    assert page.evaluate(SCROLLED) == [0, 0, 1]  # zoom.js zoomed, not the browser
    assert not page.locator(".pane-view.dragging").count()

    # (2) Pinching back in: from 320 to 160 px is half, 2x, on both ...
    fingers.spread(centre, 320, 160)
    wait_zoom(page, "200%")
    half = views(page)
    assert half["left"]["zoom"] == pytest.approx(2.0, rel=1e-6)
    assert_same_view(half)
    assert page.evaluate(IMAGE_POINT, list(centre)) == pytest.approx(under_fingers, abs=1e-3)
    assert_only_touch(pointer_events(page))
    # ... and pinching 10 times closer stops at fit (1x), centred as at the start.
    fingers.spread(centre, 300, 30)
    wait_zoom(page, "100%")
    back = views(page)
    assert back["left"]["zoom"] == 1
    for key in ("tx", "ty", "width", "u", "v"):
        assert back["left"][key] == pytest.approx(start["left"][key], abs=1e-3), key
    assert_same_view(back)
    assert_only_touch(pointer_events(page))

    # (3) Zoomed in again (100 -> 300 px: 3x), one finger dragged by (90, -60) px: both
    # images move by exactly the finger's path, and show the same region.
    fingers.spread(centre, 100, 300)
    wait_zoom(page, "300%")
    before = views(page)
    assert_same_view(before)
    pointer_events(page)
    dx, dy = 90, -60
    finger = (box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    fingers.gesture([finger], [(finger[0] + dx, finger[1] + dy)], steps=10)
    page.wait_for_function(
        "(tx) => Math.abs(new DOMMatrixReadOnly(getComputedStyle("
        "document.querySelector('.pane-right .pane-img')).transform).e - tx) > 1",
        arg=before["right"]["tx"])
    panned = views(page)
    for side in ("left", "right"):
        assert panned[side]["zoom"] == pytest.approx(3.0, rel=1e-6)
        assert panned[side]["tx"] - before[side]["tx"] == pytest.approx(dx, abs=PX), side
        assert panned[side]["ty"] - before[side]["ty"] == pytest.approx(dy, abs=PX), side
        # In image terms the centre moved against the finger, by its path over the image size.
        width = panned[side]["width"]
        assert panned[side]["u"] - before[side]["u"] == pytest.approx(-dx / width, abs=1e-4)
        assert panned[side]["v"] - before[side]["v"] == pytest.approx(-dy / width, abs=1e-4)
    assert_same_view(panned)
    assert_only_touch(pointer_events(page), fingers=1)
    assert zoom_over_fit(page) == "300%"

    # (4) None of it voted: the same pair, nothing answered or queued, no row.
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert not page.locator("button[data-answer][aria-pressed=true]").count()
    assert outbox(page) == []
    assert not Judgment.objects.filter(campaign=world.campaign).exists()


def test_the_image_stays_under_the_fingers_as_they_move(touch_page):
    """A real pinch also drifts: the fingers spread while their midpoint travels. The image
    point under the midpoint follows it; lifting one finger goes on as a one-finger pan."""
    page = touch_page
    open_pair(page, prompts=1, sizes=((768, 768), (1536, 1536)))
    fingers = Fingers(page)
    box = page.locator(".pane-left .pane-img").bounding_box()
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45
    under = page.evaluate(IMAGE_POINT, [x, y])

    start = [(x - 50, y), (x + 50, y)]  # 100 px apart around (x, y) ...
    end = [(x + 30 - 125, y + 40), (x + 30 + 125, y + 40)]  # ... 250 apart around (x+30, y+40)
    fingers.touch("touchStart", start)
    fingers.move(start, end)
    fingers.settle()
    wait_zoom(page, "250%")
    assert page.evaluate(IMAGE_POINT, [x + 30, y + 40]) == pytest.approx(under, abs=1e-3)
    assert_same_view(views(page))

    # The first finger lifts; the second one drags on alone by (-70, -50) px.
    shown = views(page)
    second = end[1]
    fingers.touch("touchEnd", [end[0]], ids=[0])
    fingers.move([second], [(second[0] - 70, second[1] - 50)], steps=7, ids=[1])
    fingers.touch("touchEnd", [])
    fingers.settle()
    page.wait_for_function("(tx) => Math.abs(new DOMMatrixReadOnly(getComputedStyle("
                           "document.querySelector('.pane-left .pane-img')).transform).e - tx) > 1",
                           arg=shown["left"]["tx"])
    panned = views(page)
    for side in ("left", "right"):
        assert panned[side]["zoom"] == pytest.approx(2.5, rel=1e-6)
        assert panned[side]["tx"] - shown[side]["tx"] == pytest.approx(-70, abs=PX), side
        assert panned[side]["ty"] - shown[side]["ty"] == pytest.approx(-50, abs=PX), side
    assert_same_view(panned)
    assert_only_touch(pointer_events(page))


def test_touch_gestures_never_vote(touch_page):
    page = touch_page
    world, lease = open_pair(page, prompts=3, sizes=((768, 768), (1536, 1536)))
    fingers = Fingers(page)

    def nothing_voted(what: str) -> None:
        assert page.get_attribute("#rate-app", "data-lease") == lease, what
        assert page.get_attribute("#rate-app", "data-ready") == "1", what
        assert not page.locator("button[data-answer][aria-pressed=true]").count(), what
        assert outbox(page) == [], what
        assert page.locator("#rate-pending").is_hidden(), what

    for side in ("left", "right"):
        box = page.locator(f".pane-{side} .pane-view").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        fingers.spread((cx, cy), 60, 260)
        nothing_voted(f"spread on {side}")
        fingers.gesture([(cx - 50, cy), (cx + 50, cy)], [(cx + 30, cy + 40), (cx + 130, cy + 40)])
        nothing_voted(f"two-finger drag on {side}")
        fingers.spread((cx, cy), 260, 60)
        nothing_voted(f"pinch on {side}")
        fingers.gesture([(cx - 20, cy), (cx + 20, cy)], [(cx - 20, cy), (cx + 20, cy)], steps=1)
        nothing_voted(f"two-finger tap on {side}")
    # One finger on each image at once, spread apart.
    left = page.locator(".pane-left .pane-view").bounding_box()
    right = page.locator(".pane-right .pane-view").bounding_box()
    y = left["y"] + left["height"] / 2
    fingers.gesture([(left["x"] + left["width"] * 0.7, y), (right["x"] + right["width"] * 0.3, y)],
                    [(left["x"] + left["width"] * 0.4, y), (right["x"] + right["width"] * 0.6, y)])
    nothing_voted("one finger on each image")
    assert_same_view(views(page))
    assert not Judgment.objects.filter(campaign=world.campaign).exists()
    events = pointer_events(page)
    assert {event["kind"] for event in events} == {"touch"}
    assert "pointercancel" not in [event["type"] for event in events]

    # The control: a real vote cast next lands as the only row, for the pair that was on
    # screen through all the gestures; a vote sent by a gesture would have been there too.
    page.keyboard.press("1")
    shown_lease(page, other_than=lease)
    wait_outbox_empty(page)
    assert until(lambda: live_judgments(world.campaign).count() == 1)
    assert [str(j.lease_id) for j in Judgment.objects.filter(campaign=world.campaign)] == [lease]


def test_pinch_and_pan_on_tiled_images(touch_page):
    """Huge images are OpenSeadragon tiles (its own input handling off): the same gestures
    drive both viewports alike."""
    page = touch_page
    open_pair(page, prompts=1, sizes=((5000, 3000), (4500, 2700)), fmt="JPEG")
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)
    fingers = Fingers(page)
    box = page.locator(".pane-left .pane-view").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    start = page.evaluate(TILED_VIEWS)
    for side in ("left", "right"):
        assert start[side]["zoom"] == pytest.approx(1, rel=1e-6)
        assert [start[side]["u"], start[side]["v"]] == pytest.approx([0.5, 0.5], abs=1e-4)

    fingers.spread(centre, 90, 270)
    wait_zoom(page, "300%")
    zoomed = page.evaluate(TILED_VIEWS)
    for side in ("left", "right"):
        assert zoomed[side]["zoom"] == pytest.approx(3, rel=1e-4), side
        assert [zoomed[side]["u"], zoomed[side]["v"]] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert_only_touch(pointer_events(page))

    dx, dy = -80, 50
    fingers.gesture([centre], [(centre[0] + dx, centre[1] + dy)], steps=8)
    panned = page.evaluate(TILED_VIEWS)
    for side in ("left", "right"):
        # The centre moves against the finger by its path over the image's size on screen.
        zoom = panned[side]["zoom"]
        assert zoom == pytest.approx(3, rel=1e-4), side
        assert panned[side]["u"] == pytest.approx(0.5 - dx / (panned[side]["wide"] * zoom),
                                                   abs=1e-3), side
        assert panned[side]["v"] == pytest.approx(0.5 - dy / (panned[side]["high"] * zoom),
                                                  abs=1e-3), side
    assert panned["left"]["u"] == pytest.approx(panned["right"]["u"], abs=1e-4)
    assert panned["left"]["v"] == pytest.approx(panned["right"]["v"], abs=1e-4)
    assert_only_touch(pointer_events(page), fingers=1)
    assert page.evaluate(SCROLLED) == [0, 0, 1]
