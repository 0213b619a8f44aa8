"""An annotator who votes faster than a person can compare two images is flagged in quality
control (by the server's clock, whatever latency the client reports) and can be excluded.

A vote's time runs from the moment its pair could first have been on screen: the later of its
lease's ``leased_at`` and the annotator's previous vote (the rating page holds the next pair
leased in advance, so a lease is taken a vote before its pair is shown)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, Judgment, Lease
from evalhub.campaigns.quality.reliability import campaign_reliability
from tests.builders import build_campaign
from tests.factories import JudgmentFactory

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


def _space_out(annotator, every: timedelta) -> None:
    """Rewrite the annotator's votes, in the order cast, as cast ``every`` apart, each on a
    lease taken when the vote before it was cast: the page leases the next pair with each
    vote."""
    start = timezone.now() - timedelta(hours=1)
    for i, judgment in enumerate(Judgment.objects.filter(annotator=annotator)
                                 .order_by("created_at", "pk")):
        Judgment.objects.filter(pk=judgment.pk).update(created_at=start + i * every)
        Lease.objects.filter(pk=judgment.lease_id).update(leased_at=start + (i - 1) * every)


def _prefetched_votes(world, annotator, tasks, every: timedelta) -> None:
    """Votes cast ``every`` apart on the rating page, which shows one pair with the next one
    already leased behind it: vote i's lease was taken at vote i - 2 (two votes earlier)."""
    start = timezone.now() - timedelta(hours=1)
    for i, task in enumerate(tasks):
        judgment = JudgmentFactory(task=task, annotator=annotator, outcome="a", a_side="left")
        Judgment.objects.filter(pk=judgment.pk).update(created_at=start + i * every)
        Lease.objects.filter(pk=judgment.lease_id).update(leased_at=start + (i - 2) * every)


def test_a_vote_is_timed_from_when_its_pair_could_be_on_screen_not_from_its_prefetched_lease(
        api):
    world = build_campaign(runs=3, prompts=14, annotators=2, judgments_per_pair=2)
    bot, person = world.annotators
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign).order_by("pk"))[:20]
    # A key pressed every 350 ms: each lease is 700 ms old when its vote arrives, but its pair
    # was on screen for 350 ms only (from the previous vote). The first vote's pair was shown
    # as soon as it was leased, 700 ms before.
    _prefetched_votes(world, bot, tasks, timedelta(milliseconds=350))
    _prefetched_votes(world, person, tasks, timedelta(seconds=5))

    api.force_login(world.scientist)
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    by_user = {row["annotator_id"]: row for row in quality["annotators"]}
    assert by_user[bot.pk]["fast_votes"] == 19
    assert by_user[bot.pk]["median_vote_ms"] == pytest.approx(350)
    assert "fast" in by_user[bot.pk]["flags"]
    assert by_user[person.pk]["fast_votes"] == 0
    assert by_user[person.pk]["median_vote_ms"] == pytest.approx(5000)
    assert "fast" not in by_user[person.pk]["flags"]

    # The reliability estimate (weights, the leaderboards' quality filter) times votes alike.
    rows = {row.annotator_id: row for row in
            campaign_reliability(campaign=world.campaign).annotators}
    assert rows[bot.pk].fast_share == pytest.approx(19 / 20)
    assert "fast" in rows[bot.pk].flags and rows[bot.pk].weight < 0.1
    assert rows[person.pk].fast_share == 0.0 and "fast" not in rows[person.pk].flags


def test_forty_votes_in_a_burst_are_flagged_fast_and_the_annotator_can_be_excluded(api):
    world = build_campaign(runs=3, prompts=14, annotators=2, judgments_per_pair=2)
    bot, person = world.annotators
    _vote_fast(api, world, bot, 40)
    _vote_fast(api, world, person, 12)
    # The person took five seconds per pair.
    _space_out(person, timedelta(seconds=5))

    api.force_login(world.scientist)
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    by_user = {row["annotator_id"]: row for row in quality["annotators"]}
    # (always "left": the estimate flags the side habit too)
    assert "fast" in by_user[bot.pk]["flags"] and by_user[bot.pk]["flagged"]
    assert by_user[bot.pk]["fast_votes"] == 40
    assert by_user[person.pk]["flags"] == [] and by_user[person.pk]["fast_votes"] == 0
    assert by_user[person.pk]["median_vote_ms"] >= 5000

    excluded = api.post(f"/api/v1/campaigns/{world.campaign.pk}/exclude/",
                        {"annotator": bot.pk, "note": "40 votes in a burst"}, format="json")
    assert excluded.json() == {"annotator": bot.pk, "excluded": True}
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    assert {row["annotator_id"]: row["excluded"] for row in quality["annotators"]} == {
        bot.pk: True, person.pk: False}
