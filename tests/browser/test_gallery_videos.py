"""The gallery on two runs of videos (issue #18), in Chromium: each pair's two renditions play
as one on the rating page's synced player (static/js/rate/video.js, which the gallery imports),
with its bar and keys: Space plays and pauses both, `,` `.` step both by a frame, and both
show the same frame when paused; ← → / J K still step through the pairs. Frames carry their
index in their pixels (tests/browser/videos.py), so the test reads what each video shows.

Fails on any console error or Content-Security-Policy violation of the page.
"""

from __future__ import annotations

import pytest

from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.browser.conftest import login
from tests.browser.pages import GALLERY_SHOWN
from tests.browser.videos import make_video, measure_script, settle_showing
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.playback,
              pytest.mark.django_db(transaction=True)]

FPS = 30
FRAMES = 45

SHOWN = GALLERY_SHOWN

MEASURE = measure_script(".pane[data-kind=video] .pane-video")

SETTLED = """(want) => {
  const bar = document.querySelector('.rate-video-bar');
  const videos = [...document.querySelectorAll('.pane[data-kind=video] .pane-video')];
  return videos.length === 2 && bar.dataset.state === want
    && videos.every((v) => !v.seeking && v.paused === (want === 'paused'));
}"""


def _video_runs(prompts: int, clips: tuple[tuple[int, int], ...] = ((FPS, FRAMES),) * 2):
    """Two runs whose outputs are videos (as an import stores them), renditions written;
    ``clips`` gives each run's (fps, frames), in the order of ``world.runs``."""
    world = build_world(prompts=prompts)
    GenerationRun.objects.filter(pk__in=[run.pk for run in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    shape = {run.pk: clip for run, clip in zip(world.runs, clips, strict=True)}
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        fps, frames = shape[image.run_id]
        clip = make_video(width=256, height=144, fps=fps, frames=frames, hue=number * 37)
        name = f"clip-{number}.webm"
        video = video_store(data=clip.data, info=video_inspect(clip.data, name=name), name=name)
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    assert blobs_make_video_renditions(list(Image.objects.values_list("video", flat=True)))
    return world


def _settle(page, want: str) -> dict:
    page.wait_for_function(SETTLED, arg=want)
    return page.evaluate(MEASURE)


def _in_sync(state: dict) -> None:
    """Paused: the same time and the same frame in both videos."""
    left, right = state["times"]
    assert abs(left - right) < 1 / FPS
    assert state["frames"][0] == state["frames"][1]


def test_a_video_pair_plays_in_sync_in_the_gallery(context, errors):
    world = _video_runs(prompts=2)
    left_run, right_run = world.runs
    gallery = f"/gallery/{world.campaign.project_id}/"
    page = context.new_page()
    login(page, world.scientist.username, gallery)
    page.goto(f"{gallery}?a={left_run.pk}&b={right_run.pk}")
    page.wait_for_function(SHOWN, arg=1)

    # Both renditions (never the originals) start together once both first frames are drawn.
    playing = _settle(page, "playing")
    assert all("/media/video/" in src and src.endswith(".webm") for src in playing["sources"])
    assert len(set(playing["sources"])) == 2
    assert page.locator(".rate-video-bar").is_visible()
    # On a 1280 x 720 screen the bar and the prompt under it are in view with the videos.
    page.set_viewport_size({"width": 1280, "height": 720})
    bar = page.locator(".rate-video-bar").bounding_box()
    prompt = page.locator("#gallery-prompt").bounding_box()
    assert bar["y"] + bar["height"] <= 720 and prompt["y"] + prompt["height"] <= 720

    # Paused and stepped, both come to rest on the same frame (read from their pixels, once
    # each compositor has swapped the frame in: see settle_showing).
    page.keyboard.press(" ")
    paused = settle_showing(page, SETTLED, MEASURE)
    _in_sync(paused)
    frame = paused["frames"][0]
    for key, delta in ((".", 1), (".", 1), (",", -1)):
        page.keyboard.press(key)
        frame = min(FRAMES - 1, max(0, frame + delta))
        stepped = settle_showing(page, SETTLED, MEASURE, frames=[frame, frame])
        _in_sync(stepped)

    # J and K step through the pairs (K is not the player's play key here); the next pair's
    # videos are other files, started again in sync.
    page.keyboard.press("j")
    page.wait_for_function(SHOWN, arg=2)
    second = _settle(page, "playing")
    assert set(second["sources"]).isdisjoint(playing["sources"])
    page.keyboard.press("k")
    page.wait_for_function(SHOWN, arg=1)
    back = _settle(page, "playing")
    assert sorted(back["sources"]) == sorted(playing["sources"])
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_a_videos_own_page_plays_it_and_its_gallery_link_shows_it_beside_the_other_run(
        context, errors):
    world = _video_runs(prompts=1)
    left_run, right_run = world.runs
    image = Image.objects.select_related("video").get(run=left_run)
    page = context.new_page()
    login(page, world.scientist.username, f"/gallery/images/{image.pk}/")
    page.wait_for_function("() => document.querySelector('#image-app').dataset.ready === '1'")
    # The rendition (the gallery's per-project URL), not the poster alone: it plays.
    page.evaluate("() => document.querySelector('#image-video').play()")
    page.wait_for_function("() => document.querySelector('#image-video').currentTime > 0.2")
    source = page.evaluate("() => document.querySelector('#image-video').currentSrc")
    assert "/media/video/" in source and source.endswith(".webm")
    # The original file, as imported, for scientists and owners (the media view's rule).
    original = page.request.get(page.get_attribute("#video-original", "href"))
    assert original.status == 200
    assert original.body() == image.video.file.open("rb").read()

    # The breadcrumb's "Gallery" names this run only: it is shown beside the other video run.
    with page.expect_navigation():
        page.click(".crumbs a:text('Gallery')")
    page.wait_for_function(SHOWN, arg=1)
    assert "This field is required" not in page.content()
    assert page.input_value("#id_a") == str(left_run.pk)
    assert page.input_value("#id_b") == str(right_run.pk)
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_a_pair_of_two_frame_rates_shares_one_timeline_in_the_gallery(context, errors):
    """A 24 fps run beside an 8 fps run, 2 s each (the rating page's rule, docs/video.md "The
    annotator page"): the seek bar covers the 2 s in frames of 24 fps, `.` steps one 24 fps
    frame up to the last, and both videos stay on one time, each showing its own frame."""
    world = _video_runs(prompts=1, clips=((24, 48), (8, 16)))
    left_run, right_run = world.runs
    gallery = f"/gallery/{world.campaign.project_id}/"
    page = context.new_page()
    login(page, world.scientist.username, gallery)
    page.goto(f"{gallery}?a={left_run.pk}&b={right_run.pk}")
    page.wait_for_function(SHOWN, arg=1)
    _settle(page, "playing")
    page.keyboard.press(" ")
    _settle(page, "paused")
    assert page.get_attribute(".vid-seek", "max") == "47"
    page.eval_on_selector(".vid-seek", "(el) => { el.value = '45';"
                          " el.dispatchEvent(new Event('input', {bubbles: true}));"
                          " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    state = settle_showing(page, SETTLED, MEASURE, frames=[45, 15])
    assert state["frames"] == [45, 15]
    assert state["times"] == pytest.approx([45.5 / 24] * 2, abs=1e-3)
    for frame in (46, 47, 47):
        page.keyboard.press(".")
        state = settle_showing(page, SETTLED, MEASURE, frames=[frame, 15])
        assert state["frames"] == [frame, 15], state
        assert abs(state["times"][0] - state["times"][1]) < 1 / 24
        # On its last frame Chromium may report a video's duration as its time.
        assert page.inner_text(".vid-time") in (f"{frame + 1} / 48 · {(frame + 0.5) / 24:.2f} s",
                                                f"{frame + 1} / 48 · 2.00 s")
    assert page.evaluate("window.__violations") == []
    assert errors == []
