"""The rating specification: what a lease and a vote return and store, and what they refuse."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from evalhub.campaigns.models import CampaignStatus, Judgment, Lease, LeaseStatus
from evalhub.campaigns.serving.leasing import lease_close, lease_queryset
from evalhub.campaigns.serving.payloads import lease_payload
from evalhub.campaigns.serving.rating import (
    Progress,
    Vote,
    rate_next,
    rate_undo,
    rate_vote,
    remaining,
)
from evalhub.campaigns.serving.voting import VoteConflict
from evalhub.core.errors import EvalHubError
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _lease(world, annotator, **kwargs) -> Lease:
    task = rate_next(annotator=annotator, campaign_id=world.campaign.pk, **kwargs)
    return Lease.objects.get(pk=task["lease"])


def _vote(world, annotator, lease, answers=None, client_id=None, **kwargs):
    vote = Vote(client_id or uuid.uuid4(), lease.pk, answers or {"overall": "left"}, 700)
    return rate_vote(annotator=annotator, campaign_id=world.campaign.pk, vote=vote,
                     **kwargs)


def test_the_task_payload_is_the_same_whichever_path_built_it():
    world = build_campaign(prompts=2, seeds=2)
    payload = rate_next(annotator=world.annotators[0], campaign_id=world.campaign.pk)
    assert payload == lease_payload(lease_queryset().get(pk=payload["lease"]))


def test_a_vote_returns_the_next_task_and_the_voters_progress():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    outcome = _vote(world, annotator, lease, want_next=True, exclude={lease.pk})
    assert outcome.result.created
    assert outcome.progress == Progress(my_votes=1, remaining=3 * 3 - 1)
    following = Lease.objects.get(pk=outcome.next["lease"])
    assert following.task_id != lease.task_id and following.status == LeaseStatus.ACTIVE
    assert outcome.next == lease_payload(lease_queryset().get(pk=following.pk))


def test_the_remaining_count_follows_every_vote_without_waiting_for_its_refresh():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    counts = []
    for _ in range(3):  # one vote on each of the three tasks
        outcome = _vote(world, annotator, lease, want_next=True, exclude={lease.pk})
        counts.append(outcome.progress.remaining)
        if "lease" in outcome.next:
            lease = Lease.objects.get(pk=outcome.next["lease"])
    assert counts == [3 * 3 - 1, 3 * 3 - 2, 3 * 3 - 3]
    # An undo gives the judgment back to the count at once as well.
    rate_undo(annotator=annotator, campaign=world.campaign, client_id=outcome.result.client_id)
    assert remaining(world.campaign.pk) == 3 * 3 - 2


def test_a_retry_returns_the_stored_judgments_and_leases_nothing_new():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    first = _vote(world, annotator, lease, client_id=client_id, want_next=True,
                  exclude={lease.pk})
    retry = _vote(world, annotator, lease, client_id=client_id, want_next=True,
                  exclude={lease.pk})
    assert not retry.result.created
    assert retry.result.judgments == first.result.judgments
    assert retry.next["lease"] == first.next["lease"]  # the task it already holds
    assert Judgment.objects.count() == 1
    assert Lease.objects.filter(status=LeaseStatus.ACTIVE).count() == 1


def test_a_vote_id_of_someone_else_is_refused():
    world = build_campaign(prompts=2)
    first, second = world.annotators
    client_id = uuid.uuid4()
    _vote(world, first, _lease(world, first), client_id=client_id)
    with pytest.raises(EvalHubError, match="belongs to someone else"):
        _vote(world, second, _lease(world, second), client_id=client_id)
    assert Judgment.objects.count() == 1


def test_a_skipped_or_reported_task_takes_no_vote():
    world = build_campaign(prompts=2)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    lease_close(lease=lease, status=LeaseStatus.SKIPPED)
    with pytest.raises(EvalHubError, match="This task was skipped"):
        _vote(world, annotator, lease)
    assert Judgment.objects.count() == 0


def test_unknown_or_missing_criteria_are_named():
    world = build_campaign(prompts=1, criteria=["overall", "artifacts"])
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    with pytest.raises(EvalHubError, match=r"missing \['artifacts'\], unknown \['colour'\]"):
        _vote(world, annotator, lease, answers={"overall": "left", "colour": "right"})
    assert Judgment.objects.count() == 0


def test_a_late_vote_on_a_task_served_again_to_the_same_annotator_counts_once():
    # The lease expired, the task came back to the same annotator under a new lease, and
    # both pages send a vote: the second one is a conflict, never a second judgment.
    world = build_campaign(prompts=1, judgments_per_pair=2)
    annotator = world.annotators[0]
    old = _lease(world, annotator)
    Lease.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    new = _lease(world, annotator)
    assert new.task_id == old.task_id and new.pk != old.pk
    _vote(world, annotator, new)
    with pytest.raises(VoteConflict):
        _vote(world, annotator, old)
    assert Judgment.objects.count() == 1
    assert world.campaign.tasks.get().judgments_count == 1


def test_a_vote_on_a_lease_taken_before_the_campaign_was_paused_is_refused():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    world.campaign.status = CampaignStatus.PAUSED
    world.campaign.save(update_fields=["status"])
    with pytest.raises(EvalHubError, match="paused, not open for rating"):
        _vote(world, annotator, lease, want_next=True, exclude={lease.pk})
    assert Judgment.objects.count() == 0
    with pytest.raises(EvalHubError, match="not open for rating"):
        rate_next(annotator=annotator, campaign_id=world.campaign.pk)


def test_a_retry_of_a_vote_stored_before_the_campaign_closed_still_answers_recorded():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    first = _vote(world, annotator, lease, client_id=client_id)
    world.campaign.status = CampaignStatus.CLOSED
    world.campaign.save(update_fields=["status"])
    retry = _vote(world, annotator, lease, client_id=client_id)
    assert not retry.result.created and retry.result.judgments == first.result.judgments


def test_a_vote_id_resent_with_another_answer_or_lease_is_a_conflict():
    world = build_campaign(prompts=3)
    annotator = world.annotators[0]
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    first = _vote(world, annotator, lease, answers={"overall": "left"}, client_id=client_id)
    with pytest.raises(VoteConflict, match="already used for a different vote"):
        _vote(world, annotator, lease, answers={"overall": "right"}, client_id=client_id)
    other = _lease(world, annotator)
    with pytest.raises(VoteConflict, match="already used for a different vote"):
        _vote(world, annotator, other, answers={"overall": "left"}, client_id=client_id)
    stored = Judgment.objects.get()
    assert {stored.criterion: stored.outcome} == first.result.judgments
    assert Lease.objects.get(pk=other.pk).status == LeaseStatus.ACTIVE


def test_an_api_token_rates_like_its_user(api):
    from rest_framework.authtoken.models import Token

    world = build_campaign(prompts=2)
    annotator = world.annotators[0]
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    url = f"/api/v1/rate/{world.campaign.pk}/"
    task = api.post(url + "next/", {}, format="json").json()
    answer = api.post(url + "votes/", {"client_id": str(uuid.uuid4()), "lease": task["lease"],
                                       "answers": {"overall": "tie"}}, format="json")
    assert answer.status_code == 201 and answer.json()["progress"]["my_votes"] == 1
    assert Judgment.objects.get().annotator == annotator


def test_unknown_tokens_inactive_users_and_outsiders_are_refused(api):
    from rest_framework.authtoken.models import Token

    from evalhub.campaigns.selectors import NoSuchCampaign
    from tests.factories import UserFactory

    world = build_campaign(prompts=2)
    url = f"/api/v1/rate/{world.campaign.pk}/next/"
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api.post(url, {}, format="json").status_code == 401
    inactive = world.annotators[1]
    key = Token.objects.create(user=inactive).key
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.post(url, {}, format="json").status_code == 401
    with pytest.raises(NoSuchCampaign):
        rate_next(annotator=UserFactory(), campaign_id=world.campaign.pk)
    with pytest.raises(NoSuchCampaign):
        rate_vote(annotator=UserFactory(), campaign_id=world.campaign.pk,
                  vote=Vote(uuid.uuid4(), uuid.uuid4(), {"overall": "tie"}))
    assert Lease.objects.count() == 0
