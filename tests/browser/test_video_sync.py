"""The rating page's video player keeps two videos on one timeline (issue #18).

Two VP9 WebM clips made here with PyAV (each frame carries its own index in its pixels:
tests/browser/videos.py) are put into the rating page's panes by the page's own modules
(static/js/rate/video.js with zoom.js and stage.js) on a page served by the test
(tests/browser/video_harness.js, under the site's Content-Security-Policy). Then over 50
operations (play, pause, seek, frame step, speed) the two videos' currentTime values, read in
one task after each operation settles (and over a dozen frames of playback when it plays),
stay within one frame of each other; paused, both show the same frame, the one asked for.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage

from tests.browser.videos import Clip, make_video, measured_until, serve_bytes

pytestmark = [pytest.mark.browser, pytest.mark.playback]

HARNESS = Path(__file__).with_name("video_harness.js")
FPS = 30
OPERATIONS = 60
PLAY_SAMPLE_FRAMES = 12
RESYNC_FRAMES = 4  # static/js/rate/video.js
FIELDS = {"left": "left", "right": "right", "source": "source_image"}


def policy() -> str:
    """The site's Content-Security-Policy header, from settings (no inline script, no eval)."""
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def item(name: str, video: Clip) -> dict:
    """A task item as the rating API gives it for a video (the `video` key of issue #18)."""
    url = f"/video-sync/{name}.webm"
    return {"url": url, "width": video.width, "height": video.height, "tiles": None,
            "video": {"url": url, "poster": None, "fps": video.fps, "frames": video.frames,
                      "duration": video.duration, "width": video.width,
                      "height": video.height}}


def page_html(task: dict) -> str:
    pane = ('<figure class="pane pane-{side}" data-side="{side}"{hidden}><div class="pane-view">'
            '<img class="pane-img" alt="" draggable="false"><div class="pane-osd" hidden></div>'
            '<div class="pane-spinner"></div></div><div class="pane-error" hidden></div>'
            '<figcaption>{side}</figcaption></figure>')
    panes = "".join(pane.format(side=side, hidden=" hidden" if side == "source" else "")
                    for side in ("source", "left", "right"))
    task_json = json.dumps(task).replace("</", "<\\/")
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<link rel="stylesheet" href="/static/css/evalhub.css">'
        '<link rel="stylesheet" href="/static/css/rate.css">'
        '<link rel="stylesheet" href="/static/css/rate-video.css"></head>'
        '<body class="rate-body"><main><div id="rate-app" class="rate">'
        f'<section class="rate-head"></section><section class="rate-stage" id="rate-stage">{panes}'
        '</section><section class="rate-answers" id="answers"></section></div></main>'
        f'<script type="application/json" id="task">{task_json}</script>'
        '<script type="module" src="/video-sync/harness.js"></script></body></html>')


def clips() -> dict[str, Clip]:
    """A 320x180 left and a 256x256 right clip of 120 frames (4 s at 30 fps)."""
    return {"left": make_video(width=320, height=180, fps=FPS, frames=120, hue=0),
            "right": make_video(width=256, height=256, fps=FPS, frames=120, hue=90)}


class HeldVideos:
    """Requests for the named videos wait unanswered until ``release()`` (a slow server)."""

    def __init__(self, names=()):
        self.names = set(names)
        self.waiting: list = []

    def release(self) -> None:
        self.names = set()
        for answer in self.waiting:
            answer()
        self.waiting = []


def open_player(context, videos: dict[str, Clip], held: HeldVideos | None = None, *,
                source: bytes | None = None):
    """A page with the video stage showing ``videos`` (and those ``held`` names held): left,
    right, and a source video when ``videos`` has one, or the still PNG ``source``."""
    held = held or HeldVideos()
    task = {"lease": "video-sync", "prompt": "two clips", "source_image": None,
            **{FIELDS[side]: item(side, video) for side, video in videos.items()}}
    if source is not None:
        task["source_image"] = {"url": "/video-sync/source.png", "width": 256, "height": 144,
                                "tiles": None, "video": None}
    page = context.new_page()

    def handle(route) -> None:
        path = route.request.url.split("/video-sync/", 1)[1]
        if path == "":
            route.fulfill(status=200, body=page_html(task), headers={
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": policy()})
        elif path == "harness.js":
            route.fulfill(status=200, body=HARNESS.read_text(),
                          headers={"Content-Type": "text/javascript"})
        elif path == "source.png":
            route.fulfill(status=200, body=source, headers={"Content-Type": "image/png"})
        elif path.endswith(".webm"):
            data = videos[path.removesuffix(".webm")].data
            if path.removesuffix(".webm") in held.names:
                held.waiting.append(lambda: serve_bytes(route, data, "video/webm"))
            else:
                serve_bytes(route, data, "video/webm")
        else:
            route.fulfill(status=404, body="")

    page.route("**/video-sync/**", handle)
    # The browser's own favicon request would reach Django, and this test has no database.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=404, body=""))
    page.goto("/video-sync/")
    return page


def wait_shown(page) -> None:
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    assert page.evaluate("() => document.body.dataset.failed") == "[]"


@pytest.fixture
def player_page(context, errors):
    """The harness page with both clips shown (first frames drawn), nothing playing."""
    page = open_player(context, clips())
    wait_shown(page)
    yield page
    assert page.evaluate("() => window.__violations") == []
    assert errors == []


SETTLED = ("async () => { await window.harness.player.settled();"
           " return window.harness.measure(); }")


def at_rest(state: dict) -> bool:
    """Every paused video's pixels show the frame of its own time (its last frame from its
    duration on: Chromium may report the duration as the time there)."""
    for paused, time_s, fps, duration, frame in zip(
            state["paused"], state["times"], state["fps"], state["durations"], state["frames"],
            strict=True):
        last = math.ceil(duration * fps - 1e-6) - 1
        if paused and frame != min(last, math.floor(time_s * fps + 1e-6)):
            return False
    return True


def settle(page, timeout_s: float = 5) -> dict:
    """Wait for the operation to settle and, paused, for every video to come to rest (see
    :func:`at_rest`); return the videos' times and shown frames. The player ends an operation
    once every video presented its frame or after PRESENT_WAIT_MS (static/js/rate/video.js):
    on a loaded host a compositor can swap the frame in later, and what the tests check is
    where the videos come to rest."""
    return measured_until(page, lambda: page.evaluate(SETTLED), at_rest, timeout_s)


def test_two_videos_stay_within_one_frame_over_sixty_operations(player_page):
    page = player_page
    frame = 1 / FPS
    rng = random.Random(18)
    first = settle(page)
    assert first["fa"] == first["fb"] == 0  # the first frame is drawn before anything else
    operations = ["play", "pause", "seek", "step+", "step-", "speed", "play"]
    worst = {"dt": 0.0, "op": None, "df_playing": 0}
    counts: dict[str, int] = {}
    for number in range(OPERATIONS):
        op = operations[number % len(operations)] if number < len(operations) \
            else rng.choice(operations)
        counts[op] = counts.get(op, 0) + 1
        before = page.evaluate("() => window.harness.measure()")
        target = None
        if op == "play":
            if page.evaluate("() => window.harness.player.playing"):
                page.keyboard.press("Space")  # pause, to play again
                settle(page)
            page.keyboard.press("Space")
        elif op == "pause":
            if not page.evaluate("() => window.harness.player.playing"):
                page.keyboard.press("k")
                settle(page)
            page.keyboard.press("Space")
        elif op == "seek":
            target = rng.randrange(0, 120)
            # The seek bar, as a person drags it (its input event), and back to the page.
            page.eval_on_selector(".vid-seek", "(el, v) => { el.value = String(v);"
                                  " el.dispatchEvent(new Event('input', {bubbles: true}));"
                                  " el.dispatchEvent(new Event('change', {bubbles: true})); }",
                                  target)
        elif op in ("step+", "step-"):
            page.keyboard.press("." if op == "step+" else ",")
        elif op == "speed":
            rate = rng.choice(["0.25", "0.5", "0.75", "1", "1.5", "2"])
            page.select_option(".vid-rate", rate)
        state = settle(page)
        playing = page.evaluate("() => window.harness.player.playing")
        if playing:
            # Started together; on a loaded host one video may start a frame or two early, and
            # the player nudges it back within about 0.3 s of media time (rate/video.js), as
            # test_video_rating.py allows: they come within one frame, then are sampled.
            deadline = time.monotonic() + 3
            while abs(state["ta"] - state["tb"]) > frame and time.monotonic() < deadline:
                page.wait_for_timeout(100)
                state = settle(page)
            sample = page.evaluate(f"() => window.harness.sampleDrift({PLAY_SAMPLE_FRAMES})")
            dt = max(sample["dt"], abs(state["ta"] - state["tb"]))
            df = max(sample["df"], abs(state["fa"] - state["fb"]))
            worst["df_playing"] = max(worst["df_playing"], df)
        else:
            dt, df = abs(state["ta"] - state["tb"]), abs(state["fa"] - state["fb"])
            # Paused: both show one frame, the one the operation asked for.
            assert state["fa"] == state["fb"], (op, state)
            if op in ("step+", "step-") and before["paused"][0]:
                expected = before["fa"] + (1 if op == "step+" else -1)
                assert state["fa"] == min(119, max(0, expected)), (op, before, state)
            if op == "seek":
                assert state["fa"] == target, (target, state)
        if dt > worst["dt"]:
            worst.update(dt=dt, op=op)
        assert dt <= frame, f"operation {number} ({op}): |tA - tB| = {dt * 1000:.1f} ms"
        # The frames drawn while playing follow each video's own decoder and compositor: on a
        # loaded machine one may show a frame or two later than the other although their
        # times agree. Reported; only a gross gap (a resync's worth) fails.
        assert df <= RESYNC_FRAMES, f"operation {number} ({op}): frames shown differ by {df}"
    corrections = page.evaluate("() => window.harness.player.corrections")
    print(f"\nvideo sync over {OPERATIONS} operations {counts}: worst |tA - tB| = "
          f"{worst['dt'] * 1000:.2f} ms ({worst['dt'] / frame:.2f} frame, after {worst['op']}),"
          f" worst shown-frame difference while playing {worst['df_playing']} (paused: 0);"
          f" corrections {corrections}")
    assert set(counts) == set(operations)


CONTROLLER = """async () => {
  const { SyncedVideos } = await import("/static/js/rate/video.js");
  // Stand-ins for <video>: the controller reads and writes only these fields.
  const fake = (t) => ({ currentTime: t, duration: 4, paused: false, seeking: false,
    ended: false, readyState: 4, playbackRate: 1, muted: false, loop: false,
    addEventListener() {}, removeEventListener() {}, pause() {} });
  const frame = 1 / 30;
  const run = (rate, drift) => {
    const player = new SyncedVideos({ rate });
    const leader = fake(2), follower = fake(2 - drift * frame);
    const clip = { fps: 30, frames: 120 };
    player.attach([leader, follower], [clip, clip]);
    player.playing = true;
    player.rate = rate;
    leader.playbackRate = follower.playbackRate = rate;
    let restarted = null;
    player.restart = (t) => { restarted = t; };
    player.correct();
    return { rate: follower.playbackRate, restarted, ...player.corrections };
  };
  return { still: run(1, 0.2), behind: run(1, 2), ahead: run(1, -2), slowBehind: run(0.25, 2),
           far: run(1, 6), farAhead: run(0.5, -6) };
}"""


def test_the_drift_correction_nudges_the_follower_and_restarts_both_when_far(player_page):
    """Within a quarter frame nothing changes; up to 4 frames the follower's rate is nudged
    towards the leader (at most 15 % of the speed); beyond, both start again together at the
    leader's time."""
    result = player_page.evaluate(CONTROLLER)
    assert result["still"]["rate"] == 1 and result["still"]["nudges"] == 0
    assert 1 < result["behind"]["rate"] <= 1.15 and result["behind"]["nudges"] == 1
    assert 0.85 <= result["ahead"]["rate"] < 1
    assert 0.25 < result["slowBehind"]["rate"] <= 0.25 * 1.15
    for far in (result["far"], result["farAhead"]):
        assert far["resyncs"] == 1 and far["restarted"] == pytest.approx(2.0)
        assert far["nudges"] == 0


FIRST_FRAME = """async () => {
  const { firstFrame } = await import("/static/js/rate/video.js");
  // A stand-in <video> whose seek lands 20 ms after currentTime is set, as Chromium's does:
  // seeking until then, readyState back to HAVE_ENOUGH_DATA, then "seeked".
  const fake = ({ readyState, seeking }) => {
    const video = new EventTarget();
    Object.assign(video, { readyState, seeking, error: null, seeks: 0 });
    let time = 0;
    Object.defineProperty(video, "currentTime", {
      get: () => time,
      set: (t) => {
        time = t;
        video.seeking = true;
        video.seeks += 1;
        setTimeout(() => {
          video.seeking = false;
          video.readyState = 4;
          video.dispatchEvent(new Event("seeked"));
        }, 20);
      },
    });
    return video;
  };
  const within = (promise) => Promise.race(
    [promise, new Promise((resolve) => { setTimeout(() => resolve("never"), 2000); })]);
  // Prepared, and its own first-frame seek still in flight: loadeddata has fired already.
  const seeking = fake({ readyState: 1, seeking: true });
  // Still loading: its loadeddata is to come.
  const loading = fake({ readyState: 0, seeking: false });
  setTimeout(() => {
    loading.readyState = 2;
    loading.dispatchEvent(new Event("loadeddata"));
  }, 20);
  const [fromSeek, fromLoad] = await Promise.all(
    [within(firstFrame(seeking, 30)), within(firstFrame(loading, 30))]);
  return { fromSeek, fromLoad, seekTime: seeking.currentTime, seeks: seeking.seeks,
           loadSeeks: loading.seeks };
}"""


def test_a_pair_shown_while_its_prepared_video_is_still_seeking_comes_up(player_page):
    """The next pair's videos are prepared (loaded, then seeked to their first frame) while
    the annotator looks at this one. A vote cast while that seek is in flight showed the next
    pair with its video's readyState held under HAVE_CURRENT_DATA by the seek, after its
    ``loadeddata`` had fired: the page waited for a second ``loadeddata`` that never comes,
    and the pair never came up (seen on a loaded host). Its first frame is now taken from the
    seek's ``seeked``; a video still loading waits for its ``loadeddata`` as before."""
    result = player_page.evaluate(FIRST_FRAME)
    assert result["fromSeek"] is True and result["fromLoad"] is True, result
    assert result["seekTime"] == pytest.approx(0.5 / 30) and result["seeks"] == 1
    assert result["loadSeeks"] == 1


def test_a_follower_pushed_off_comes_back_within_a_frame(player_page):
    """While playing, the right video is moved 8 frames ahead behind the player's back (a
    decoder that jumped): the player brings it back to the left one's time."""
    page = player_page
    frame = 1 / FPS
    page.keyboard.press("Space")
    settle(page)
    page.evaluate("() => { const v = window.harness.player.videos[1];"
                  " v.currentTime = v.currentTime + 8 / 30; }")
    page.wait_for_function("() => { const p = window.harness.player;"
                           " return p.corrections.resyncs + p.corrections.nudges > 0; }")
    settle(page)
    sample = page.evaluate(f"() => window.harness.sampleDrift({PLAY_SAMPLE_FRAMES})")
    assert sample["dt"] <= frame
    assert page.evaluate("() => window.harness.player.playing")


def test_playback_waits_for_both_videos_and_so_do_the_votes(context, errors):
    """The right video's file is held back: the stage is not shown (the rating page keeps its
    votes off until then) and Space plays nothing, not even the left video that could; once
    the file arrives, the pair is shown and both play together."""
    held = HeldVideos({"right"})
    page = open_player(context, clips(), held)
    while not held.waiting:  # the right video asked for, not answered
        page.wait_for_timeout(50)
    page.wait_for_function("() => window.harness.player.videos.length === 2"
                           " && window.harness.player.videos[0].readyState >= 2")
    page.keyboard.press("Space")
    page.wait_for_timeout(500)  # long enough for the left video to start, had it been let
    assert page.evaluate("() => document.body.dataset.ready") is None
    left = page.evaluate("() => { const v = window.harness.player.videos[0];"
                         " return { paused: v.paused, t: v.currentTime }; }")
    assert left["paused"] and left["t"] < 1 / FPS
    held.release()
    wait_shown(page)
    state = settle(page)
    assert state["paused"] == [False, False]
    # Two decoders starting at once on a loaded machine may start a few milliseconds apart;
    # the drift correction brings them within one frame while both keep playing (the bound
    # after each operation is the sixty-operation test's).
    page.wait_for_function(
        f"() => {{ const m = window.harness.measure(); return Math.abs(m.ta - m.tb) <= 1 / {FPS}"
        " && !m.paused[0] && !m.paused[1]; }", timeout=5000)
    assert page.evaluate("() => window.__violations") == [] and errors == []


def zoom_state(page) -> dict:
    """Each shown pane's zoom transform and the shared view's zoom."""
    return page.evaluate("""() => ({
      zoom: window.harness.view.state.zoom,
      transforms: Object.fromEntries([...document.querySelectorAll('.pane:not([hidden])')]
        .map((p) => [p.dataset.side, (p.querySelector('.pane-video') && p.dataset.kind === 'video'
          ? p.querySelector('.pane-video') : p.querySelector('.pane-img')).style.transform])),
    })""")


@pytest.mark.parametrize("source", ["video", "picture"])
def test_an_edit_shows_its_source_beside_the_pair_zoomed_and_played_with_it(
        context, errors, source):
    """An edit's source, a video (played on the pair's timeline) or a still picture, is shown
    beside the two outputs; the wheel over one video zooms every pane, videos and picture."""
    videos = clips()
    still = None
    if source == "video":
        videos["source"] = make_video(width=256, height=144, fps=FPS, frames=120, hue=40)
    else:
        out = io.BytesIO()
        PILImage.new("RGB", (256, 144), (200, 120, 40)).save(out, format="PNG")
        still = out.getvalue()
    page = open_player(context, videos, source=still)
    wait_shown(page)
    assert page.is_visible(".pane-source")
    expected = 3 if source == "video" else 2
    assert page.evaluate("() => window.harness.player.videos.length") == expected
    if source == "picture":
        assert page.evaluate("() => document.querySelector('.pane-source .pane-img')"
                             ".naturalWidth") == 256

    page.keyboard.press("Space")
    state = settle(page)
    assert state["paused"] == [False] * expected
    page.keyboard.press("Space")
    state = settle(page)
    assert len(set(state["times"])) == 1 and len(set(state["frames"])) == 1

    fit = zoom_state(page)
    box = page.locator(".pane-left .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function("() => window.harness.view.state.zoom > 1.5")
    zoomed = zoom_state(page)
    assert set(zoomed["transforms"]) == {"source", "left", "right"}
    for side, transform in zoomed["transforms"].items():
        assert transform != fit["transforms"][side]
        scale = float(re.search(r"scale\(([\d.]+)\)", transform).group(1))
        assert scale == pytest.approx(zoomed["zoom"], rel=1e-4)  # one zoom for every pane
    assert page.evaluate("() => window.__violations") == [] and errors == []
