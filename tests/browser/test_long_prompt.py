"""A prompt longer than the header's lines is marked as cut (a fade at its foot) until the
annotator has scrolled to its end; a short one is not."""

from __future__ import annotations

import pytest

from evalhub.prompts.models import Prompt
from tests.browser.conftest import login
from tests.browser.pages import shown_lease
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = ("a red cube on a blue sphere beside a green cone, " * 10).strip()


def _prompt(page) -> dict:
    return page.evaluate("""() => { const p = document.querySelector('#rate-prompt');
        return {text: p.textContent, classes: [...p.classList],
                hidden: p.scrollHeight - p.clientHeight}; }""")


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768},
                                      {"width": 800, "height": 900}])
def test_a_long_prompt_shows_that_it_goes_on_until_read_to_its_end(context, viewport):
    world = build_world(prompts=2, tiles=False, sizes=((512, 512), (512, 512)))
    Prompt.objects.filter(pk=world.prompts[0].pk).update(text=LONG)
    page = context.new_page()
    page.set_viewport_size(viewport)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    if _prompt(page)["text"] != LONG:  # the short prompt came first: vote it away
        page.keyboard.press("1")
        shown_lease(page, other_than=lease)
    page.wait_for_function(
        "() => document.querySelector('#rate-prompt').classList.contains('clipped')")
    shown = _prompt(page)
    assert shown["text"] == LONG and shown["hidden"] > 0
    assert "read-to-end" not in shown["classes"]

    page.eval_on_selector("#rate-prompt", "p => p.scrollTo(0, p.scrollHeight)")
    page.wait_for_function(
        "() => document.querySelector('#rate-prompt').classList.contains('read-to-end')")

    page.keyboard.press("2")  # the short prompt: nothing marked
    page.wait_for_function(
        "(long) => document.querySelector('#rate-prompt').textContent !== long", arg=LONG)
    page.wait_for_timeout(100)
    assert _prompt(page)["classes"] == ["rate-prompt"]
