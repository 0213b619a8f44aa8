"""Late votes and undo: what a vote on an expired lease, a resent undone vote and concurrent
undos are answered, on pairs and best-of-K alike (through the annotator API).

A late vote (its lease expired) counts only if nobody else has taken the task meanwhile, and
never gives a task more judgments than it needs. The task served again to the same annotator
(a reloaded page whose outbox still holds the vote) is not "someone else": the vote counts and
closes that newer lease as answered by it. An undone vote stays undone, whoever resends
it, and the answer says so.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, Judgment, Lease, LeaseStatus, TaskKind
from evalhub.campaigns.serving.voting import (
    ALREADY_JUDGED,
    LATE_TASK_FULL,
    LEASE_TAKEN,
    UNDO_ALREADY,
    UNDO_NOTHING,
    VOTE_UNDONE,
)
from tests.builders import build_campaign
from tests.threads import race

pytestmark = pytest.mark.django_db

KINDS = [pytest.param({}, id="pairs"),
         pytest.param({"runs": 3, "task_kind": TaskKind.BEST_OF_K, "k": 3}, id="best-of-k")]


def _url(world, suffix=""):
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


def _next(api, world, annotator):
    api.force_login(annotator)
    answer = api.post(_url(world, "next/"), {}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _vote(api, world, annotator, task, client_id, *, exclude=None):
    """One vote on the task payload as the page sends it: the left image (pairs) or the first
    slot (best of K); with ``exclude`` (the leases the page shows), asking for the next task."""
    api.force_login(annotator)
    body = {"client_id": str(client_id), "lease": task["lease"], "latency_ms": 900}
    if exclude is not None:
        body["next"] = {"exclude": exclude}
    if task.get("kind") == "best_of_k":
        body["rankings"] = {"overall": [0]}
    else:
        body["answers"] = {"overall": "left"}
    return api.post(_url(world, "votes/"), body, format="json")


def _expire(task):
    Lease.objects.filter(pk=task["lease"]).update(
        expires_at=timezone.now() - timedelta(seconds=1))


def _task_of(task) -> ComparisonTask:
    return ComparisonTask.objects.get(leases__pk=task["lease"])


# --- late votes -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_resent_after_the_new_holder_voted_is_still_refused(api, kind):
    world = build_campaign(prompts=1, judgments_per_pair=1, **kind)
    late, other = world.annotators
    mine = _next(api, world, late)
    _expire(mine)
    theirs = _next(api, world, other)
    assert _task_of(theirs).pk == _task_of(mine).pk
    client_id = uuid.uuid4()
    refused = _vote(api, world, late, mine, client_id)
    assert (refused.status_code, refused.json()["detail"]) == (400, LEASE_TAKEN)
    assert _vote(api, world, other, theirs, uuid.uuid4()).status_code == 201
    # The page's outbox sends the refused vote again (or another vote on that lease).
    for resent in (client_id, uuid.uuid4()):
        again = _vote(api, world, late, mine, resent)
        assert (again.status_code, again.json()["detail"]) == (400, LEASE_TAKEN)
    task = _task_of(mine)
    assert (task.judgments_count, task.judgments_needed) == (1, 1)
    assert list(Judgment.objects.values_list("annotator_id", flat=True)) == [other.pk]


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_is_refused_once_someone_else_leased_the_task_even_if_they_let_it_go(
        api, kind):
    # The other annotator's lease expired (or was skipped): the task was theirs after this one,
    # so this lease's turn is over; the task is served again to whoever asks next.
    world = build_campaign(prompts=1, judgments_per_pair=2, annotators=3, **kind)
    late, other, third = world.annotators
    mine = _next(api, world, late)
    _expire(mine)
    theirs = _next(api, world, other)
    api.force_login(other)
    assert api.post(_url(world, f"leases/{theirs['lease']}/skip/"), {},
                    format="json").status_code == 200
    refused = _vote(api, world, late, mine, uuid.uuid4())
    assert (refused.status_code, refused.json()["detail"]) == (400, LEASE_TAKEN)
    assert _task_of(mine).judgments_count == 0
    assert _task_of(_next(api, world, third)).pk == _task_of(mine).pk


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_counts_when_only_earlier_leases_of_others_exist(api, kind):
    # Someone had the task before this lease and let it go: nobody took it after this lease,
    # so its late vote counts.
    world = build_campaign(prompts=1, judgments_per_pair=2, **kind)
    before, late = world.annotators
    earlier = _next(api, world, before)
    _expire(earlier)
    mine = _next(api, world, late)
    assert _task_of(mine).pk == _task_of(earlier).pk
    _expire(mine)
    assert _vote(api, world, late, mine, uuid.uuid4()).status_code == 201
    assert _task_of(mine).judgments_count == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_counts_when_the_task_was_leased_again_to_the_same_annotator(api, kind):
    # QA's case: the page reloaded after the lease expired and was given the same task again
    # (a new lease), while its outbox still held the vote on the old lease. Nobody else had
    # the task: the vote is this annotator's answer to it, and the newer lease is closed as
    # answered by it, so the task does not stay leased.
    world = build_campaign(prompts=1, judgments_per_pair=2, **kind)
    late, other = world.annotators
    first = _next(api, world, late)
    _expire(first)
    again = _next(api, world, late)
    assert again["lease"] != first["lease"]
    assert _task_of(again).pk == _task_of(first).pk
    # The page shows the new lease and asks for the next task with the vote.
    answer = _vote(api, world, late, first, uuid.uuid4(), exclude=[again["lease"]])
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["closed"] == [again["lease"]]
    assert body["progress"]["my_votes"] == 1
    assert body["next"]["done"] is True  # the one task is answered: nothing left for them
    task = _task_of(first)
    assert task.judgments_count == 1
    assert set(task.judgments.values_list("annotator_id", "lease_id")) == {
        (late.pk, uuid.UUID(first["lease"]))}
    assert Lease.objects.get(pk=again["lease"]).status == LeaseStatus.COMPLETED
    assert not task.leases.filter(status=LeaseStatus.ACTIVE).exists()
    # A vote on the closed lease (a page that missed that answer) is the usual answer to a
    # second vote on a task already answered; the task keeps its one judgment.
    second = _vote(api, world, late, again, uuid.uuid4())
    assert (second.status_code, second.json()["detail"]) == (409, ALREADY_JUDGED)
    assert _task_of(first).judgments_count == 1
    # Nobody holds the task: the other annotator is served it for its second judgment.
    theirs = _next(api, world, other)
    assert _task_of(theirs).pk == task.pk
    assert _vote(api, world, other, theirs, uuid.uuid4()).status_code == 201
    assert _task_of(first).judgments_count == 2


def test_the_vote_leases_next_a_task_the_page_does_not_show_not_the_lease_it_closed(api):
    # The vote named no lease the page shows (its newer lease not shown yet): the newer lease
    # it closed is not handed back as "a task held and not shown"; the next task is a new one.
    world = build_campaign(prompts=2, judgments_per_pair=2)
    late, other = world.annotators
    voted = _next(api, world, other)
    assert _vote(api, world, other, voted, uuid.uuid4()).status_code == 201
    # Fewest judgments first: the task without a vote is served to `late`, twice.
    first = _next(api, world, late)
    _expire(first)
    again = _next(api, world, late)
    assert _task_of(again).pk == _task_of(first).pk != _task_of(voted).pk
    answer = _vote(api, world, late, first, uuid.uuid4(), exclude=[])
    assert answer.status_code == 201, answer.content
    assert answer.json()["closed"] == [again["lease"]]
    following = answer.json()["next"]
    assert following["lease"] != again["lease"] and _task_of(following).pk == _task_of(voted).pk
    assert Lease.objects.get(pk=following["lease"]).status == LeaseStatus.ACTIVE


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_is_refused_when_another_annotator_had_the_task_between_two_leases_of_mine(
        api, kind):
    # Leased to me, then to someone else (who let it go), then to me again: the other
    # annotator's turn came after my first lease, so a vote on it is refused, and my newer
    # lease is left as it was.
    world = build_campaign(prompts=1, judgments_per_pair=2, **kind)
    late, other = world.annotators
    first = _next(api, world, late)
    _expire(first)
    theirs = _next(api, world, other)
    _expire(theirs)
    again = _next(api, world, late)
    assert _task_of(again).pk == _task_of(theirs).pk == _task_of(first).pk
    refused = _vote(api, world, late, first, uuid.uuid4())
    assert (refused.status_code, refused.json()["detail"]) == (400, LEASE_TAKEN)
    assert Lease.objects.get(pk=again["lease"]).status == LeaseStatus.ACTIVE
    assert _task_of(first).judgments_count == 0
    assert _vote(api, world, late, again, uuid.uuid4()).status_code == 201


def test_a_late_vote_on_a_set_retired_while_leased_again_to_me_is_refused(api):
    # Served again to the same annotator, but the set was retired meanwhile: the vote would
    # give it a judgment it does not need. Refused; the newer lease is left as it was.
    from tests.campaigns.test_best_of_k import _show_one_file_twice_and_migrate

    world = build_campaign(prompts=1, runs=3, task_kind=TaskKind.BEST_OF_K, k=3)
    late = world.annotators[0]
    first = _next(api, world, late)
    _expire(first)
    again = _next(api, world, late)
    assert _task_of(again).pk == _task_of(first).pk
    _show_one_file_twice_and_migrate(_task_of(first))
    refused = _vote(api, world, late, first, uuid.uuid4())
    assert (refused.status_code, refused.json()["detail"]) == (400, LATE_TASK_FULL)
    assert Lease.objects.get(pk=again["lease"]).status == LeaseStatus.ACTIVE


@pytest.mark.parametrize("kind", KINDS)
def test_a_vote_counted_through_a_newer_lease_of_mine_can_be_undone_and_the_pair_comes_back(
        api, kind):
    # Undo treats the newer lease the late vote closed as it treats the vote's own: not a
    # task "seen" by the annotator, so the pair is leased back now and served again later.
    world = build_campaign(prompts=1, judgments_per_pair=2, **kind)
    late = world.annotators[0]
    first = _next(api, world, late)
    _expire(first)
    again = _next(api, world, late)
    client_id = uuid.uuid4()
    assert _vote(api, world, late, first, client_id).status_code == 201
    back = api.post(_url(world, "votes/undo/"), {"client_id": str(client_id)}, format="json")
    assert back.status_code == 201, back.content
    assert _task_of(back.json()).pk == _task_of(again).pk
    assert _task_of(first).judgments_count == 0
    _expire(back.json())
    served = _next(api, world, late)
    assert _task_of(served).pk == _task_of(first).pk


def test_a_late_vote_on_a_set_retired_meanwhile_is_refused(api):
    # The lease expired unvoted and, meanwhile, its set was retired (it shows one file twice:
    # it needs no judgment any more). Nobody else took it, but a late vote would still give it
    # more judgments than it needs.
    from tests.campaigns.test_best_of_k import _show_one_file_twice_and_migrate

    world = build_campaign(prompts=1, runs=3, task_kind=TaskKind.BEST_OF_K, k=3)
    late = world.annotators[0]
    mine = _next(api, world, late)
    _expire(mine)
    _show_one_file_twice_and_migrate(_task_of(mine))
    refused = _vote(api, world, late, mine, uuid.uuid4())
    assert (refused.status_code, refused.json()["detail"]) == (400, LATE_TASK_FULL)
    task = _task_of(mine)
    assert (task.judgments_count, task.judgments_needed) == (0, 0)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_racing_the_new_holders_vote_never_overfills_the_task(kind):
    # The late voter's outbox sends its vote at the moment the annotator who holds the task now
    # votes on it, and again afterwards: in whichever order, the task gets one judgment.
    assert connection.vendor == "postgresql"
    from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote

    for _ in range(3):
        world = build_campaign(prompts=1, judgments_per_pair=1, **kind)
        late, other = world.annotators
        mine = rate_next(annotator=late, campaign_id=world.campaign.pk)
        _expire(mine)
        theirs = rate_next(annotator=other, campaign_id=world.campaign.pk)

        def vote(annotator, payload, client_id, world=world):
            best_of_k = payload.get("kind") == "best_of_k"
            return lambda: rate_vote(
                annotator=annotator, campaign_id=world.campaign.pk,
                vote=Vote(client_id, uuid.UUID(payload["lease"]),
                          {} if best_of_k else {"overall": "left"},
                          rankings={"overall": [0]} if best_of_k else None)).result

        late_vote = vote(late, mine, uuid.uuid4())
        results = race([late_vote, vote(other, theirs, uuid.uuid4())])
        resent = race([late_vote])[0]
        task = _task_of(mine)
        assert task.judgments_count == 1, (results, resent)
        assert list(task.judgments.values_list("annotator_id", flat=True)) == [other.pk]
        assert all(str(r) == LEASE_TAKEN for r in (results[0], resent)), (results, resent)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_late_vote_racing_my_vote_on_the_newer_lease_of_the_same_task_counts_once(kind):
    # The outbox's vote on the expired lease and the annotator's vote on the lease the page
    # shows now (the same task, served again) arrive at once: the task's lock orders them, one
    # is stored and the other is answered "already judged"; no lease of the task stays active.
    assert connection.vendor == "postgresql"
    from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
    from evalhub.campaigns.serving.voting import VoteConflict

    for _ in range(3):
        world = build_campaign(prompts=1, judgments_per_pair=2, **kind)
        late = world.annotators[0]
        first = rate_next(annotator=late, campaign_id=world.campaign.pk)
        _expire(first)
        again = rate_next(annotator=late, campaign_id=world.campaign.pk)
        assert _task_of(again).pk == _task_of(first).pk

        def vote(payload, world=world, late=late):
            best_of_k = payload.get("kind") == "best_of_k"
            return lambda: rate_vote(
                annotator=late, campaign_id=world.campaign.pk,
                vote=Vote(uuid.uuid4(), uuid.UUID(payload["lease"]),
                          {} if best_of_k else {"overall": "left"},
                          rankings={"overall": [0]} if best_of_k else None)).result

        results = race([vote(first), vote(again)])
        stored = [r for r in results if not isinstance(r, Exception)]
        assert len(stored) == 1 and stored[0].created, results
        refused = [r for r in results if isinstance(r, Exception)]
        assert all(isinstance(r, VoteConflict) and str(r) == ALREADY_JUDGED
                   for r in refused), results
        task = _task_of(first)
        assert task.judgments_count == 1
        assert task.judgments.filter(retracted_at__isnull=True).count() == 1
        assert not task.leases.filter(status=LeaseStatus.ACTIVE).exists()


# --- undone votes -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_undone_vote_resent_under_its_id_is_answered_undone_not_recorded(api, kind):
    world = build_campaign(prompts=2, **kind)
    annotator = world.annotators[0]
    task = _next(api, world, annotator)
    client_id = uuid.uuid4()
    assert _vote(api, world, annotator, task, client_id).status_code == 201
    assert api.post(_url(world, "votes/undo/"), {"client_id": str(client_id)},
                    format="json").status_code == 201
    resent = _vote(api, world, annotator, task, client_id)
    assert resent.status_code == 409
    assert (resent.json()["code"], resent.json()["detail"]) == ("vote_undone", VOTE_UNDONE)
    assert Judgment.objects.get(client_id=client_id).retracted_at is not None
    assert _task_of(task).judgments_count == 0


@pytest.mark.parametrize("kind", KINDS)
def test_undoing_a_vote_twice_says_it_was_undone_already(api, kind):
    world = build_campaign(prompts=2, **kind)
    annotator, stranger = world.annotators
    task = _next(api, world, annotator)
    client_id = uuid.uuid4()
    _vote(api, world, annotator, task, client_id)
    undo = {"client_id": str(client_id)}
    assert api.post(_url(world, "votes/undo/"), undo, format="json").status_code == 201
    again = api.post(_url(world, "votes/undo/"), undo, format="json")
    assert again.status_code == 400
    assert (again.json()["code"], again.json()["detail"]) == ("vote_undone", UNDO_ALREADY)
    # Someone else's vote id, or one never stored: no such vote, without the code.
    api.force_login(stranger)
    for foreign in (client_id, uuid.uuid4()):
        answer = api.post(_url(world, "votes/undo/"), {"client_id": str(foreign)},
                          format="json")
        assert answer.status_code == 400
        assert answer.json()["detail"] == UNDO_NOTHING and "code" not in answer.json()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("judgments_per_pair", [1, 2])
def test_concurrent_undos_of_one_vote_retract_it_once(judgments_per_pair):
    # The page's undo sent several times at once (a lost answer, a second tab): one undoes the
    # vote and hands the pair back; the others are told it was undone already.
    assert connection.vendor == "postgresql"
    from evalhub.campaigns.serving.rating import Vote, rate_next, rate_undo, rate_vote
    from evalhub.campaigns.serving.voting import AlreadyUndone, Undone

    world = build_campaign(prompts=1, judgments_per_pair=judgments_per_pair, annotators=2)
    for voter in world.annotators[:judgments_per_pair]:
        payload = rate_next(annotator=voter, campaign_id=world.campaign.pk)
        client_id = uuid.uuid4()
        rate_vote(annotator=voter, campaign_id=world.campaign.pk,
                  vote=Vote(client_id, uuid.UUID(payload["lease"]), {"overall": "left"}))
    results = race([lambda: rate_undo(annotator=voter, campaign=world.campaign,
                                      client_id=client_id)] * 4)
    assert sum(isinstance(r, Undone) for r in results) == 1, results
    refused = [r for r in results if not isinstance(r, Undone)]
    assert all(isinstance(r, AlreadyUndone) and r.code == "vote_undone"
               and r.http_status == 400 for r in refused), results
    task = ComparisonTask.objects.get(campaign=world.campaign)
    assert task.judgments_count == judgments_per_pair - 1
    assert task.judgments.filter(retracted_at__isnull=True).count() == judgments_per_pair - 1
    # The pair is handed back once: one active lease, the undoer's.
    assert list(Lease.objects.filter(status=LeaseStatus.ACTIVE).values_list(
        "annotator_id", flat=True)) == [voter.pk]
