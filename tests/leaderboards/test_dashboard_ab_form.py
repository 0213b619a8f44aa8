"""The campaign dashboard's A/B form and the counts it words: a bad pick of runs keeps the
filters and is said next to the form; the counts and the ranking's count column read right for
pair and best-of-K campaigns (docs/leaderboards.md, "K-wise votes")."""

import re
from datetime import UTC, datetime

import pytest

from evalhub.campaigns.models import TaskKind
from evalhub.leaderboards.results import ABTest
from evalhub.leaderboards.text import ab_detail, run_count_column
from tests.builders import build_campaign, logged_in, rank_every_set
from tests.leaderboards.helpers import cast, simulate_votes

pytestmark = pytest.mark.django_db


def _page(world, **params):
    response = logged_in(world.scientist).get(f"/dashboard/campaigns/{world.campaign.pk}/", params)
    assert response.status_code == 200
    return response


@pytest.fixture
def aligned():
    world = build_campaign(runs=3, prompts=4, annotators=2, criteria=["overall", "alignment"])
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)}, criterion="alignment")
    return world


def test_the_same_run_twice_keeps_the_filters_and_says_so_next_to_the_ab_form(aligned):
    run = aligned.runs[0]
    response = _page(aligned, criterion="alignment", ab_a=run.id, ab_b=run.id)
    html = response.content.decode()
    assert response.context["board"].criterion == "alignment"
    assert '<option value="alignment" selected>' in html
    assert "showing the unfiltered leaderboard" not in html
    assert "ab must be" not in html and "ab=" not in html
    found = re.search(r'<p class="error" id="ab-error">(.*?)</p>', html)
    assert found and found.group(1) == "Pick two different runs."
    # Beside the A/B form (after its pickers), not at the top of the page.
    assert html.index('id="ab_b"') < html.index('id="ab-error"') < html.index("<h2>Metrics")
    # The pickers keep the runs that were picked.
    assert f'<option value="{run.id}" selected>' in html.split('id="ab_b"')[1].split("</select>")[0]


def test_a_run_value_that_is_no_run_keeps_the_filters_too(aligned):
    response = _page(aligned, criterion="alignment", ab_a="x", ab_b=aligned.runs[1].id)
    html = response.content.decode()
    assert response.context["board"].criterion == "alignment"
    assert re.search(r'id="ab-error">Pick two runs of this leaderboard\.<', html)


def test_an_id_of_no_run_is_tested_and_answered_as_the_api_answers_it(aligned):
    html = _page(aligned, ab_a="999999999", ab_b=aligned.runs[1].id).content.decode()
    assert 'id="ab-error"' not in html
    assert "runs [999999999] are not part of this campaign" in html


@pytest.mark.parametrize("raw", ["9" * 25, "\u00b2", "\u0661", "-3", "3.0"])
def test_what_cannot_be_an_id_is_no_run_of_the_leaderboard(aligned, raw):
    # The form, the API and the command read ids by one rule (core.converters.object_id).
    html = _page(aligned, ab_a=raw, ab_b=aligned.runs[1].id).content.decode()
    assert re.search(r'id="ab-error">Pick two runs of this leaderboard\.<', html)


def test_a_bad_filter_still_resets_to_the_unfiltered_board_with_its_message(aligned):
    html = _page(aligned, criterion="zzz").content.decode()
    assert "Unknown criterion" in html and "showing the unfiltered leaderboard" in html
    assert 'id="ab-error"' not in html


def test_the_api_keeps_its_parameter_level_message(api, aligned):
    api.force_authenticate(aligned.scientist)
    run = aligned.runs[0]
    response = api.get(f"/api/v1/campaigns/{aligned.campaign.pk}/leaderboard/",
                       {"ab": f"{run.id},{run.id}"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("ab must be two different run ids")
    assert response.json()["code"] == "ab_same_run"


def _ab(wins_a: float, wins_b: float, ties: float) -> ABTest:
    return ABTest(run_a=1, run_b=2, run_a_name="a1k", run_b_name="a2k", wins_a=wins_a,
                  wins_b=wins_b, ties=ties, n=wins_a + wins_b + ties, p_b_better=0.5,
                  always_valid_p=1.0, alpha=0.05, decision="keep_rating", message="")


def test_the_ab_counts_use_one_plural_rule():
    assert ab_detail(_ab(2, 1, 1)).startswith("1 win for a2k, 2 wins for a1k, 1 tie; ")
    assert ab_detail(_ab(1, 0, 2)).startswith("0 wins for a2k, 1 win for a1k, 2 ties; ")
    # Weighted votes (the "weight" quality mode) are fractions, rounded to 2 decimals.
    assert ab_detail(_ab(1.0, 1.5, 0.333333)).startswith(
        "1.5 wins for a2k, 1 win for a1k, 0.33 ties; ")
    assert ab_detail(_ab(0, 0, 0)).endswith("anytime-valid, so you may check after every vote")


def test_the_page_words_the_ab_counts():
    world = build_campaign(runs=2, prompts=4, annotators=1)
    run_a, run_b = world.runs
    # image a's run wins "a"; the four tasks give run_b 1 win, run_a 2, and 1 tie.
    wanted = {0: run_a, 1: run_a, 2: run_b}
    for index, task in enumerate(world.tasks):
        winner = wanted.get(index)
        outcome = "tie" if winner is None else ("a" if task.image_a.run_id == winner.id
                                                 else "b")
        cast(task, world.annotator, outcome, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    html = _page(world, ab_a=run_a.id, ab_b=run_b.id).content.decode()
    assert f"(1 win for {run_b.name}, 2 wins for {run_a.name}, 1 tie; anytime-valid" in html


def _count_header(html: str) -> re.Match:
    found = re.search(r'<th class="num" id="run-count-column" title="([^"]*)">([^<]*)</th>',
                      html)
    assert found, "the ranking has no count column"
    return found


def test_a_best_of_k_board_labels_its_count_column_pairs():
    world = build_campaign(runs=4, prompts=2, task_kind=TaskKind.BEST_OF_K, k=4,
                           rank_all=True)
    rank_every_set(world)
    html = _page(world).content.decode()
    header = _count_header(html)
    assert header.group(2) == "Pairs"
    assert "K-1 per pick" in header.group(1) and "K(K-1)/2 per full ranking" in header.group(1)
    assert run_count_column(task_kind=TaskKind.BEST_OF_K).label == "Pairs"


def test_a_pair_board_keeps_votes(aligned):
    html = _page(aligned, criterion="alignment").content.decode()
    assert _count_header(html).group(2) == "Votes"
    votes = _page(aligned, criterion="alignment").context["board"].votes
    assert f"· {votes} votes ·" in " ".join(html.split())
