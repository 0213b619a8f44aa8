"""Keyboard and screen-reader use of the rating page (the accessibility QA pass, WCAG 2.1 AA).

- Single-key shortcuts can be turned off with a visible switch (2.1.4), kept in the browser;
  off, no key votes, skips or undoes, the buttons still work and no key hint is shown.
- Space and Enter on a focused button activate that button, never the videos' play/pause
  (2.1.1); Space elsewhere still plays and pauses.
- A rank pick or an undo that disables the focused button hands focus on to the next Pick
  button, or the stage, never to the page's body (2.4.3); each pick and each pick undone is
  announced, and a picked button's name says its rank (4.1.3).
- With reduced motion asked for, videos wait for Play (2.3.3).
- Best of K on a narrow screen keeps the images' numbers (the instructions name images by
  them); the grid's report link is readable on its dark pane (1.4.3).

Fails on any script error or Content-Security-Policy violation of the pages.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus
from tests.browser.conftest import login
from tests.browser.pages import said, shown_lease, until
from tests.browser.test_best_of_k import _world as best_of_4_world
from tests.browser.test_undo_after_reload import same_pair
from tests.browser.test_video_rating import BAR, SETTLED, build_video_world
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUSED = "() => document.activeElement === document.body ? 'body' : document.activeElement.id"
FOCUSED_SLOT = "() => document.activeElement.dataset.slot ?? null"


def focus_nothing(page) -> None:
    """Keys go to the page itself, as after a click on an image."""
    page.evaluate("() => document.activeElement.blur()")


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed CSS colours ("rgb(r, g, b)")."""
    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(foreground), luminance(background)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_single_key_shortcuts_can_be_turned_off_and_stay_off(context, errors):
    world = build_world(prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    switch = page.get_by_role("checkbox", name="Keyboard shortcuts")
    expect(switch).to_be_checked()  # on by default: annotators rate by key
    expect(page.locator(".answer-btn kbd").first).to_be_visible()

    switch.uncheck()
    said(page, "Keyboard shortcuts off")
    expect(page.locator(".answer-btn kbd").first).to_be_hidden()
    expect(page.locator("#skip-btn")).not_to_have_attribute("aria-keyshortcuts", re.compile("."))
    focus_nothing(page)
    for key in ("1", "2", "t", "b", "s", "ArrowLeft", "u", "Backspace"):
        page.keyboard.press(key)
    # Nothing voted, skipped or undone: the buttons still work, on the same pair.
    page.click(".answer-btn[data-answer=left]")
    second = shown_lease(page, other_than=lease)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert live_judgments(world.campaign).get(lease_id=lease).outcome == expected_outcome(
        lease, "left")
    assert live_judgments(world.campaign).count() == 1
    assert not Lease.objects.filter(status=LeaseStatus.SKIPPED).exists()

    # The choice outlives a reload; turned on again, a key votes.
    page.reload()
    assert shown_lease(page) == second
    expect(switch).not_to_be_checked()
    focus_nothing(page)
    page.keyboard.press("1")
    switch.check()
    expect(page.locator(".answer-btn kbd").first).to_be_visible()
    focus_nothing(page)
    page.keyboard.press("2")
    shown_lease(page, other_than=second)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=second).exists())
    assert live_judgments(world.campaign).get(lease_id=second).outcome == expected_outcome(
        second, "right")
    assert errors == [] and page.evaluate("window.__violations") == []


@pytest.mark.playback
def test_space_activates_the_focused_button_on_a_video_pair(context, errors):
    world = build_video_world(prompts=3)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.wait_for_function(SETTLED, arg="playing")

    # On 1:1, Space zooms to 1:1; the videos play on.
    page.focus("#zoom-native")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    assert page.get_attribute(BAR, "data-state") != "paused"

    # On an answer, Space answers.
    page.focus(".answer-btn[data-answer=tie]")
    page.keyboard.press("Space")
    second = shown_lease(page, other_than=lease)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert live_judgments(world.campaign).get(lease_id=lease).outcome == expected_outcome(
        lease, "tie")

    # Focus on nothing: Space is play/pause, as before.
    page.wait_for_function(SETTLED, arg="playing")
    focus_nothing(page)
    page.keyboard.press("Space")
    page.wait_for_function(SETTLED, arg="paused")
    assert page.get_attribute("#rate-app", "data-lease") == second

    # A vote by mouse leaves the focus on its button, unseen: Space then plays the next pair,
    # it does not cast the same answer on it.
    page.click(".answer-btn[data-answer=left]")
    third = shown_lease(page, other_than=second)
    page.wait_for_function(SETTLED, arg="playing")
    page.keyboard.press("Space")
    page.wait_for_function(SETTLED, arg="paused")
    assert page.get_attribute("#rate-app", "data-lease") == third
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=second).exists())
    assert not live_judgments(world.campaign).filter(lease_id=third).exists()
    assert errors == [] and page.evaluate("window.__violations") == []


@pytest.mark.playback
def test_videos_wait_for_play_when_reduced_motion_is_asked_for(context, errors):
    world = build_video_world(prompts=3)
    page = context.new_page()
    page.emulate_media(reduced_motion="reduce")
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)  # the page starts playback, if at all, before it is ready
    page.wait_for_function(SETTLED, arg="paused")
    focus_nothing(page)
    page.keyboard.press("Space")
    page.wait_for_function(SETTLED, arg="playing")

    page.keyboard.press("1")  # the next pair waits for Play too
    shown_lease(page, other_than=lease)
    page.wait_for_function(SETTLED, arg="paused")
    assert errors == [] and page.evaluate("window.__violations") == []


def test_rank_picks_are_announced_and_focus_moves_to_the_next_pick(context, errors):
    world = best_of_4_world(rank_all=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)

    page.focus(".grid-pick[data-slot='0']")
    page.keyboard.press("Enter")
    said(page, "Image 1 ranked 1st")
    assert page.evaluate(FOCUSED_SLOT) == "1"  # the picked button is disabled: focus moves on
    expect(page.get_by_role("button", name=re.compile("ranked 1st"))).to_have_count(1)
    assert "ranked 1st" in page.locator(".grid-pick[data-slot='0']").evaluate(
        "(button) => button.textContent")

    page.focus(".grid-pick[data-slot='3']")
    page.keyboard.press("Space")
    said(page, "Image 4 ranked 2nd")
    assert page.evaluate(FOCUSED_SLOT) == "1"  # the next one free, from the first again

    page.focus("#undo-btn")
    page.keyboard.press("Enter")
    said(page, "Rank 2 undone")
    expect(page.get_by_role("button", name=re.compile("ranked 2nd"))).to_have_count(0)
    page.keyboard.press("Enter")
    said(page, "Rank 1 undone")
    # Nothing left to undo: Undo is disabled, and focus is on a Pick button, not lost.
    expect(page.locator("#undo-btn")).to_be_disabled()
    page.wait_for_function("() => document.activeElement.classList.contains('grid-pick')")

    for key in ("2", "4", "1"):
        page.keyboard.press(key)
    shown_lease(page, other_than=lease)
    said(page, "Ranking saved")
    assert until(lambda: Judgment.objects.filter(lease_id=lease).exists())
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_control_pressed_with_the_mouse_is_not_pressed_again_by_space_or_enter(
        context, errors):
    # The clicked control keeps the focus while the next pair comes up unseen: Space or Enter
    # there would vote on that pair with the answer clicked for the one before.
    world = build_world(prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    page.click(".answer-btn[data-answer=left]")
    second = shown_lease(page, other_than=first)
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.keyboard.press("2")  # the second pair's vote, by key: Space and Enter cast none
    shown_lease(page, other_than=second)
    assert until(lambda: live_judgments(world.campaign).count() == 2)
    assert {str(j.lease_id): j.outcome for j in live_judgments(world.campaign)} == {
        first: expected_outcome(first, "left"), second: expected_outcome(second, "right")}

    # The switch pressed by its words: Space does not turn it back.
    switch = page.get_by_role("checkbox", name="Keyboard shortcuts")
    page.get_by_text("Keyboard shortcuts", exact=True).click()
    expect(switch).not_to_be_checked()
    page.keyboard.press("Space")
    expect(switch).not_to_be_checked()
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_pick_made_with_the_mouse_is_not_followed_by_one_made_by_space(context, errors):
    world = best_of_4_world(rank_all=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    page.click(".grid-pick[data-slot='0']")
    said(page, "Image 1 ranked 1st")
    assert page.evaluate(FOCUSED_SLOT) == "1"  # handed on, still the mouse's focus
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.keyboard.press("4")
    said(page, "Image 4 ranked 2nd")  # not 3rd: Space and Enter picked nothing
    expect(page.get_by_role("button", name=re.compile("ranked"))).to_have_count(2)
    assert errors == [] and page.evaluate("window.__violations") == []


def test_focus_stays_on_the_page_after_undoing_the_last_vote(context, errors):
    world = build_world(prompts=4)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.keyboard.press("1")
    after = shown_lease(page, other_than=lease)
    page.focus("#undo-btn")
    page.keyboard.press("Enter")
    assert same_pair(shown_lease(page, other_than=after), lease)
    said(page, "Vote undone")
    expect(page.locator("#undo-btn")).to_be_disabled()
    page.wait_for_function(f"() => ({FOCUSED})() === 'rate-stage'")
    page.keyboard.press("Tab")  # on from the stage, not from the top of the page
    assert page.evaluate("() => document.activeElement.closest('#rate-stage') !== null")
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_narrow_grid_keeps_its_numbers_and_a_readable_report_link(context, errors):
    world = best_of_4_world()
    page = context.new_page()
    page.set_viewport_size({"width": 600, "height": 800})  # a phone, or 200 % zoom
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    for slot in range(4):
        number = page.locator(f".grid-pick[data-slot='{slot}'] kbd")
        expect(number).to_be_visible()
        expect(number).to_have_text(str(slot + 1))
    expect(page.locator("#skip-btn kbd")).to_be_hidden()  # the other key hints go

    link = page.locator(".grid-pane .report-btn").first
    expect(link).to_be_enabled()
    colour = link.evaluate("(el) => getComputedStyle(el).color")
    pane = page.locator(".grid-pane .pane-view").first.evaluate(
        "(el) => getComputedStyle(el).backgroundColor")
    assert contrast(colour, pane) >= 4.5, (colour, pane)
    assert errors == [] and page.evaluate("window.__violations") == []
