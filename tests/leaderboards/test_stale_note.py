"""A stale leaderboard says what changed since it was computed, not always "new votes"."""

import pytest

from evalhub.campaigns.models import ComparisonTask
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.services import leaderboard_get
from tests.builders import build_campaign
from tests.leaderboards.helpers import cast, set_run_metric

pytestmark = pytest.mark.django_db


def test_the_note_names_a_metric_job_s_values_and_then_new_votes(client):
    world = build_campaign(runs=2, prompts=2, annotators=2)
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign))
    cast(tasks[0], world.annotators[0], "a")
    leaderboard_get(campaign=world.campaign, filters=LeaderboardFilters())  # the snapshot
    client.force_login(world.scientist)
    url = f"/dashboard/campaigns/{world.campaign.pk}/"
    assert "refresh queued" not in client.get(url).content.decode()

    set_run_metric(world.runs[0], "clip_score", 0.31)  # a metric job finished, no new vote
    page = client.get(url).content.decode()
    assert "(since then: 1 new metric value; refresh queued)" in page
    assert "new vote" not in page

    cast(tasks[1], world.annotators[1], "b")
    page = client.get(url).content.decode()
    assert "(since then: 1 new vote, 1 new metric value; refresh queued)" in page
