"""A prompt longer than the header's lines is marked as cut (a fade at its foot) until the
annotator has scrolled to its end; a short one is not. A right-to-left prompt is shown
right to left, isolated from the page around it (docs/accessibility.md)."""

from __future__ import annotations

import pytest

from evalhub.prompts.models import Prompt
from tests.browser.conftest import login
from tests.browser.pages import shown_lease
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = ("a red cube on a blue sphere beside a green cone, " * 10).strip()
HEBREW = "שלום עולם 123."  # shown as "123 עולם שלום." in a left-to-right paragraph


def _prompt(page) -> dict:
    return page.evaluate("""() => { const p = document.querySelector('#rate-prompt');
        const style = getComputedStyle(p);
        return {text: p.textContent, classes: [...p.classList],
                hidden: p.scrollHeight - p.clientHeight,
                direction: style.direction, bidi: style.unicodeBidi}; }""")


def _assert_own_direction(page, shown: dict) -> None:
    """The Hebrew prompt runs right to left, the English one left to right, each isolated;
    so does the campaign's name beside it."""
    assert (shown["direction"], shown["bidi"]) == (
        "rtl" if shown["text"] == HEBREW else "ltr", "isolate")
    assert page.eval_on_selector(".rate-campaign", "e => getComputedStyle(e).unicodeBidi"
                                 ) == "isolate"


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768},
                                      {"width": 800, "height": 900}])
def test_a_long_prompt_shows_that_it_goes_on_until_read_to_its_end(context, viewport):
    world = build_world(prompts=2, tiles=False, sizes=((512, 512), (512, 512)))
    Prompt.objects.filter(pk=world.prompts[0].pk).update(text=LONG)
    Prompt.objects.filter(pk=world.prompts[1].pk).update(text=HEBREW)
    page = context.new_page()
    page.set_viewport_size(viewport)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    if _prompt(page)["text"] != LONG:  # the short prompt came first: vote it away
        _assert_own_direction(page, _prompt(page))
        page.keyboard.press("1")
        shown_lease(page, other_than=lease)
    page.wait_for_function(
        "() => document.querySelector('#rate-prompt').classList.contains('clipped')")
    shown = _prompt(page)
    assert shown["text"] == LONG and shown["hidden"] > 0
    _assert_own_direction(page, shown)
    assert "read-to-end" not in shown["classes"]

    page.eval_on_selector("#rate-prompt", "p => p.scrollTo(0, p.scrollHeight)")
    page.wait_for_function(
        "() => document.querySelector('#rate-prompt').classList.contains('read-to-end')")

    page.keyboard.press("2")  # the short prompt: nothing marked
    page.wait_for_function(
        "(long) => document.querySelector('#rate-prompt').textContent !== long", arg=LONG)
    page.wait_for_timeout(100)
    shown = _prompt(page)
    assert shown["classes"] == ["rate-prompt"]
    if shown["text"] == HEBREW:
        _assert_own_direction(page, shown)
