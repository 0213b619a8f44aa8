"""A reload in the middle of a screen that takes several answers (a pair asked several
criteria, a rank-all ranking) keeps the answers given so far: the same task comes back with
them shown, the annotator goes on from there, and one vote is stored with every answer. The
kept answers (sessionStorage, per tab) belong to one lease shown in one order: they are never
applied to another task, and they go once the vote is cast, the task skipped, or the answer
taken back."""

from __future__ import annotations

import json

import pytest

from evalhub.campaigns.models import Judgment, TaskKind
from tests.browser.conftest import login
from tests.browser.pages import (
    HeldRequests,
    is_image_file,
    shown_lease,
    until,
    wait_next_prefetched,
    wait_outbox_empty,
)
from tests.browser.world import SECRET_NAMES, build_world, expected_outcome, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CRITERIA = ["overall", "alignment", "aesthetics"]

# The kept answers in the tab's sessionStorage, by key (a JS expression).
KEPT = ("Object.fromEntries(Object.keys(sessionStorage).filter(k => k.includes('.draft.'))"
        ".map(k => [k, sessionStorage.getItem(k)]))")


def kept(page) -> dict[str, str]:
    return page.evaluate(f"() => {KEPT}")


def answered(page) -> dict[str, str]:
    """The answer shown as given for each criterion of the pair on screen."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.criterion')]
        .flatMap(row => [...row.querySelectorAll('[aria-pressed=true]')]
            .map(button => [row.dataset.criterion, button.dataset.answer])))""")


def active_criterion(page) -> str:
    return page.get_attribute(".criterion.active", "data-criterion")


def ranks(page) -> dict[int, str]:
    """The rank badge shown on each picked slot of the grid on screen."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.grid-pane')]
        .filter(pane => !pane.querySelector('.grid-rank').hidden)
        .map(pane => [pane.dataset.slot, pane.querySelector('.grid-rank').textContent]))""")


def stored_answers(lease_id: str) -> dict[str, str]:
    return dict(Judgment.objects.filter(lease_id=lease_id, retracted_at__isnull=True)
                .values_list("criterion", "outcome"))


def vote_ids(lease_id: str) -> set:
    return set(Judgment.objects.filter(lease_id=lease_id).values_list("client_id", flat=True))


def test_a_reload_between_criteria_keeps_the_answers_given(context, errors):
    world = build_world(prompts=3, criteria=CRITERIA)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.keyboard.press("1")
    page.click(".criterion[data-criterion=aesthetics] [data-answer=tie]")
    assert page.get_attribute("#rate-app", "data-lease") == lease  # not a vote yet

    page.reload()
    assert shown_lease(page) == lease
    assert answered(page) == {"overall": "left", "aesthetics": "tie"}
    assert active_criterion(page) == "alignment"

    # U takes back the last answer given, restored or not; a reload then keeps only the rest.
    page.keyboard.press("u")
    assert answered(page) == {"overall": "left"}
    page.reload()
    assert shown_lease(page) == lease
    assert answered(page) == {"overall": "left"}
    assert active_criterion(page) == "alignment"

    # The keys go on with the questions left.
    page.keyboard.press("2")
    page.keyboard.press("b")
    shown_lease(page, other_than=lease)
    wait_outbox_empty(page)
    assert until(lambda: len(stored_answers(lease)) == 3)
    page.wait_for_timeout(300)  # a second vote would have landed by now
    given = {"overall": "left", "alignment": "right", "aesthetics": "both_bad"}
    assert stored_answers(lease) == {c: expected_outcome(lease, a) for c, a in given.items()}
    assert len(vote_ids(lease)) == 1
    assert Judgment.objects.count() == 3
    assert kept(page) == {}
    assert errors == []


def test_u_while_the_pair_comes_back_takes_back_its_answer_not_the_last_vote(context, errors):
    world = build_world(prompts=3, criteria=CRITERIA)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    voted = shown_lease(page)
    for key in "111":
        page.keyboard.press(key)
    lease = shown_lease(page, other_than=voted)
    wait_outbox_empty(page)
    page.keyboard.press("2")

    # The images held: the pair is back with its answer shown, not drawn yet.
    held = HeldRequests(page, "**/*", where=is_image_file)
    page.reload(wait_until="domcontentloaded")
    held.wait_for(2)
    page.wait_for_function(f"() => document.querySelector('#rate-app').dataset.lease === "
                           f"'{lease}'")
    assert answered(page) == {"overall": "right"}
    page.keyboard.press("u")
    page.wait_for_function("() => !document.querySelector('[aria-pressed=true]')")
    held.release()
    assert shown_lease(page) == lease
    assert answered(page) == {}
    assert kept(page) == {}
    page.wait_for_timeout(500)  # an undo of the vote would have reached the server by now
    assert page.get_attribute("#rate-app", "data-lease") == lease
    assert not Judgment.objects.filter(lease_id=voted, retracted_at__isnull=False).exists()
    assert errors == []


def test_a_reload_in_a_rank_all_ranking_keeps_the_picks(context, errors):
    run_names = ["run-nebula-alpha", "run-nebula-beta", "run-nebula-gamma", "run-nebula-delta"]
    world = build_campaign(
        runs=4, prompts=3, annotators=1, run_names=run_names, model_name=SECRET_NAMES[0],
        image_bytes=lambda p, r: picture(p * 4 + r, (512 + 64 * r, 512)),
        name="Rank four", task_kind=TaskKind.BEST_OF_K, k=4, rank_all=True,
        judgments_per_pair=1)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.keyboard.press("2")
    page.click(".grid-pick[data-slot='3']")

    page.reload()
    assert shown_lease(page) == lease
    assert ranks(page) == {"1": "#1", "3": "#2"}
    assert page.is_disabled(".grid-pick[data-slot='1']")
    assert page.is_enabled(".grid-pick[data-slot='0']")
    assert page.is_enabled("#undo-btn")  # the restored picks can be taken back

    page.keyboard.press("1")  # the third pick completes the ranking; slot 2 is last
    shown_lease(page, other_than=lease)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=lease).exists())
    page.wait_for_timeout(300)
    judgment = Judgment.objects.get(lease_id=lease)
    order = judgment.lease.order
    assert judgment.ranking == [order[slot] for slot in (1, 3, 0, 2)]
    assert Judgment.objects.count() == 1
    assert kept(page) == {}
    assert errors == []


def test_kept_answers_go_with_a_skip_and_never_reach_another_task(context, errors):
    world = build_world(prompts=4, criteria=CRITERIA)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    skipped = shown_lease(page)
    page.keyboard.press("1")
    assert list(kept(page)) != []

    # A skip: the next pair starts with nothing answered, before and after a reload.
    page.keyboard.press("s")
    lease = shown_lease(page, other_than=skipped)
    assert answered(page) == {}
    assert kept(page) == {}
    page.reload()
    assert shown_lease(page) == lease
    assert answered(page) == {}

    # Answers kept for this pair, copied by hand under the next pair's lease: that pair shows
    # other images, so they do not apply to it.
    page.keyboard.press("t")
    behind = wait_next_prefetched(page, shown=lease)
    [(key, value)] = kept(page).items()
    assert key.endswith(f".draft.{lease}")
    assert "overall" in value and "tie" in value
    assert all(name not in value for name in SECRET_NAMES)
    page.evaluate("([key, value]) => sessionStorage.setItem(key, value)",
                  [key.replace(lease, behind), value])
    page.keyboard.press("2")
    page.keyboard.press("b")
    assert shown_lease(page, other_than=lease) == behind
    assert answered(page) == {}
    assert active_criterion(page) == "overall"
    assert kept(page) == {}
    page.reload()
    assert shown_lease(page) == behind
    assert answered(page) == {}

    # An entry that cannot be read, or that names answers this page never offers, is ignored.
    draft_key = key.replace(lease, behind)
    for junk in ["{not json", json.dumps({"v": 1, "choices": {"answers": [["overall", "x"]]}}),
                 json.dumps([1, 2])]:
        page.evaluate("([key, value]) => sessionStorage.setItem(key, value)", [draft_key, junk])
        page.reload()
        assert shown_lease(page) == behind
        assert answered(page) == {}
        assert active_criterion(page) == "overall"

    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("1")
    shown_lease(page, other_than=behind)
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.count() == 6)
    assert stored_answers(lease) == {c: expected_outcome(lease, a) for c, a in
                                     {"overall": "tie", "alignment": "right",
                                      "aesthetics": "both_bad"}.items()}
    assert set(stored_answers(behind).values()) == {expected_outcome(behind, "left")}
    assert not Judgment.objects.filter(lease_id=skipped).exists()
    assert errors == []
