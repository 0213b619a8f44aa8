"""Removing a member from a project takes them off the annotator lists of the project's
campaigns, in the same transaction: a list names only members (the campaign API's list can be
posted back as it is read), and adding the person again later gives them no campaign they were
once assigned to.

An empty annotator list means "every member may rate" (``Campaign.annotators``). So removing
the only annotator named for a campaign that can still be rated (not closed, not failed) would
open it to every member: that removal is refused, nothing changed, and the owner is told to
name its other annotators (or close it) first.
"""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import CampaignStatus
from evalhub.campaigns.services import campaign_set_annotators, campaign_set_status
from evalhub.projects.models import Membership, Role
from evalhub.projects.services import MembershipRefused, membership_add, membership_remove
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=1, annotators=3, name="study")


def _membership(world, user) -> Membership:
    return Membership.objects.get(project=world.campaign.project, user=user)


def test_a_removed_member_leaves_every_annotator_list_of_the_project(api, world):
    leaving, staying, _ = world.annotators
    campaign_set_annotators(campaign=world.campaign, annotators=[leaving, staying])

    membership_remove(membership=_membership(world, leaving))

    assert list(world.campaign.annotators.all()) == [staying]
    # The campaign's list, read from the API, can be written back as it is.
    api.force_login(world.scientist)
    read = api.get(f"/api/v1/campaigns/{world.campaign.pk}/").json()["annotators"]
    assert read == [staying.get_username()]


def test_adding_the_person_again_gives_back_no_assignment(world):
    leaving, staying, _ = world.annotators
    campaign_set_annotators(campaign=world.campaign, annotators=[leaving, staying])
    membership_remove(membership=_membership(world, leaving))

    membership_add(project=world.campaign.project, user=leaving, role=Role.ANNOTATOR)

    assert not world.campaign.annotators.filter(pk=leaving.pk).exists()


def test_removing_the_only_named_annotator_of_a_rated_campaign_is_refused(world):
    only = world.annotator
    campaign_set_annotators(campaign=world.campaign, annotators=[only])

    with pytest.raises(MembershipRefused) as refused:
        membership_remove(membership=_membership(world, only))

    assert "'study'" in refused.value.message
    assert "every member" in refused.value.message
    assert Membership.objects.filter(project=world.campaign.project, user=only).exists()
    assert list(world.campaign.annotators.all()) == [only]


def test_the_only_named_annotator_of_a_closed_campaign_can_be_removed(world):
    only = world.annotator
    campaign_set_annotators(campaign=world.campaign, annotators=[only])
    campaign_set_status(campaign=world.campaign, status=CampaignStatus.CLOSED)

    membership_remove(membership=_membership(world, only))

    assert not world.campaign.annotators.exists()
    assert not Membership.objects.filter(project=world.campaign.project, user=only).exists()


def test_a_refused_removal_through_the_api_is_a_409_that_changes_nothing(api, world):
    only = world.annotator
    campaign_set_annotators(campaign=world.campaign, annotators=[only])
    api.force_login(world.owner)
    membership = _membership(world, only)

    response = api.delete(f"/api/v1/memberships/{membership.pk}/")

    assert response.status_code == 409, response.content
    assert "'study'" in response.json()["detail"]
    assert Membership.objects.filter(pk=membership.pk).exists()
