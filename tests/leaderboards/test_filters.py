"""Filters: prompt category, time window, excluded and low-gold annotators, judge."""

from datetime import UTC, datetime

import pytest

from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.models import AnnotatorFlag, ComparisonTask
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.filters import LeaderboardFilters, parse_ab, parse_filters
from evalhub.leaderboards.selectors import filtered_judgments, leaderboard_compute
from evalhub.runs.models import Image
from tests.builders import build_campaign
from tests.leaderboards.helpers import cast

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_campaign(runs=3, prompts=4, annotators=3)
    tasks = ComparisonTask.objects.filter(campaign=world.campaign)
    for task in tasks:
        for annotator in world.annotators:
            cast(task, annotator, "a")
    return world


def _count(world, **kwargs):
    filters = LeaderboardFilters(**kwargs)
    return filtered_judgments(campaign=world.campaign, filters=filters).count()


def test_category_filter(world):
    total = _count(world)
    colour = _count(world, category="colour")
    counting = _count(world, category="counting")
    assert colour + counting == total and colour > 0 and counting > 0
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(category="colour"))
    assert board.votes == colour
    assert board.category_breakdown.categories == ("colour",)


def test_time_window(world):
    from evalhub.campaigns.models import Judgment

    ids = list(Judgment.objects.order_by("id").values_list("id", flat=True))
    Judgment.objects.filter(id__in=ids[:5]).update(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    Judgment.objects.filter(id__in=ids[5:]).update(created_at=datetime(2024, 3, 1, tzinfo=UTC))
    params = {"since": "2024-02-01"}
    assert _count(world, **_parsed(world, params)) == len(ids) - 5
    assert _count(world, **_parsed(world, {"until": "2024-01-01"})) == 5  # whole day included
    assert _count(world, **_parsed(world, {"until": "2024-01-01T00:00:00Z"})) == 0


def _parsed(world, params):
    f = parse_filters(campaign=world.campaign, params=params)
    return {"since": f.since, "until": f.until}


def test_excluded_annotators_are_always_out(world):
    total = _count(world)
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=world.annotators[0],
                                 excluded=True)
    per_annotator = total // 3
    assert _count(world) == total - per_annotator
    assert _count(world, min_gold_accuracy=0.0) == 0  # nobody has gold votes yet


def test_min_gold_accuracy_keeps_only_accurate_annotators(world):
    good, bad, _unscored = world.annotators
    images = Image.objects.filter(run=world.runs[0]).order_by("id")
    others = Image.objects.filter(run=world.runs[1]).order_by("id")
    gold = [gold_task_add(campaign=world.campaign, image_a=b, image_b=a, answer="a")
            for a, b in zip(images, others, strict=True)]
    for task in gold:
        cast(task, good, "a")
        cast(task, bad, "b")
    per_annotator = _count(world) // 3
    assert _count(world, min_gold_accuracy=0.8) == per_annotator  # only `good`
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(min_gold_accuracy=0.8))
    assert board.votes == per_annotator
    assert {a.username for a in board.position_bias.annotators} == {good.username}


def test_parse_filters_validates_input(world):
    campaign = world.campaign
    f = parse_filters(campaign=campaign, params={"judge": "metric:clip_score",
                                                 "criterion": "alignment"})
    assert f.metric_name == "clip_score" and not f.is_default
    assert parse_filters(campaign=campaign, params={}).is_default
    for bad in ({"criterion": "nope"}, {"criterion": "alignment"}, {"judge": "robot"},
                {"min_gold_accuracy": "2"}, {"since": "yesterday"},
                {"since": "2024-02-01", "until": "2024-01-01"}):
        with pytest.raises(EvalHubError):
            parse_filters(campaign=campaign, params=bad)
    assert parse_ab("3,7") == (3, 7) and parse_ab("") is None


@pytest.mark.parametrize(("raw", "code"), [
    ("3,3", "ab_same_run"), ("03, 3", "ab_same_run"), ("3", "ab_not_run_ids"),
    ("3,x", "ab_not_run_ids"), ("3,7,9", "ab_not_run_ids"), ("-3,7", "ab_not_run_ids")])
def test_an_ab_pair_is_two_different_run_ids_and_a_refusal_says_which_rule(raw, code):
    with pytest.raises(EvalHubError) as caught:
        parse_ab(raw)
    assert caught.value.code == code
    assert caught.value.message.startswith("ab must be two different run ids")


def test_filter_hash_differs_per_combination():
    a = LeaderboardFilters()
    b = LeaderboardFilters(category="colour")
    assert a.hash != b.hash and a.hash == LeaderboardFilters().hash


def test_messages_name_the_criterion_as_it_is_written_not_the_enum(world, api):
    """No internal repr (``Criterion.OVERALL``) in what a user reads: the criterion is the plain
    string a query parameter takes, in the filters and in every warning."""
    default = parse_filters(campaign=world.campaign, params={})
    assert type(default.criterion) is str and repr(default.criterion) == "'overall'"
    assert repr(LeaderboardFilters().criterion) == "'overall'"

    api.force_login(world.scientist)
    board = api.get(f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/",
                    {"judge": "metric:clip_score"}).json()
    assert ("no judgments by metric judge 'clip_score' for 'overall'; run the metric judges "
            "first") in board["warnings"]
    assert "Criterion." not in str(board)

    world.campaign.criteria = ["alignment"]
    world.campaign.save(update_fields=["criteria"])
    with pytest.raises(EvalHubError) as refused:
        parse_filters(campaign=world.campaign, params={})
    assert refused.value.message == ("This campaign does not rate 'overall'; its criteria are "
                                     "['alignment'].")
