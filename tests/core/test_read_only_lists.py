"""A read-only list of related objects sent back in a form body (repeated keys) is compared
whole: the campaign's runs as fetched are accepted, any other list is refused."""

import pytest
from django.http import QueryDict
from rest_framework import serializers

from evalhub.campaigns.models import Campaign
from evalhub.core.serializers import RejectUnknownFields
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


class CampaignRuns(RejectUnknownFields, serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name", "runs"]
        read_only_fields = ["id", "runs"]


def _form_body(campaign: Campaign, run_ids: list[int]) -> QueryDict:
    body = QueryDict(mutable=True)
    body["id"] = str(campaign.pk)
    body["name"] = "renamed"
    body.setlist("runs", [str(pk) for pk in run_ids])
    return body


def test_every_run_of_a_form_body_is_compared_with_the_stored_ones():
    world = build_campaign(prompts=1)
    campaign = world.campaign
    stored = sorted(run.pk for run in campaign.runs.all())
    assert len(stored) >= 2  # else the last value alone would equal the list

    as_fetched = CampaignRuns(campaign, data=_form_body(campaign, stored), partial=True)
    assert as_fetched.is_valid(), as_fetched.errors

    # The last value of the repeated key alone is a run of the campaign; the list is not.
    one_dropped = CampaignRuns(campaign, data=_form_body(campaign, stored[1:]), partial=True)
    assert not one_dropped.is_valid()
    assert list(one_dropped.errors) == ["runs"]
    assert "runs is read-only" in str(one_dropped.errors["runs"][0])


def test_a_json_list_of_the_same_runs_in_another_order_is_the_stored_one():
    world = build_campaign(prompts=1)
    campaign = world.campaign
    stored = sorted(run.pk for run in campaign.runs.all())
    reordered = CampaignRuns(campaign, data={"name": "renamed", "runs": stored[::-1]},
                             partial=True)
    assert reordered.is_valid(), reordered.errors
    another = CampaignRuns(campaign, data={"name": "renamed", "runs": [*stored, stored[0]]},
                           partial=True)
    assert not another.is_valid()
