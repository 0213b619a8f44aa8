"""The leaderboard page's warnings name runs in their text ("runs ריצה 30, ריצה 5 never
won"): each name is printed in a <bdi>, as pages print names, so that a right-to-left name
ending in digits cannot swap with the words and numbers beside it (a QA pass saw "runs 5 ריצה
,30 ריצה never won")."""

import pytest
from django.template import Context, Template

from evalhub.campaigns.models import ComparisonTask
from tests.builders import build_campaign, logged_in
from tests.leaderboards.helpers import cast

pytestmark = pytest.mark.django_db

NAMES = ["ריצה 30", "ריצה 5"]


def _render(text: str, names: list[str]) -> str:
    return Template("{% load text %}{{ text|bdi_names:names }}").render(
        Context({"text": text, "names": names}))


def test_each_name_of_a_warning_is_printed_in_a_bdi_and_the_rest_escaped():
    assert _render("runs ריצה 30, ריצה 5 never won <b>", NAMES) == (
        "runs <bdi>ריצה 30</bdi>, <bdi>ריצה 5</bdi> never won &lt;b&gt;")


def test_a_name_is_matched_whole_longest_first():
    # "a" is a name and a letter of other words; "a1" contains it.
    assert _render("runs a1, a never won; groups {a1, a} / {b}", ["a", "a1", "b"]) == (
        "runs <bdi>a1</bdi>, <bdi>a</bdi> never won; groups {<bdi>a1</bdi>, <bdi>a</bdi>}"
        " / {<bdi>b</bdi>}")


def test_a_name_that_holds_markup_is_escaped_inside_its_bdi():
    assert _render("runs <i>x</i> never won", ["<i>x</i>"]) == (
        "runs <bdi>&lt;i&gt;x&lt;/i&gt;</bdi> never won")


def test_the_leaderboard_page_prints_the_runs_of_a_warning_in_bdi():
    world = build_campaign(runs=2, prompts=3, annotators=2, run_names=NAMES)
    winner = world.runs[0]
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        for annotator in world.annotators:
            cast(task, annotator, "a" if task.run_a_id == winner.pk else "b")
    page = logged_in(world.scientist).get(
        f"/dashboard/campaigns/{world.campaign.pk}/?refresh=1").content.decode()
    warnings = page.split('<div class="warn"><b>Warnings</b>', 1)[1].split("</div>", 1)[0]
    assert "never won" in warnings
    assert "<bdi>ריצה 5</bdi>" in warnings and "<bdi>ריצה 30</bdi>" in warnings
