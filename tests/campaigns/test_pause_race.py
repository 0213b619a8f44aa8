"""A pause or close answered while an annotator's request for a task is under way is not
followed by a new lease: the campaign is read again in the lease's own transaction (a QA pass
with 32 annotators saw a lease created 0.05 s after the pause was answered; its pair was shown
and its vote refused)."""

import pytest

from evalhub.campaigns.models import CampaignStatus, Lease
from evalhub.campaigns.services import campaign_set_status
from evalhub.campaigns.serving.leasing import CampaignNotOpen, campaign_for_rating, lease_next
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status, words", [(CampaignStatus.PAUSED, "is paused"),
                                           (CampaignStatus.CLOSED, "was closed")])
def test_a_campaign_paused_after_it_was_read_leases_nothing(status, words):
    world = build_campaign(prompts=2)
    # The annotator's request has read the campaign, still open...
    seen = campaign_for_rating(annotator=world.annotator, campaign_id=world.campaign.pk)
    assert seen.status == CampaignStatus.ACTIVE
    # ...when the scientist's pause or close is answered.
    campaign_set_status(campaign=world.campaign, status=status)

    with pytest.raises(CampaignNotOpen, match=words):
        lease_next(campaign=seen, annotator=world.annotator, state=seen)
    assert not Lease.objects.filter(campaign=world.campaign).exists()


def test_an_open_campaign_still_leases_as_before():
    world = build_campaign(prompts=2)
    seen = campaign_for_rating(annotator=world.annotator, campaign_id=world.campaign.pk)
    lease = lease_next(campaign=seen, annotator=world.annotator, state=seen)
    assert Lease.objects.filter(pk=lease.pk, annotator=world.annotator).exists()
