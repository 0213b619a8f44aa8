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
