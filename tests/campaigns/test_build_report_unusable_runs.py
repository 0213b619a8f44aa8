"""A run of a campaign that no task shows (no image on the campaign's prompts, e.g. outside its
prompt category) would sit on the leaderboard with no vote forever: the build report names it
(``runs_without_tasks``, and a sentence in ``warnings``), and the campaign's page, its API and
the ``campaign`` command show it where they say what the build did not ask.

The world: two runs that answered every prompt, and ``stray``, which answered only the
"counting" prompts; the campaign asks about the "colour" prompts.
"""

from __future__ import annotations

import pytest

from evalhub.campaigns.cli import progress_lines
from evalhub.campaigns.manage.selectors import live_progress
from evalhub.campaigns.models import CampaignStatus, TaskKind
from tests.builders import build_campaign, build_campaign_with_stray_run

pytestmark = pytest.mark.django_db


def test_the_build_report_names_a_run_that_no_task_shows(api):
    world, campaign, stray = build_campaign_with_stray_run()
    assert campaign.status == CampaignStatus.ACTIVE  # the other runs are compared as usual
    report = campaign.build_report
    assert report["runs_without_tasks"] == [stray.pk]
    assert len(report["warnings"]) == 1
    assert "'stray'" in report["warnings"][0] and "'colour'" in report["warnings"][0]

    api.force_login(world.scientist)
    assert api.get(f"/api/v1/campaigns/{campaign.pk}/").json()["build_report"][
        "warnings"] == report["warnings"]
    # The campaign page's "Not asked" and the campaign command say it too.
    assert "'stray'" in live_progress(campaign=campaign).not_asked
    assert any("'stray'" in line for line in progress_lines(campaign))


def test_a_best_of_k_build_that_a_run_cannot_join_fails_naming_that_run():
    # Best of K shows every run on every prompt row: a run with no image on the campaign's
    # prompts leaves no row at all, so the build fails, and its error says which run.
    _, campaign, _ = build_campaign_with_stray_run(runs=3, task_kind=TaskKind.BEST_OF_K, k=3,
                                 criteria=["overall"])
    assert campaign.status == CampaignStatus.FAILED
    assert "No image on the campaign's prompts: 'stray'." in campaign.build_report["error"]


def test_a_build_in_which_every_run_has_tasks_warns_of_nothing():
    world = build_campaign(runs=3, prompts=2)
    report = world.campaign.build_report
    assert report["runs_without_tasks"] == [] and report["warnings"] == []
    assert live_progress(campaign=world.campaign).not_asked == ""
