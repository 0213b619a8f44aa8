"""manage.py create_campaign: the campaign form's service from the command line."""

import io
import re

import pytest
from django.core.management import CommandError, call_command

from evalhub.campaigns.models import Campaign, CampaignStatus, Criterion, PairPolicy, TaskKind
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Four runs of one prompt set (two prompts) in a project, and its existing campaign."""
    return build_campaign(runs=4, prompts=2, annotators=2)


def _create(world, *args: str) -> str:
    out = io.StringIO()
    call_command("create_campaign", "--project", world.campaign.project.slug, *args, stdout=out)
    return out.getvalue()


def _names(runs) -> list[str]:
    return [run.name for run in runs]


def test_a_pair_campaign_is_built_here_with_the_services_defaults(world):
    text = _create(world, "--name", "A vs B", "--runs", *_names(world.runs[:2]), "--build-here")
    campaign = Campaign.objects.get(project=world.campaign.project, name="A vs B")
    assert set(campaign.runs.all()) == set(world.runs[:2])
    assert campaign.task_kind == TaskKind.PAIR and campaign.k == 2
    assert campaign.pair_policy == PairPolicy.BALANCED
    assert campaign.criteria == [Criterion.OVERALL]
    assert (campaign.judgments_per_pair, campaign.gold_rate, campaign.lease_seconds) == (3, 0, 180)
    assert campaign.status == CampaignStatus.ACTIVE
    assert campaign.tasks.count() == 2  # one run pair x two prompts x one seed
    assert f"Campaign {campaign.pk} 'A vs B': 2 runs, pairs, balanced pair policy." in text
    assert "2 tasks built; status active." in text
    assert f"/rate/{campaign.pk}/" in text


def test_every_setting_of_the_form_can_be_given(world):
    _create(world, "--name", "settings", "--runs", *_names(world.runs),
            "--criteria", "alignment", "artifacts", "--pair-policy", "uncertainty",
            "--judgments-per-pair", "5", "--gold-rate", "0", "--lease-seconds", "600",
            "--instructions", "Look at the hands.", "--prompt-category", "counting",
            "--annotators", world.annotators[1].username, "--draft", "--build-here")
    campaign = Campaign.objects.get(project=world.campaign.project, name="settings")
    assert campaign.criteria == ["overall", "alignment", "artifacts"]
    assert campaign.pair_policy == PairPolicy.UNCERTAINTY
    assert (campaign.judgments_per_pair, campaign.lease_seconds) == (5, 600)
    assert campaign.instructions == "Look at the hands."
    assert {t.prompt.category for t in campaign.tasks.all()} == {"counting"}
    assert list(campaign.annotators.all()) == [world.annotators[1]]
    assert campaign.status == CampaignStatus.DRAFT  # built, not opened


def test_a_best_of_k_campaign_ranks_all_k(world):
    text = _create(world, "--name", "best of 4", "--runs", *_names(world.runs),
                   "--task-kind", "best_of_k", "--k", "4", "--rank-all", "--build-here")
    campaign = Campaign.objects.get(project=world.campaign.project, name="best of 4")
    assert (campaign.task_kind, campaign.k, campaign.rank_all) == (TaskKind.BEST_OF_K, 4, True)
    assert campaign.tasks.count() == 2  # one set of the four runs per prompt
    assert "4 runs, best of 4, all ranked." in text


def test_without_build_here_the_tasks_are_left_to_a_worker(world):
    text = _create(world, "--name", "queued", "--runs", *_names(world.runs[:2]))
    campaign = Campaign.objects.get(project=world.campaign.project, name="queued")
    assert campaign.status == CampaignStatus.BUILDING and not campaign.tasks.exists()
    assert "Building: its tasks are queued for a worker." in text
    with pytest.raises(CommandError, match=r"still building \(its tasks are queued for a worker"):
        _create(world, "--name", "queued too", "--runs", *_names(world.runs[:2]),
                "--wait", "--timeout", "0")


def test_a_campaign_over_a_run_still_generating_says_it_waits_for_that_run(world):
    generating = world.runs[1]
    GenerationRun.objects.filter(pk=generating.pk).update(
        source=RunSource.GENERATED, status=RunStatus.RUNNING)
    text = _create(world, "--name", "waits", "--runs", *_names(world.runs[:2]), "--build-here")
    campaign = Campaign.objects.get(project=world.campaign.project, name="waits")
    assert campaign.status == CampaignStatus.BUILDING and not campaign.tasks.exists()
    assert f"Building: waiting for runs to finish generating: {generating.name}." in text


@pytest.mark.parametrize(("args", "message"), [
    (["--runs", "no-such-run", "RUN0"], "No run named .no-such-run."),
    (["--runs", "RUN0"], "at least two runs"),
    (["--runs", "RUN0", "RUN1", "--lease-seconds", "5"], "lease_seconds must be between"),
    (["--runs", "RUN0", "RUN1", "--min-lpips-distance", "-1"], "min_lpips_distance"),
    (["--runs", "RUN0", "RUN1", "--min-lpips-distance", "inf"], "min_lpips_distance"),
    (["--runs", "RUN0", "RUN1", "--min-lpips-distance", "1e400"], "min_lpips_distance"),
    (["--runs", "RUN0", "RUN1", "--annotators", "nobody"], "not members: nobody"),
    (["--runs", "RUN0", "RUN1", "--k", "3"], "A pair task shows 2 images"),
    (["--runs", "RUN0", "RUN1", "--task-kind", "best_of_k", "--k", "3"], "campaign has 2 runs"),
    (["--runs", "RUN0", "RUN1", "--task-kind", "best_of_k", "--k", "2"], "between 3 and 6"),
    (["--runs", "RUN0", "RUN1", "--task-kind", "best_of_k", "--k", "2", "--gold-rate", "0.1"],
     r"between 3 and 6\. .*no gold tasks"),
])
def test_a_refused_campaign_is_a_one_line_error_and_nothing_is_created(world, args, message):
    names = dict(zip(("RUN0", "RUN1"), _names(world.runs[:2]), strict=True))
    before = Campaign.objects.count()
    with pytest.raises(CommandError, match=message) as refused:
        _create(world, "--name", "refused", *[names.get(a, a) for a in args], "--build-here")
    # Said once, on one line (the form's per-field list is not printed after it again).
    assert "\n" not in str(refused.value)
    assert len(re.findall(message, str(refused.value))) == 1
    assert Campaign.objects.count() == before


def test_a_name_the_project_already_uses_is_refused(world):
    with pytest.raises(CommandError, match="already has a campaign named"):
        _create(world, "--name", world.campaign.name, "--runs", *_names(world.runs[:2]))


def test_a_category_no_prompt_of_the_runs_has_is_refused_and_nothing_is_created(world):
    with pytest.raises(CommandError) as refused:
        _create(world, "--name", "cafe", "--runs", *_names(world.runs[:2]),
                "--prompt-category", "Colour", "--build-here")
    assert str(refused.value) == ("No prompt of the runs' prompt set has the category 'Colour'; "
                                  "its categories: 'colour', 'counting'.")
    assert not Campaign.objects.filter(name="cafe").exists()
