"""A video campaign on the real rating page (issue #18): the pair's renditions play in sync in
the image panes, with the same keys and guarantees as images. No vote counts before both
videos' first frames are drawn; Space, `,` `.` and the seek bar move both videos together
(within one frame, the same frame when paused); the vote keys still vote, and the next video
pair comes up. Videos are made with PyAV (tests/browser/videos.py: each frame carries its
index), stored as an import stores them and given renditions as the worker writes them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.models import Judgment, Lease, TaskKind
from evalhub.prompts.models import Prompt
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.browser import videos
from tests.browser.conftest import login
from tests.browser.pages import WATCH_VIOLATIONS, HeldRequests, outbox, shown_lease, until
from tests.browser.videos import make_video, measure_script
from tests.browser.world import SECRET_NAMES, build_world, live_judgments
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.playback,
              pytest.mark.django_db(transaction=True)]

FPS = 30
FRAMES = 60
ANSWER_BUTTONS = ".criterion button[data-answer]"
BAR = ".rate-video-bar"
PHONE = {"width": 390, "height": 844}

MEASURE = measure_script(".pane:not([hidden]) .pane-video")

SETTLED = """(want) => {
  const bar = document.querySelector('.rate-video-bar');
  const videos = [...document.querySelectorAll('.pane:not([hidden]) .pane-video')];
  return bar.dataset.state === want && videos.every((v) => !v.seeking)
    && videos.every((v) => v.paused === (want === 'paused'));
}"""


def _store_clip(number: int, fps: int = FPS, frames: int = FRAMES):
    clip = make_video(width=320 if number % 2 else 256, height=180 if number % 2 else 256,
                      fps=fps, frames=frames, hue=number * 37)
    name = f"{SECRET_NAMES[2]}-{number}.webm"
    return video_store(data=clip.data, info=video_inspect(clip.data, name=name), name=name)


def videos_for_outputs(world, *, source_videos: bool = False,
                       clips: list[tuple[int, int]] | None = None):
    """The world's runs become video runs: a run's Image row points at the video and its
    poster, as an import makes it; with ``source_videos`` every prompt is a video edit (its
    source video, the poster as its still source, as the prompt import makes it); renditions
    written, as the worker writes them. ``clips``: each run's (fps, frames), in the order of
    ``world.runs`` (default FPS and FRAMES for all)."""
    GenerationRun.objects.filter(pk__in=[run.pk for run in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    shape = dict(zip([run.pk for run in world.runs], clips or [(FPS, FRAMES)] * len(world.runs),
                     strict=True))
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        video = _store_clip(number, *shape[image.run_id])
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    if source_videos:
        for number, prompt in enumerate(world.prompts):
            video = _store_clip(100 + number)
            Prompt.objects.filter(pk=prompt.pk).update(source_video=video,
                                                       source_image=video.poster)
    assert blobs_make_video_renditions(list(VideoBlob.objects.values_list("pk", flat=True)))
    return world


def build_video_world(prompts: int = 3, *, source_videos: bool = False):
    """The browser world's two secretly named runs, their outputs videos."""
    return videos_for_outputs(build_world(prompts=prompts), source_videos=source_videos)


def is_video_file(request) -> bool:
    return "/media/video/" in request.url


# SETTLED and MEASURE in one page task: read in two, the player could pause every video in
# between (it holds them together while one waits for data), and a "playing" page was measured
# paused (a fresh-clone run: three videos paused at frame 13 right after the bar said playing).
SETTLED_MEASURE = f"(want) => ({SETTLED})(want) ? ({MEASURE})() : null"


def settle(page, want: str) -> dict:
    return page.wait_for_function(SETTLED_MEASURE, arg=want).json_value()


def settle_showing(page, frames: list[int] | Callable[[list[int]], bool] | None = None,
                   timeout_s: float = 5) -> dict:
    """:func:`tests.browser.videos.settle_showing` on this page's shown panes."""
    return videos.settle_showing(page, SETTLED, MEASURE, frames=frames, timeout_s=timeout_s)


def test_a_video_pair_plays_in_sync_and_is_voted_like_images(context, errors, traffic):
    world = build_video_world()
    page = context.new_page()
    held = HeldRequests(page, "**/*", where=is_video_file)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/",
          wait_until="domcontentloaded")
    held.wait_for(2)  # both renditions asked for, neither answered
    for key in ("1", "2", "3", "4"):
        page.keyboard.press(key)
    for button in page.query_selector_all(ANSWER_BUTTONS):
        button.dispatch_event("click")
    page.wait_for_timeout(600)  # long enough for a vote to leave the outbox, had one been cast
    assert page.get_attribute("#rate-app", "data-ready") == "0"
    assert all(button.is_disabled() for button in page.query_selector_all(ANSWER_BUTTONS))
    assert outbox(page) == [] and not Judgment.objects.filter(campaign=world.campaign).exists()

    held.release()
    lease = shown_lease(page)
    assert page.locator(".pane[data-kind=video]:not([hidden])").count() == 2
    assert page.is_visible(BAR)
    frame = 1 / FPS
    worst = 0.0
    state = settle(page, "playing")  # a shown pair plays, both together
    # Space pauses both on one frame; `.` and `,` step both; the seek bar moves both.
    page.keyboard.press("Space")
    state = settle_showing(page)
    assert len(set(state["frames"])) == 1 and len(set(state["times"])) == 1
    start = state["frames"][0]
    steps = [(".", 1), (".", 1), (",", -1), (".", 1)]
    for key, delta in steps:
        page.keyboard.press(key)
        start = min(FRAMES - 1, max(0, start + delta))
        state = settle_showing(page, [start, start])
        assert state["frames"] == [start, start], (key, state)
        worst = max(worst, abs(state["times"][0] - state["times"][1]))
    page.eval_on_selector(".vid-seek", "(el) => { el.value = '42';"
                          " el.dispatchEvent(new Event('input', {bubbles: true}));"
                          " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    state = settle_showing(page, [42, 42])
    assert state["frames"] == [42, 42]
    page.screenshot(path="/tmp/rate-video.png")  # to look at the layout
    page.select_option(".vid-rate", "0.5")
    page.keyboard.press("Space")
    state = settle(page, "playing")
    worst = max(worst, abs(state["times"][0] - state["times"][1]))
    assert worst <= frame
    assert page.evaluate("() => [...document.querySelectorAll('.pane-video')]"
                         ".filter((v) => v.src).every((v) => v.playbackRate > 0.4"
                         " && v.playbackRate < 0.6)")

    # Space with no control focused plays or pauses (on a focused button it presses it, as
    # everywhere: tests/browser/test_rating_keyboard_access.py).
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("Space")
    settle(page, "paused")
    page.keyboard.press("Space")
    settle(page, "playing")
    # The vote keys still vote (Space and the frame keys did not), and the next pair is videos.
    assert outbox(page) == [] and not Judgment.objects.filter(campaign=world.campaign).exists()
    page.keyboard.press("2")
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    shown_lease(page, other_than=lease)
    assert page.locator(".pane[data-kind=video]:not([hidden])").count() == 2
    settle(page, "playing")
    assert live_judgments(world.campaign).count() == 1

    # Blind: no run or model name in anything the page received.
    for url, body in traffic.bodies:
        for secret in SECRET_NAMES:
            assert secret not in body and secret not in url
    assert page.evaluate("() => window.__violations") == []
    assert errors == []


def test_a_click_on_the_seek_bar_gives_the_keys_back_to_the_page(context, errors):
    """The seek bar clicked with the mouse, while the videos play or on its thumb: focus leaves
    the bar, so the page's keys work at once. A focused bar took them all (the page ignores
    keys aimed at an input), and its `change`, which gave focus back, never came when the
    value at release was the value at press: a click on the thumb, or (while playing) one
    whose seek drew the bar at the frame on screen before the bar had focus."""
    world = build_video_world(prompts=2)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    settle(page, "playing")
    seek = page.locator(".vid-seek").bounding_box()
    middle = seek["y"] + seek["height"] / 2
    page.mouse.click(seek["x"] + seek["width"] * 0.75, middle)
    settle(page, "playing")
    assert not page.evaluate("() => document.activeElement.matches('input, select')")
    page.keyboard.press("Space")  # pauses both: the playback keys are the page's
    settle(page, "paused")

    # On the thumb, paused at the middle frame (where the thumb's own width cancels out).
    page.eval_on_selector(".vid-seek", "(el) => { el.value = '30';"
                          " el.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert settle_showing(page, [30, 30])["frames"] == [30, 30]
    page.mouse.click(seek["x"] + seek["width"] * 30 / (FRAMES - 1), middle)
    page.wait_for_timeout(100)
    assert not page.evaluate("() => document.activeElement.matches('input, select')")
    assert settle_showing(page, [30, 30])["frames"] == [30, 30]  # no seek: it was there
    page.keyboard.press("Space")
    settle(page, "playing")
    page.keyboard.press("2")  # and so are the vote keys
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    shown_lease(page, other_than=lease)
    assert errors == [] and page.evaluate("() => window.__violations") == []


def test_a_video_that_fails_says_so_and_retry_brings_it_back(context, errors):
    """A rendition the server fails to send: its pane says the video did not load, with Retry
    and Report; no vote counts; Retry loads it (under a fresh URL) and the pair plays."""
    world = build_video_world(prompts=1)
    page = context.new_page()
    failing = {"on": True}

    def fail_videos(route) -> None:
        if failing["on"] and is_video_file(route.request):
            route.fulfill(status=500, body="server error")
        else:
            route.continue_()

    page.route("**/*", fail_videos)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    page.wait_for_selector(".pane-left .pane-error:not([hidden])")
    page.wait_for_selector(".pane-right .pane-error:not([hidden])")
    assert "left video did not load" in page.inner_text(".pane-left .pane-error")
    assert page.get_attribute("#rate-app", "data-ready") == "0"
    page.keyboard.press("1")
    assert all(button.is_disabled() for button in page.query_selector_all(ANSWER_BUTTONS))

    failing["on"] = False
    for side in ("left", "right"):
        page.click(f".pane-{side} .retry-btn")
    shown_lease(page)
    settle(page, "playing")
    assert page.locator(".pane-error:not([hidden])").count() == 0
    # The browser logs the failed loads themselves; nothing else went wrong.
    assert [e for e in errors if "Failed to load resource" not in e] == []
    assert page.evaluate("() => window.__violations") == []


def test_a_phone_shows_both_videos_the_playback_bar_and_the_answers_on_one_screen(
        browser, live_server):
    """390 x 844, touch: both videos, the bar (seek bar on its own row) and the four answers
    fit without scrolling; a tap on Play pauses both, a tap on an answer votes."""
    world = build_video_world(prompts=2)
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, has_touch=True,
                                  is_mobile=True, device_scale_factor=3)
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
        lease = shown_lease(page)
        settle(page, "playing")
        page.screenshot(path="/tmp/rate-video-phone.png")
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate("() => document.scrollingElement.scrollHeight") <= PHONE["height"]
        for selector in (".pane-left .pane-view", ".pane-right .pane-view", BAR, ".vid-seek",
                         *(f".answer-btn[data-answer={a}]" for a in ("left", "right"))):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector
            assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], selector
        page.tap(".vid-play")
        settle(page, "paused")
        page.tap(".answer-btn[data-answer=left]")
        assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
        assert errors == [] and page.evaluate("() => window.__violations") == []
    finally:
        page.wait_for_timeout(300)  # the last prefetch, before the test database is flushed
        context.close()


def _paused_together(page) -> dict:
    """Pause (Space), then step and seek: every shown video on the same frame each time."""
    page.keyboard.press("Space")
    state = settle_showing(page)
    count = len(state["frames"])
    assert len(set(state["frames"])) == 1 and len(set(state["times"])) == 1, state
    start = state["frames"][0]
    for key, delta in ((".", 1), (".", 1), (",", -1)):
        page.keyboard.press(key)
        start = min(FRAMES - 1, max(0, start + delta))
        state = settle_showing(page, [start] * count)
        assert state["frames"] == [start] * count, (key, state)
    page.eval_on_selector(".vid-seek", "(el) => { el.value = '42';"
                          " el.dispatchEvent(new Event('input', {bubbles: true}));"
                          " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    state = settle_showing(page, [42] * count)
    assert state["frames"] == [42] * count and len(set(state["times"])) == 1, state
    return state


def test_an_edits_source_video_plays_beside_the_pair_on_its_timeline(context, errors):
    """A video-editing prompt: its source video is shown in the source pane and plays with the
    pair, paused, stepped and seeked with it (the same frame in all three)."""
    world = build_video_world(prompts=2, source_videos=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    for side in ("source", "left", "right"):
        assert page.locator(f".pane-{side}[data-kind=video]:not([hidden])").count() == 1, side
    state = settle(page, "playing")
    assert len(state["frames"]) == 3 and not any(state["paused"])
    _paused_together(page)
    page.screenshot(path="/tmp/rate-video-source.png")  # to look at the layout

    page.keyboard.press("1")
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    shown_lease(page, other_than=lease)
    assert page.locator(".pane-source[data-kind=video]:not([hidden])").count() == 1
    assert len(settle(page, "playing")["frames"]) == 3
    assert errors == [] and page.evaluate("() => window.__violations") == []


def test_a_best_of_k_video_task_plays_its_k_videos_in_sync(context, errors, traffic):
    """Best of three video runs: the grid's three panes play their videos as one (the pair's
    player and bar), the picks still vote, and the next task plays too."""
    world = videos_for_outputs(build_campaign(
        runs=3, prompts=2, annotators=1, run_names=[*SECRET_NAMES[2:], "run-nebula-gamma"],
        model_name=SECRET_NAMES[0], name="Best clip", task_kind=TaskKind.BEST_OF_K, k=3,
        judgments_per_pair=1))
    page = context.new_page()
    held = HeldRequests(page, "**/*", where=is_video_file)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/",
          wait_until="domcontentloaded")
    held.wait_for(3)  # all three renditions asked for; no pick counts before they are drawn
    page.keyboard.press("1")
    page.wait_for_timeout(300)
    assert page.get_attribute("#rate-app", "data-ready") == "0" and outbox(page) == []
    held.release()
    lease = shown_lease(page)
    assert page.locator(".grid-pane[data-kind=video]:not([hidden])").count() == 3
    assert page.is_visible(BAR)
    state = settle(page, "playing")
    assert len(state["frames"]) == 3 and not any(state["paused"])
    _paused_together(page)
    page.screenshot(path="/tmp/rate-video-grid.png")  # to look at the layout
    page.keyboard.press("Space")
    state = settle(page, "playing")
    # Resumed together; on a loaded host one video may start a frame early, and the player
    # nudges it back within about 0.3 s of media time (rate/video.js): they come within one
    # frame of each other and stay there.
    deadline = time.monotonic() + 3
    while max(state["times"]) - min(state["times"]) > 1 / FPS and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        state = settle(page, "playing")
    assert max(state["times"]) - min(state["times"]) <= 1 / FPS, state

    page.keyboard.press("2")  # the playback keys left the picks alone
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    order = Lease.objects.get(pk=lease).order
    assert live_judgments(world.campaign).get(lease_id=lease).ranking == [order[1]]
    shown_lease(page, other_than=lease)
    assert page.locator(".grid-pane[data-kind=video]:not([hidden])").count() == 3
    assert len(settle(page, "playing")["frames"]) == 3
    for url, body in traffic.bodies:
        for secret in SECRET_NAMES:
            assert secret not in body and secret not in url
    assert errors == [] and page.evaluate("() => window.__violations") == []


# Slot 0's video leads; its time and the pause key in one task (nothing plays on in between).
PAUSE_NOW = """() => {
  const leader = document.querySelector(".grid-pane[data-slot='0'] .pane-video");
  const before = leader.currentTime;
  document.body.dispatchEvent(new KeyboardEvent("keydown", { key: " ", bubbles: true }));
  return before;
}"""


def test_best_of_k_videos_of_different_rates_and_lengths_share_one_timeline(context, errors):
    """Best of three: 24 fps for 2 s, 8 fps for 2 s, 30 fps for 1.5 s, in whatever slots the
    task draws (whichever leads). One timeline (docs/video.md, "The annotator page"): frames
    of the highest rate (30 fps) over the shortest duration (1.5 s), so the seek bar has 45
    positions; pause keeps the time (the middle of its 30 fps frame); `.` steps 1/30 s up to
    the last frame and no further; every video within 1/30 s of the others, each showing its
    own frame at that time."""
    rates = [24, 8, 30]
    world = videos_for_outputs(build_campaign(
        runs=3, prompts=1, annotators=1, run_names=[*SECRET_NAMES[2:], "run-nebula-gamma"],
        model_name=SECRET_NAMES[0], name="Rates", task_kind=TaskKind.BEST_OF_K, k=3,
        judgments_per_pair=1), clips=[(24, 48), (8, 16), (30, 45)])
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    settle(page, "playing")
    page.wait_for_function("() => document.querySelector(\".grid-pane[data-slot='0']"
                           " .pane-video\").currentTime > 0.4")
    before = page.evaluate(PAUSE_NOW)
    state = settle(page, "paused")
    frame = math.floor(before * 30 + 1e-6)
    # Slot 0 need not be the player's clock (whichever video leads), and the videos are kept
    # within one frame of it: the pause lands on slot 0's frame or the next (a loaded CI run
    # read 0.432 s in slot 0 while the clock was already in frame 13).
    paused = round(state["times"][0] * 30 - 0.5)
    assert paused in (frame, frame + 1), (before, state)
    assert paused < 44  # paused before the end: the pause, not the end of playback
    assert state["times"] == pytest.approx([(paused + 0.5) / 30] * 3, abs=1e-3), (before, state)
    assert page.get_attribute(".vid-seek", "max") == "44"

    page.eval_on_selector(".vid-seek", "(el) => { el.value = '42';"
                          " el.dispatchEvent(new Event('input', {bubbles: true}));"
                          " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    settle(page, "paused")
    for frame in (43, 44, 44):
        page.keyboard.press(".")
        middle = (frame + 0.5) / 30
        expected = sorted(math.floor(middle * fps) for fps in rates)
        state = settle_showing(page, lambda seen, expected=expected: sorted(seen) == expected)
        assert sorted(state["frames"]) == expected, state
        assert max(state["times"]) - min(state["times"]) <= 1 / 30, state
        assert page.inner_text(".vid-time").startswith(f"{frame + 1} / 45 · "), frame
    assert errors == [] and page.evaluate("() => window.__violations") == []
