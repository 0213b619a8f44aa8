"""Prepared writes store what the ORM's ``bulk_create`` and ``update`` store, for every set of
values, compiled once per shape."""

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evalhub.campaigns.models import JudgeKind, Judgment, Lease, LeaseStatus
from evalhub.core.prepared import Param, PreparedInsert, PreparedUpdate
from tests.factories import LeaseFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("task_id", "campaign_id", "criterion", "outcome", "judge_kind", "annotator_id",
           "lease_id", "a_side", "ranking", "shown_order", "latency_ms", "client_id",
           "retracted_at", "metric_name", "metric_calibrated")


def _judgments(lease: Lease, client_id: uuid.UUID, criteria=("overall", "realism")) -> list:
    return [Judgment(task_id=lease.task_id, campaign_id=lease.campaign_id, criterion=c,
                     outcome="ranked" if i else "a", judge_kind=JudgeKind.HUMAN,
                     annotator_id=lease.annotator_id, lease=lease, a_side="left",
                     ranking=[1, 0] if i else None, shown_order=[0, 1] if i else None,
                     latency_ms=1500 + i, client_id=client_id)
            for i, c in enumerate(criteria)]


def _stored(client_id: uuid.UUID) -> list[tuple]:
    return list(Judgment.objects.filter(client_id=client_id).order_by("criterion")
                .values_list(*COLUMNS))


def test_an_insert_stores_what_bulk_create_stores():
    lease = LeaseFactory()
    client_id = uuid.uuid4()
    Judgment.objects.bulk_create(_judgments(lease, client_id))
    by_orm = _stored(client_id)
    Judgment.objects.filter(client_id=client_id).delete()
    before = timezone.now()
    PreparedInsert(Judgment).run(_judgments(lease, client_id))
    assert _stored(client_id) == by_orm
    # JSON None is SQL NULL, as the ORM stores it; auto_now_add is filled at insert time.
    assert Judgment.objects.filter(client_id=client_id, ranking__isnull=True).count() == 1
    created = Judgment.objects.filter(client_id=client_id).values_list("created_at", flat=True)
    assert all(when >= before for when in created)


def test_an_insert_of_a_client_keyed_row_stores_its_key():
    original = LeaseFactory()
    copy = Lease(id=uuid.uuid4(), task_id=original.task_id, campaign_id=original.campaign_id,
                 annotator_id=original.annotator_id, a_side="right", order=[2, 0, 1],
                 status=LeaseStatus.EXPIRED, expires_at=timezone.now() + timedelta(hours=1))
    PreparedInsert(Lease).run([copy])
    stored = Lease.objects.get(pk=copy.pk)
    assert (stored.a_side, stored.order, stored.status) == ("right", [2, 0, 1], "expired")
    assert stored.leased_at is not None
    assert not copy._state.adding


def test_a_refused_insert_raises_and_spoils_only_its_transaction():
    lease = LeaseFactory()
    client_id = uuid.uuid4()
    insert = PreparedInsert(Judgment)
    insert.run(_judgments(lease, client_id, criteria=("overall",)))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert.run(_judgments(lease, client_id, criteria=("overall",)))  # same client id
    assert len(_stored(client_id)) == 1


def test_an_insert_is_compiled_once_per_row_count(monkeypatch):
    insert = PreparedInsert(Judgment)
    compiled = []
    original = insert._compile
    monkeypatch.setattr(insert, "_compile", lambda using, count: (
        compiled.append(count), original(using, count))[1])
    for criteria in (("overall",), ("overall", "realism"), ("overall",)):
        insert.run(_judgments(LeaseFactory(), uuid.uuid4(), criteria))
    assert compiled == [1, 2]
    assert Judgment.objects.count() == 4


def _close(lease_id, now):
    return Lease.objects.filter(pk=lease_id), {"status": LeaseStatus.COMPLETED,
                                               "closed_at": now, "order": None}


CLOSE = PreparedUpdate(lambda: _close(Param("lease", Lease._meta.pk),
                                      Param("now", Lease._meta.get_field("closed_at"))))


def test_an_update_changes_what_queryset_update_changes():
    by_orm, by_prepared, untouched = (LeaseFactory(order=[1, 0]) for _ in range(3))
    now = timezone.now()
    queryset, changes = _close(by_orm.pk, now)
    assert queryset.update(**changes) == 1
    assert CLOSE.run(lease=by_prepared.pk, now=now) == 1
    fields = ("status", "closed_at", "order")
    rows = {lease.pk: Lease.objects.filter(pk=lease.pk).values_list(*fields).get()
            for lease in (by_orm, by_prepared, untouched)}
    assert rows[by_prepared.pk] == rows[by_orm.pk] == (LeaseStatus.COMPLETED, now, None)
    assert rows[untouched.pk] == (LeaseStatus.ACTIVE, None, [1, 0])
    # No such row: nothing updated, and it says so.
    assert CLOSE.run(lease=uuid.uuid4(), now=now) == 0


def test_an_update_with_an_expression_reads_the_row_it_updates():
    lease = LeaseFactory()
    task = lease.task
    count = PreparedUpdate(lambda: (
        type(task).objects.filter(pk=Param("task", type(task)._meta.pk)),
        {"judgments_count": F("judgments_count") + 1}))
    for _ in range(3):
        assert count.run(task=task.pk) == 1
    task.refresh_from_db()
    assert task.judgments_count == 3
