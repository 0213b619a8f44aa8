"""An annotator taken off a campaign (its annotators edited) or out of the project (membership
removed) gives back the pairs they hold at once: their active leases are closed as expired, so
the others are served those pairs now instead of when the leases lapse."""

from __future__ import annotations

import pytest

from evalhub.campaigns.models import Lease, LeaseStatus
from evalhub.campaigns.services import campaign_set_annotators
from evalhub.projects.models import Membership
from evalhub.projects.services import membership_remove
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """One pair to rate (two runs, one prompt), three annotators."""
    return build_campaign(runs=2, prompts=1, annotators=3, gold_rate=0.0,
                          lease_seconds=3600)


def _next(api, world, user):
    api.force_login(user)
    return api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json")


def test_a_pair_held_by_an_annotator_left_out_goes_to_the_others_at_once(api, world):
    holder, other, _ = world.annotators
    held = _next(api, world, holder)
    assert held.status_code == 201
    assert _next(api, world, other).status_code != 201  # the only pair is held

    campaign_set_annotators(campaign=world.campaign, annotators=[other])

    lease = Lease.objects.get(annotator=holder)
    assert lease.status == LeaseStatus.EXPIRED and lease.closed_at is not None
    served = _next(api, world, other)
    assert served.status_code == 201
    assert Lease.objects.get(pk=served.json()["lease"]).task_id == lease.task_id


def test_the_annotators_kept_keep_their_leases(api, world):
    holder, _other, third = world.annotators
    assert _next(api, world, holder).status_code == 201
    campaign_set_annotators(campaign=world.campaign, annotators=[holder, third])
    assert Lease.objects.get(annotator=holder).status == LeaseStatus.ACTIVE
    # Naming nobody lets every member rate: nothing is released either.
    campaign_set_annotators(campaign=world.campaign, annotators=[])
    assert Lease.objects.get(annotator=holder).status == LeaseStatus.ACTIVE


def test_a_member_removed_from_the_project_gives_back_their_pairs(api, world):
    holder, other, _ = world.annotators
    assert _next(api, world, holder).status_code == 201

    membership_remove(membership=Membership.objects.get(project=world.campaign.project,
                                                        user=holder))

    assert Lease.objects.get(annotator=holder).status == LeaseStatus.EXPIRED
    assert _next(api, world, other).status_code == 201
