"""Videos of different frame rates or lengths on one timeline (the rating page's player,
static/js/rate/video.js; docs/video.md, "The annotator page").

The rule under test: the shared timeline runs over the shortest duration of the videos shown
(an edit's source video included), in frames of the highest frame rate shown (the timeline's
rate, whichever video leads). The seek bar covers that whole duration, `.` and `,` move one
frame of that rate up to the shared end, the counter says "frame / frames · seconds" on it,
pause keeps the time (the middle of the frame on screen, never more than half a frame away),
playback without loop stops on the last shared frame (also after a seek or play on one of the
last frames, which Chromium marks `ended`), and every video's currentTime stays within one frame
of that rate of the leader's after play, pause, seek and step.

QA's case was a 24 fps 2 s clip leading an 8 fps 2 s clip: the bar said "16 / 16 · 1.53 s"
while the clip played on, the seek bar covered 0.67 s, a pause at 1.97 s put both videos at
0.65 s and `.` stayed on "16 / 16". Clips are small (160 x 96) and short, made with PyAV;
each frame carries its index in its pixels (tests/browser/videos.py), so the test reads which
frame every video shows. Served on the harness page of test_video_sync.py (no database).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pytest

from tests.browser.test_video_sync import open_player, settle, wait_shown
from tests.browser.videos import Clip, make_video

pytestmark = [pytest.mark.browser, pytest.mark.playback]

COUNTER = re.compile(r"^(\d+) / (\d+) · (\d+\.\d\d) s$")
SHOWN_DIGITS = 0.005  # the counter's seconds are rounded to 10 ms


@dataclass(frozen=True)
class Case:
    """Clips by pane (``source`` too for an edit), the leader being ``left``."""

    left: tuple[int, int]  # (fps, frames)
    right: tuple[int, int]
    source: tuple[int, int] | None = None

    def clips(self) -> dict[str, Clip]:
        sides = {"left": self.left, "right": self.right}
        if self.source:
            sides["source"] = self.source
        return {side: make_video(width=160, height=96, fps=fps, frames=frames, hue=37 * n)
                for n, (side, (fps, frames)) in enumerate(sides.items())}

    @property
    def shown(self) -> list[tuple[int, int]]:
        """(fps, frames) in the player's order: left (the leader), right, source."""
        return [clip for clip in (self.left, self.right, self.source) if clip]

    @property
    def rates(self) -> list[int]:
        return [fps for fps, _ in self.shown]

    @property
    def fps(self) -> int:
        """The timeline's rate: the highest shown."""
        return max(self.rates)

    @property
    def duration(self) -> float:
        """The shared duration: the shortest video's, in seconds."""
        return min(frames / fps for fps, frames in self.shown)

    @property
    def last(self) -> int:
        """The timeline's last frame: the last whose middle is inside the shared duration."""
        return math.ceil(self.duration * self.fps - 0.5) - 1


CASES = {
    # QA's case, both ways round: 2 s at 24 fps and 2 s at 8 fps.
    "24fps-leads-8fps": Case(left=(24, 48), right=(8, 16)),
    "8fps-leads-24fps": Case(left=(8, 16), right=(24, 48)),
    # Equal rates, different lengths: 2 s leading 1.5 s.
    "longer-leads-shorter": Case(left=(30, 60), right=(30, 45)),
    # An edit: three panes, the source (12 fps, 1.5 s) the shortest.
    "edit-source-shortest": Case(left=(8, 16), right=(24, 48), source=(12, 18)),
}


def bar(page) -> dict:
    """The seek bar's range and value and the counter's text."""
    return page.evaluate("() => { const seek = document.querySelector('.vid-seek');"
                         " return { max: Number(seek.max), value: Number(seek.value),"
                         " text: document.querySelector('.vid-time').textContent }; }")


def seek_to(page, frame: int) -> dict:
    page.eval_on_selector(".vid-seek", "(el, v) => { el.value = String(v);"
                          " el.dispatchEvent(new Event('input', {bubbles: true}));"
                          " el.dispatchEvent(new Event('change', {bubbles: true})); }", frame)
    return settle(page)


def assert_together(case: Case, state: dict, *, paused_at: int | None = None) -> None:
    """Every video within one frame of the timeline's rate of the leader; paused on timeline
    frame ``paused_at``: all at its middle, each showing its own frame at that time."""
    times = state["times"]
    assert max(times) - min(times) <= 1 / case.fps + 1e-6, state
    if paused_at is None:
        return
    middle = (paused_at + 0.5) / case.fps
    for time, (fps, frames) in zip(times, case.shown, strict=True):
        # On its last frame, Chromium may report a video's own duration as its time once its
        # decoder reached the end of the file (the frame shown is still that last frame).
        last = math.floor(middle * fps) == frames - 1
        assert abs(time - middle) <= 1e-3 or (last and abs(time - frames / fps) <= 1e-3), (
            paused_at, state)
    expected = [math.floor(middle * fps) for fps in case.rates]
    assert state["frames"] == expected, (paused_at, state)


def assert_counter(page, case: Case, state: dict, frame: int) -> None:
    """The counter shows timeline frame ``frame`` of all of them and the leader's time; the
    seek bar the same frame, over the whole shared duration."""
    shown = bar(page)
    assert shown["max"] == case.last and shown["value"] == frame, shown
    match = COUNTER.match(shown["text"])
    assert match, shown["text"]
    assert int(match[1]) == frame + 1 and int(match[2]) == case.last + 1, shown["text"]
    # A leader paused on its own last frame may report its duration (assert_together); the
    # counter then has the time of the video that plays on (paused: the frame's middle).
    times = (state["times"][0], (frame + 0.5) / case.fps)
    assert min(abs(float(match[3]) - time) for time in times) <= SHOWN_DIGITS + 1e-6, (
        shown["text"], state)


PAUSE_NOW = """() => {
  // The leader's time and the pause key in one task: nothing plays on in between.
  const player = window.harness.player;
  if (!player.playing) return null;
  const before = player.leader.currentTime;
  document.dispatchEvent(new KeyboardEvent('keydown', { key: ' ', bubbles: true }));
  return before;
}"""


@pytest.mark.parametrize("name", list(CASES))
def test_one_timeline_over_the_shared_duration(context, errors, name):
    case = CASES[name]
    page = open_player(context, case.clips())
    wait_shown(page)
    frame = 1 / case.fps
    assert page.evaluate("() => window.harness.player.videos.length") == len(case.rates)
    # The seek bar covers the whole shared duration, in frames of the highest rate.
    assert bar(page)["max"] == case.last
    assert (case.last + 1) / case.fps == pytest.approx(case.duration, abs=frame)
    assert_counter(page, case, settle(page), 0)

    # Played and paused (loop off) late in the clip: the time stays where it was, to the
    # middle of the frame on screen, never back to where a shorter frame count would put it.
    page.keyboard.press("l")
    page.keyboard.press("Space")
    assert_together(case, settle(page))
    sample = page.evaluate("() => window.harness.sampleDrift(6)")
    assert sample["dt"] <= frame + 1e-6, sample
    page.wait_for_function(
        f"() => window.harness.player.playing && window.harness.player.leader.currentTime"
        f" > {case.duration / 2}")
    before = page.evaluate(PAUSE_NOW)
    assert before is not None, "the clip ended before the pause"
    state = settle(page)
    after = state["times"][0]
    assert abs(after - before) <= frame / 2 + 1e-3, (before, after)
    at = math.floor(before * case.fps + 1e-6)
    # The time read in the pausing task is the media clock as that task saw it; the pause
    # stops the clock where it is by then, up to a 60 Hz frame later (a CI run paused 1 ms
    # before a boundary and landed on the next frame): so close to the next frame, that
    # frame is the one paused on, with every video at its middle all the same.
    if (at + 1) / case.fps - before < 1 / 60 and math.floor(after * case.fps + 1e-6) == at + 1:
        at += 1
    assert_together(case, state, paused_at=at)
    assert_counter(page, case, state, at)

    # `.` moves one frame of the timeline's rate up to the shared end, and no further; `,`
    # comes back.
    start = max(0, case.last - 4)
    state = seek_to(page, start)
    assert_together(case, state, paused_at=start)
    for expected in [*range(start + 1, case.last + 1), case.last]:
        page.keyboard.press(".")
        state = settle(page)
        assert_together(case, state, paused_at=expected)
        assert_counter(page, case, state, expected)
    page.keyboard.press(",")
    state = settle(page)
    assert_together(case, state, paused_at=case.last - 1)
    assert_counter(page, case, state, case.last - 1)

    # The seek bar's last position is the shared end; the first, the start.
    for target in (case.last, 0, case.last // 2):
        state = seek_to(page, target)
        assert_together(case, state, paused_at=target)
        assert_counter(page, case, state, target)

    # Without loop, playback stops on the last shared frame.
    seek_to(page, max(0, case.last - 6))
    page.keyboard.press("Space")
    page.wait_for_function("() => !window.harness.player.playing")
    state = settle(page)
    assert_together(case, state, paused_at=case.last)
    assert_counter(page, case, state, case.last)
    assert page.evaluate("() => window.__violations") == []
    assert errors == []


# QA's second case: the demo's video campaign shows two 8 fps clips.
# And a shorter clip leading a longer one: on its last frame, the leader stays paused while the
# other plays the rest of the shared duration.
END_CASES = {**CASES, "both-8fps": Case(left=(8, 16), right=(8, 16)),
             "shorter-leads-longer": Case(left=(30, 45), right=(30, 60))}

PLAY_TO_END = """(frame) => new Promise((resolve) => {
  // Seek through the bar while playing (as a click or a drag does: its `input`), or with no
  // frame press play, then watch every video's time at each animation frame until playback
  // is over.
  const player = window.harness.player;
  if (frame === null) {
    document.dispatchEvent(new KeyboardEvent('keydown', { key: ' ', bubbles: true }));
  } else {
    const seek = document.querySelector('.vid-seek');
    seek.value = String(frame);
    seek.dispatchEvent(new Event('input', { bubbles: true }));
    seek.dispatchEvent(new Event('change', { bubbles: true }));
  }
  let lowest = Infinity;
  const started = performance.now();
  const watch = () => {
    for (const video of player.videos) lowest = Math.min(lowest, video.currentTime);
    const over = !player.playing && !player.busy;
    // 8 s: four times the clips' length, should playback start again from the start.
    if (over || performance.now() - started > 8000) resolve({ lowest, over });
    else requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
})"""


@pytest.mark.parametrize("name", list(END_CASES))
def test_a_seek_near_the_end_while_playing_without_loop_stops_on_the_last_frame(
        context, errors, name):
    # QA: with loop off and playing, a seek to one of the last positions (the last frame of the
    # slower clip: 46, 47 or 48 of 48 at 24 fps beside 8 fps) played everything again from the
    # start ("5 / 48 · 0.18 s") before stopping: Chromium rewinds a video that has ended when
    # play() is called on it. The seek plays what is left from there, and stops on the last
    # frame, never going back towards the start.
    case = END_CASES[name]
    page = open_player(context, case.clips())
    wait_shown(page)
    frame = 1 / case.fps
    page.keyboard.press("l")  # loop off
    for target in (case.last, case.last - 1, case.last - 2, case.last - 3):
        page.keyboard.press("Space")
        page.wait_for_function("() => window.harness.player.playing"
                               " && !window.harness.player.busy")
        watched = page.evaluate(PLAY_TO_END, target)
        assert watched["over"], (target, watched)
        # Never more than a frame before where the seek put them (the start is far before).
        assert watched["lowest"] >= (target + 0.5) / case.fps - frame - 1e-3, (target, watched)
        state = settle(page)
        assert page.evaluate("() => window.harness.player.playing") is False
        assert_together(case, state, paused_at=case.last)
        assert_counter(page, case, state, case.last)
        for time in state["times"]:
            assert abs(time - case.duration) <= frame + 1e-3, (target, state)
        seek_to(page, case.last // 2)  # play again from the middle for the next target
    # Paused on one of the last frames, play goes on from there to the end; only from the
    # last frame does it start again from the first.
    for target in (case.last - 1, case.last - 2):
        seek_to(page, target)
        watched = page.evaluate(PLAY_TO_END, None)
        assert watched["over"], (target, watched)
        assert watched["lowest"] >= (target + 0.5) / case.fps - frame - 1e-3, (target, watched)
        state = settle(page)
        assert_together(case, state, paused_at=case.last)
        assert_counter(page, case, state, case.last)
    # The far right end of the bar, clicked while playing.
    page.keyboard.press("Space")
    page.wait_for_function("() => window.harness.player.playing && !window.harness.player.busy")
    box = page.locator(".vid-seek").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    page.wait_for_function("() => !window.harness.player.playing && !window.harness.player.busy")
    state = settle(page)
    assert_together(case, state, paused_at=case.last)
    assert_counter(page, case, state, case.last)
    assert page.evaluate("() => window.__violations") == []
    assert errors == []
