"""An annotator who votes faster than a person can compare two images is flagged in quality
control (by the server's clock, whatever latency the client reports) and can be excluded."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import F

from evalhub.campaigns.models import Lease
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _vote_fast(api, world, annotator, votes: int) -> None:
    """Vote as a script would: each answer leases the next pair, and is sent at once."""
    api.force_login(annotator)
    url = f"/api/v1/rate/{world.campaign.pk}/"
    task = api.post(url + "next/", {}, format="json").json()
    for _ in range(votes):
        answer = api.post(url + "votes/", {
            "client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": "left"}, "latency_ms": 4000,  # a plausible lie
            "next": {"exclude": [task["lease"]]}}, format="json").json()
        task = answer["next"]
        if task.get("done"):
            break


def test_forty_votes_in_a_burst_are_flagged_fast_and_the_annotator_can_be_excluded(api):
    world = build_campaign(runs=3, prompts=14, annotators=2, judgments_per_pair=2)
    bot, person = world.annotators
    _vote_fast(api, world, bot, 40)
    _vote_fast(api, world, person, 12)
    # The person took five seconds per pair: their leases were taken that long before.
    Lease.objects.filter(annotator=person).update(leased_at=F("leased_at") - timedelta(seconds=5))

    api.force_login(world.scientist)
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    by_user = {row["annotator_id"]: row for row in quality["annotators"]}
    assert by_user[bot.pk]["flags"] == ["fast"] and by_user[bot.pk]["flagged"]
    assert by_user[bot.pk]["fast_votes"] == 40
    assert by_user[person.pk]["flags"] == [] and by_user[person.pk]["fast_votes"] == 0
    assert by_user[person.pk]["median_vote_ms"] >= 5000

    excluded = api.post(f"/api/v1/campaigns/{world.campaign.pk}/exclude/",
                        {"annotator": bot.pk, "note": "40 votes in a burst"}, format="json")
    assert excluded.json() == {"annotator": bot.pk, "excluded": True}
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    assert {row["annotator_id"]: row["excluded"] for row in quality["annotators"]} == {
        bot.pk: True, person.pk: False}
