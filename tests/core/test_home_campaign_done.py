"""The home page offers "Start rating" only where the annotator has something left to rate;
whether they do is read for every listed campaign in one query."""

import pytest

from evalhub.campaigns.models import CampaignStatus, LeaseStatus
from evalhub.campaigns.selectors import campaigns_for_rater
from evalhub.projects.selectors import projects_for_user
from tests.builders import build_campaign
from tests.factories import JudgmentFactory, LeaseFactory

pytestmark = pytest.mark.django_db


def test_left_for_rater_follows_what_serving_would_give(django_assert_num_queries):
    world = build_campaign(prompts=2, annotators=2)
    annotator, other = world.annotators
    first, second = world.tasks
    LeaseFactory(task=first, annotator=annotator, status=LeaseStatus.SKIPPED)
    projects = projects_for_user(user=annotator)

    with django_assert_num_queries(1):
        listed = list(campaigns_for_rater(user=annotator, projects=projects))
    assert [(c.pk, c.left_for_rater) for c in listed] == [(world.campaign.pk, True)]

    # The last pair judged by them: nothing left for them, though `other` still may rate.
    JudgmentFactory(task=second, annotator=annotator)
    assert not campaigns_for_rater(user=annotator, projects=projects).get().left_for_rater
    assert campaigns_for_rater(user=other, projects=projects_for_user(user=other)
                               ).get().left_for_rater

    # Closed: listed (as Done) only for those who voted in it.
    world.campaign.status = CampaignStatus.CLOSED
    world.campaign.save(update_fields=["status"])
    assert campaigns_for_rater(user=annotator, projects=projects).count() == 1
    assert campaigns_for_rater(user=other, projects=projects_for_user(user=other)).count() == 0


def test_the_home_page_says_done_without_a_rating_link(client):
    world = build_campaign(prompts=1, annotators=1)
    client.force_login(world.annotator)
    LeaseFactory(task=world.tasks[0], annotator=world.annotator, status=LeaseStatus.SKIPPED)
    page = client.get("/").content.decode()
    assert f"/rate/{world.campaign.pk}/" not in page and "Start rating" not in page
    assert "<strong>Done</strong>" in page
