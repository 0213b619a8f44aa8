"""Between keypresses the rating page is idle: once a pair is drawn nothing on it animates. An
animation that never ends, even of a transparent element (the loading spinner, opacity 0), keeps
Chromium's compositor producing a frame at every vsync, and with no frame-rate limit as fast as
it can: CPU taken from the keypress's handler and the next pair's decoding on a small machine
(bench/rating_page.py). The spinner spins while a pair is on its way, and only then."""

from __future__ import annotations

import pytest

from tests.browser.pages import open_with_first_pair_held, shown_lease
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The names of the page's animations that are running now.
RUNNING = ("() => document.getAnimations().filter((a) => a.playState === 'running')"
           ".map((a) => a.animationName || a.constructor.name)")


def test_the_spinner_spins_while_a_pair_loads_and_nothing_animates_once_it_is_drawn(context):
    world = build_world(prompts=3)
    page, held = open_with_first_pair_held(context, world)
    assert "rate-spin" in page.evaluate(RUNNING)

    held.release()
    first = shown_lease(page)
    assert page.evaluate(RUNNING) == []

    page.keyboard.press("1")
    shown_lease(page, other_than=first)  # the prefetched pair, swapped in by the key
    assert page.evaluate(RUNNING) == []


# Every opacity the page gives a prepared image (`.pane-next`) inline, in order, by element.
WATCH_PREPARED = """() => {
  window.__prepared = new Map();
  new MutationObserver((changes) => {
    for (const { target } of changes) {
      if (!target.classList.contains('pane-next')) continue;
      const seen = window.__prepared.get(target) || [];
      seen.push(target.style.opacity);
      window.__prepared.set(target, seen);
    }
  }).observe(document.querySelector('#rate-app'),
             { subtree: true, attributes: true, attributeFilter: ['style'] });
}"""
DRAWN_THEN_TRANSPARENT = ("() => [...window.__prepared.values()].filter((seen) =>"
                          " seen.includes('0.0001') && seen.at(-1) === '').length")
OPACITIES = ("(selector) => [...document.querySelectorAll(selector)]"
             ".filter((img) => img.closest('.pane:not([hidden])'))"
             ".map((img) => [getComputedStyle(img).opacity, img.style.opacity])")


def test_the_next_pair_is_drawn_once_invisibly_then_transparent_and_a_vote_shows_it_opaque(
        context):
    # Chromium rasterises no tile of a layer at opacity 0: the next pair's images are drawn for
    # a few frames at 1e-4, so that the vote's frame has nothing left to rasterise, and then
    # go back to the stylesheet's 0, so that later frames draw only the shown pair.
    world = build_world(prompts=3)
    page, held = open_with_first_pair_held(context, world)
    page.evaluate(WATCH_PREPARED)
    held.release()
    first = shown_lease(page)

    page.wait_for_function(f"() => ({DRAWN_THEN_TRANSPARENT})() >= 2")
    assert page.evaluate(OPACITIES, ".pane-next") == [["0", ""], ["0", ""]]
    assert page.evaluate(OPACITIES, ".pane-img") == [["1", ""], ["1", ""]]

    page.keyboard.press("1")
    shown_lease(page, other_than=first)
    assert page.evaluate(OPACITIES, ".pane-img") == [["1", ""], ["1", ""]]
