"""An undo that finds no vote withdraws the vote id: the vote, arriving afterwards (resent from
another tab sharing the outbox, or a slow retry), is refused as an undone vote.

The rating page undoes a vote still on the wire by its id; "no such vote" (400 without a code)
tells it the vote never arrived, and the page shows its lease again. Were the vote to land
after that answer, it would count though the annotator took it back: so the undo records the
id as withdrawn by its annotator, and a vote under it is answered 409 ``vote_undone`` as a vote
resent after it was undone, storing nothing and leaving its lease the annotator's to answer
under a new id. Only the annotator's own ids are withdrawn: another annotator's vote under the
same id is not touched.
"""

import time
import uuid

import pytest
from django.db import connection

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus, WithdrawnVote
from evalhub.campaigns.serving import voting
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_undo, rate_vote
from evalhub.campaigns.serving.voting import (
    UNDO_NOTHING,
    VOTE_UNDONE,
    AlreadyUndone,
    Undone,
    VoteUndone,
)
from evalhub.core.errors import EvalHubError
from tests.builders import build_campaign
from tests.threads import race

pytestmark = pytest.mark.django_db


def _lease(world, annotator) -> uuid.UUID:
    return uuid.UUID(rate_next(annotator=annotator, campaign_id=world.campaign.pk)["lease"])


def _vote(world, annotator, lease: uuid.UUID, client_id: uuid.UUID):
    return rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                     vote=Vote(client_id, lease, {"overall": "left"}))


def _undo(world, annotator, client_id: uuid.UUID):
    return rate_undo(annotator=annotator, campaign=world.campaign, client_id=client_id)


def _url(world, suffix: str) -> str:
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


# --- through the rating service ---------------------------------------------------------------


def test_a_vote_arriving_after_its_undo_found_nothing_is_refused_as_undone():
    world = build_campaign(prompts=2)
    annotator = world.annotator
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()

    # The undo comes first: no such vote (as before), and the id is withdrawn.
    with pytest.raises(EvalHubError) as nothing:
        _undo(world, annotator, client_id)
    assert type(nothing.value) is EvalHubError  # not AlreadyUndone: no code
    assert (nothing.value.http_status, nothing.value.code) == (400, None)
    assert nothing.value.message == UNDO_NOTHING

    # The vote lands afterwards: refused as a vote resent after its undo, nothing stored.
    with pytest.raises(VoteUndone) as refused:
        _vote(world, annotator, lease, client_id)
    assert (refused.value.http_status, refused.value.code) == (409, "vote_undone")
    assert refused.value.message == VOTE_UNDONE
    assert not Judgment.objects.filter(client_id=client_id).exists()

    # The lease is untouched: still the annotator's, answerable under a new id.
    held = Lease.objects.get(pk=lease)
    assert (held.status, held.annotator_id) == (LeaseStatus.ACTIVE, annotator.pk)
    assert held.task.judgments_count == 0
    again = _vote(world, annotator, lease, uuid.uuid4())
    assert again.result.created
    assert Lease.objects.get(pk=lease).status == LeaseStatus.COMPLETED


def test_the_withdrawn_id_is_refused_however_often_it_is_resent_and_undone():
    world = build_campaign(prompts=2)
    annotator = world.annotator
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    for _ in range(2):
        with pytest.raises(EvalHubError, match="No such vote"):
            _undo(world, annotator, client_id)
    assert WithdrawnVote.objects.filter(annotator=annotator, client_id=client_id).count() == 1
    for _ in range(2):
        with pytest.raises(VoteUndone):
            _vote(world, annotator, lease, client_id)
    assert not Judgment.objects.filter(client_id=client_id).exists()


def test_an_id_withdrawn_by_another_annotator_does_not_block_a_vote():
    world = build_campaign(prompts=2)
    voter, stranger = world.annotators
    lease = _lease(world, voter)
    client_id = uuid.uuid4()
    with pytest.raises(EvalHubError, match="No such vote"):
        _undo(world, stranger, client_id)  # the stranger's withdrawal of the same id
    stored = _vote(world, voter, lease, client_id)
    assert stored.result.created
    assert Judgment.objects.get(client_id=client_id).annotator_id == voter.pk
    # The voter's own undo still retracts it, and the pair comes back to them.
    undone = _undo(world, voter, client_id)
    assert isinstance(undone, Undone) and undone.lease is not None
    assert Judgment.objects.get(client_id=client_id).retracted_at is not None


def test_a_vote_then_its_undo_then_its_resend_is_answered_as_before():
    world = build_campaign(prompts=2)
    annotator = world.annotator
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    assert _vote(world, annotator, lease, client_id).result.created
    undone = _undo(world, annotator, client_id)
    assert isinstance(undone, Undone) and undone.lease is not None
    with pytest.raises(VoteUndone):
        _vote(world, annotator, lease, client_id)
    with pytest.raises(AlreadyUndone):
        _undo(world, annotator, client_id)
    # A vote that arrived is not "withdrawn before arrival": no tombstone is recorded for it.
    assert not WithdrawnVote.objects.exists()
    judgment = Judgment.objects.get(client_id=client_id)
    assert judgment.retracted_at is not None
    assert judgment.task.judgments_count == 0


# --- through the API --------------------------------------------------------------------------


def test_through_the_api_the_vote_after_its_undo_is_409_vote_undone(api):
    world = build_campaign(prompts=2)
    annotator, stranger = world.annotators
    api.force_login(annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    client_id = str(uuid.uuid4())

    undo = api.post(_url(world, "votes/undo/"), {"client_id": client_id}, format="json")
    assert undo.status_code == 400
    assert undo.json()["detail"] == UNDO_NOTHING and "code" not in undo.json()

    body = {"client_id": client_id, "lease": task["lease"], "answers": {"overall": "left"},
            "latency_ms": 900}
    vote = api.post(_url(world, "votes/"), body, format="json")
    assert vote.status_code == 409
    assert (vote.json()["code"], vote.json()["detail"]) == ("vote_undone", VOTE_UNDONE)
    assert not Judgment.objects.filter(client_id=client_id).exists()

    # Its lease is still the annotator's: shown again by the page, answered under a new id.
    shown = api.get(_url(world, "leases/"))
    assert [lease["lease"] for lease in shown.json()] == [task["lease"]]
    fresh = api.post(_url(world, "votes/"), {**body, "client_id": str(uuid.uuid4())},
                     format="json")
    assert fresh.status_code == 201, fresh.content

    # Another annotator's vote under the same id is theirs to make.
    api.force_login(stranger)
    theirs = api.post(_url(world, "next/"), {}, format="json").json()
    answer = api.post(_url(world, "votes/"), {**body, "lease": theirs["lease"]}, format="json")
    assert answer.status_code == 201, answer.content


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


class _SlowCount:
    """The vote's counter update, after a pause: the vote's transaction stays open (its
    judgments inserted, uncommitted) while the undo looks for them."""

    def __init__(self, update, seconds: float) -> None:
        self.update, self.seconds = update, seconds

    def run(self, **values):
        time.sleep(self.seconds)
        return self.update.run(**values)


def _after(seconds: float, fn):
    def delayed():
        time.sleep(seconds)
        return fn()
    return delayed


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_undo_while_its_vote_is_being_stored_waits_and_retracts_it(monkeypatch):
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=2)
    annotator = world.annotator
    lease = _lease(world, annotator)
    client_id = uuid.uuid4()
    monkeypatch.setattr(voting, "_COUNT_VOTE", _SlowCount(voting._COUNT_VOTE, 0.8))
    vote, undo = race([lambda: _vote(world, annotator, lease, client_id),
                       _after(0.3, lambda: _undo(world, annotator, client_id))])
    # The undo found no committed vote, waited for the one being stored, and retracted it.
    assert vote.result.created, vote
    assert isinstance(undo, Undone), undo
    assert Judgment.objects.get(client_id=client_id).retracted_at is not None
    assert Lease.objects.get(pk=lease).task.judgments_count == 0
    assert not WithdrawnVote.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_undo_and_its_vote_racing_never_both_succeed():
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=4)
    annotator = world.annotator
    for _ in range(12):
        lease = _lease(world, annotator)  # the lease held (untouched, or handed back)
        client_id = uuid.uuid4()
        vote, undo = race([lambda lease=lease, client_id=client_id:
                           _vote(world, annotator, lease, client_id),
                           lambda client_id=client_id: _undo(world, annotator, client_id)])
        live = Judgment.objects.filter(client_id=client_id, retracted_at__isnull=True)
        assert not live.exists(), (vote, undo)  # never counted
        if isinstance(undo, Undone):  # the vote first, retracted by the undo
            assert vote.result.created, vote
            assert Judgment.objects.filter(client_id=client_id).exists()
            assert not WithdrawnVote.objects.filter(client_id=client_id).exists()
        else:  # the undo first: the id withdrawn, the vote refused, nothing stored
            assert type(undo) is EvalHubError and undo.message == UNDO_NOTHING, undo
            assert isinstance(vote, VoteUndone), vote
            assert not Judgment.objects.filter(client_id=client_id).exists()
            assert WithdrawnVote.objects.filter(client_id=client_id).exists()
            assert Lease.objects.get(pk=lease).status == LeaseStatus.ACTIVE
