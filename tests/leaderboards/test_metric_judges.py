"""Metric judges: one judgment per task and criterion, idempotent, compared with people."""

import io

import pytest
from django.core.management import CommandError, call_command

from evalhub.campaigns.models import ComparisonTask, Judgment
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.charts import metric_scatter
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.selectors import leaderboard_compute
from evalhub.leaderboards.services import metric_judges_run, metric_outcome
from evalhub.runs.models import Image
from tests.builders import build_campaign
from tests.leaderboards.helpers import cast, set_image_metric, set_run_metric

pytestmark = pytest.mark.django_db


def _scored_world(*, calibrated=True, scores=(30.0, 20.0, 10.0),
                  criteria=("overall", "alignment")):
    world = build_campaign(runs=3, prompts=4, annotators=3, criteria=list(criteria),
                           run_names=["high", "mid", "low"])
    for run, score in zip(world.runs, scores, strict=True):
        for k, image in enumerate(Image.objects.filter(run=run).order_by("id")):
            set_image_metric(image, "clip_score", score + 0.01 * k, calibrated=calibrated)
    return world


def test_outcome_rule_higher_wins_and_small_differences_tie():
    assert metric_outcome(value_a=30, value_b=20, higher_is_better=True, epsilon=0.5) == "a"
    assert metric_outcome(value_a=20, value_b=30, higher_is_better=True, epsilon=0.5) == "b"
    assert metric_outcome(value_a=20.2, value_b=20, higher_is_better=True, epsilon=0.5) == "tie"
    assert metric_outcome(value_a=30, value_b=20, higher_is_better=False, epsilon=0.5) == "b"


def test_metric_judges_cast_one_judgment_per_task_and_criterion_and_are_idempotent():
    world = _scored_world()
    tasks = ComparisonTask.objects.filter(campaign=world.campaign, is_gold=False).count()
    report = metric_judges_run(campaign=world.campaign, metric="clip_score")
    assert report.created == 2 * tasks and report.skipped == 0 and report.calibrated
    judgments = Judgment.objects.filter(judge_kind="metric")
    assert judgments.count() == 2 * tasks
    assert set(judgments.values_list("criterion", flat=True)) == {"overall", "alignment"}
    assert set(judgments.values_list("metric_name", flat=True)) == {"clip_score"}
    for task_id in judgments.values_list("task_id", flat=True):
        assert judgments.filter(task_id=task_id, criterion="overall").count() == 1
    again = metric_judges_run(campaign=world.campaign, metric="clip_score")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2 * tasks)
    assert Judgment.objects.filter(judge_kind="metric").count() == 2 * tasks
    # Human vote counters used for serving are untouched.
    assert not ComparisonTask.objects.filter(judgments_count__gt=0).exists()


def test_metric_judges_answer_only_the_questions_the_campaign_asks():
    world = _scored_world(criteria=("overall",))
    report = metric_judges_run(campaign=world.campaign, metric="clip_score")
    assert report.criteria == ["overall"]
    assert set(Judgment.objects.filter(campaign=world.campaign).values_list(
        "criterion", flat=True)) == {"overall"}


def test_changed_scores_update_outcomes_and_missing_scores_skip_tasks():
    world = _scored_world()
    metric_judges_run(campaign=world.campaign)
    high, low = world.runs[0], world.runs[2]
    from evalhub.evaluation.models import ImageMetric
    ImageMetric.objects.filter(image__run=low).update(value=99.0)
    report = metric_judges_run(campaign=world.campaign)
    assert report.updated > 0 and report.created == 0
    task = ComparisonTask.objects.filter(campaign=world.campaign, run_a=high, run_b=low).first()
    assert Judgment.objects.get(task=task, judge_kind="metric", criterion="overall").outcome == "b"
    ImageMetric.objects.filter(image=task.image_a).delete()
    report = metric_judges_run(campaign=world.campaign)
    assert report.skipped >= 1 and task.image_a_id in report.missing_images


def test_unknown_metric_is_refused():
    world = build_campaign(runs=2, prompts=1)
    with pytest.raises(EvalHubError):
        metric_judges_run(campaign=world.campaign, metric="fid")


@pytest.mark.parametrize("epsilon", [float("nan"), float("inf"), 1e30, 100.5, -0.1])
def test_an_epsilon_outside_the_metrics_range_is_refused_by_the_service_and_the_cli(epsilon):
    # NaN used to pass (NaN < 0 is false) and call no pair a tie; 1e30 called every pair one.
    world = build_campaign(runs=2, prompts=1)
    with pytest.raises(EvalHubError, match="epsilon must be a number from 0 to 100"):
        metric_judges_run(campaign=world.campaign, epsilon=epsilon)
    with pytest.raises(CommandError, match="epsilon must be a number from 0 to 100"):
        call_command("metric_judges", str(world.campaign.pk), "--epsilon", str(epsilon),
                     stdout=io.StringIO())
    assert not Judgment.objects.filter(campaign=world.campaign).exists()
    assert metric_judges_run(campaign=world.campaign, epsilon=100).epsilon == 100


@pytest.mark.parametrize(("body", "message"), [
    ('{"epsilon": 1e30}', "from 0 to 100"),
    ('{"epsilon": -1}', "from 0 to 100"),
    ('{"epsilon": 1e400}', "A valid number is required"),  # JSON's 1e400 is infinity
])
def test_the_api_refuses_such_an_epsilon_before_queueing_anything(api, sent_tasks, body,
                                                                  message):
    world = build_campaign(runs=2, prompts=1)
    api.force_authenticate(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/metric-judges/", body,
                        content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()) == ["epsilon"]
    assert message in response.json()["epsilon"][0]
    assert sent_tasks == []


def test_metric_judge_leaderboard_ranks_runs_by_the_metric_and_marks_uncalibrated():
    world = _scored_world(calibrated=False)
    metric_judges_run(campaign=world.campaign)
    board = leaderboard_compute(
        campaign=world.campaign,
        filters=LeaderboardFilters(criterion="alignment", judge="metric:clip_score"))
    assert [r.name for r in board.runs] == ["high", "mid", "low"]
    assert board.position_bias is None
    assert board.metric_judges == ("clip_score",)
    assert board.judge_calibrated is False and board.any_uncalibrated
    judgments = Judgment.objects.filter(campaign=world.campaign, judge_kind="metric")
    assert judgments.exists() and not judgments.filter(metric_calibrated=True).exists()


def test_agreement_of_the_metric_judge_with_the_human_majority():
    world = _scored_world(calibrated=False)
    metric_judges_run(campaign=world.campaign)
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign).order_by("id"))
    disagree = set()
    for k, task in enumerate(tasks):
        # The metric always prefers image A (lower run id = higher score). Humans agree on
        # three tasks out of four (by majority 2:1), and disagree on every fourth.
        majority = "b" if k % 4 == 0 else "a"
        if majority == "b":
            disagree.add(task.pk)
        minority = "a" if majority == "b" else "b"
        for annotator, outcome in zip(world.annotators, [majority, majority, minority],
                                      strict=True):
            cast(task, annotator, outcome)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    judge = board.judge_agreement["clip_score"]
    assert judge.n == len(tasks)
    assert judge.agree == len(tasks) - len(disagree)
    assert judge.rate == pytest.approx((len(tasks) - len(disagree)) / len(tasks), abs=1e-4)
    assert judge.ci_low < judge.rate < judge.ci_high
    assert judge.calibrated is False
    assert sum(p.n for p in judge.by_pair) == len(tasks)
    assert sum(p.agree for p in judge.by_pair) == judge.agree
    assert judge.by_pair[0].rate <= judge.by_pair[-1].rate


def test_a_board_judged_by_a_metric_says_so_where_it_compares_metrics_with_its_ranking(client):
    """Every Elo of such a board is the metric judge's: the scatter and the agreement table
    must not call it people's (a random-weights judge agreeing with itself read as "Spearman
    1.00 against people")."""
    world = _scored_world(calibrated=False)
    for run, fid in zip(world.runs, (5.0, 9.0, 14.0), strict=True):
        set_run_metric(run, "fid", fid)
    metric_judges_run(campaign=world.campaign)
    judged = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters(
        criterion="overall", judge="metric:clip_score"))
    assert judged.rated_by == "metric judge clip_score (uncalibrated)"
    scatter = metric_scatter(judged)
    assert scatter["layout"]["title"]["text"].startswith(
        "Elo of metric judge clip_score (uncalibrated) against run-level metrics")
    assert scatter["layout"]["yaxis"]["title"]["text"] == (
        "Elo (metric judge clip_score (uncalibrated))")

    client.force_login(world.scientist)
    page = client.get(f"/dashboard/campaigns/{world.campaign.pk}/",
                      {"judge": "metric:clip_score"}).content.decode()
    assert "Metrics against metric judge clip_score (uncalibrated)" in page
    assert "against people" not in page and "human ranking" not in page
    people = client.get(f"/dashboard/campaigns/{world.campaign.pk}/").content.decode()
    assert "Metrics against people" in people
