"""A prepared query returns what the same queryset returns, for every set of values."""

import gc
import weakref

import pytest
from django.db import connections
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from evalhub.campaigns.models import Lease, LeaseStatus
from evalhub.core.prepared import Param, PreparedQuery
from tests.factories import LeaseFactory, UserFactory
from tests.threads import race

pytestmark = pytest.mark.django_db

EXPIRES = Lease._meta.get_field("expires_at")


def _leases(*, annotator, now, excluded=()) -> object:
    """The same query written for literal values and for parameters."""
    others = Lease.objects.filter(task=OuterRef("task"), annotator_id=annotator).exclude(
        pk=OuterRef("pk"))
    return (Lease.objects.select_related("campaign", "task__prompt")
            .filter(Q(expires_at__gt=now) | Q(status=LeaseStatus.COMPLETED))
            .exclude(pk__in=list(excluded))
            .annotate(has_twin=Exists(others),
                      campaign_leases=Count("campaign__leases", distinct=True))
            .order_by("leased_at", "pk"))


def _prepared_leases(excluded: int):
    return _leases(annotator=Param("annotator", Lease._meta.get_field("annotator").target_field),
                   now=Param("now", EXPIRES),
                   excluded=[Param(f"x{i}", Lease._meta.pk) for i in range(excluded)])


PREPARED = PreparedQuery(_prepared_leases)


def _fields(lease: Lease) -> tuple:
    return (lease.pk, lease.expires_at, lease.status, lease.campaign.name, lease.task.prompt.text,
            lease.has_twin, lease.campaign_leases)


def test_a_prepared_query_returns_the_querysets_instances_with_relations_and_annotations():
    leases = LeaseFactory.create_batch(4)
    now = timezone.now()
    for lease, when in zip(leases, (-60, 60, 120, -1), strict=True):
        Lease.objects.filter(pk=lease.pk).update(expires_at=now + timezone.timedelta(seconds=when))
    annotator = leases[0].annotator_id

    for excluded in ([], [leases[1].pk], [leases[1].pk, leases[2].pk]):
        expected = [_fields(x) for x in _leases(annotator=annotator, now=now, excluded=excluded)]
        got = PREPARED.run(len(excluded), annotator=annotator, now=now,
                           **{f"x{i}": pk for i, pk in enumerate(excluded)})
        assert [_fields(x) for x in got] == expected
        assert all(isinstance(x, Lease) for x in got)
    # The values change the rows, not a cached answer.
    later = PREPARED.run(0, annotator=UserFactory().pk, now=now + timezone.timedelta(hours=1))
    assert len(later) < len(PREPARED.run(0, annotator=annotator, now=now))


def test_a_prepared_query_is_compiled_once_per_shape():
    LeaseFactory()
    calls = []

    def build(excluded: int):
        calls.append(excluded)
        return _prepared_leases(excluded)

    query = PreparedQuery(build)
    now = timezone.now()
    for _ in range(3):
        query.run(0, annotator=1, now=now)
        query.run(1, annotator=1, now=now, x0=LeaseFactory().pk)
    assert calls == [0, 1]


def test_each_connection_compiles_its_own_statements():
    calls = []
    query = PreparedQuery(lambda: (calls.append(1), Lease.objects.filter(
        expires_at__gt=Param("now", EXPIRES)))[1])
    now = timezone.now()
    query.run(now=now)
    query.run(now=now)
    [outcome] = race([lambda: (query.run(now=now), query.run(now=now))])  # own connection
    assert not isinstance(outcome, Exception), outcome
    query.run(now=now)
    assert len(calls) == 2


def test_a_connection_django_has_let_go_of_is_not_kept_alive():
    """A thread's connection that Django replaced (or a settings override did) must be freed,
    while the thread goes on: compiled statements held for it elsewhere kept it alive and,
    unless closed, its session open on the database until the thread ended, which for the
    main thread of a worker or a test process is when the process exits."""
    query = PreparedQuery(lambda: Lease.objects.filter(expires_at__gt=Param("now", EXPIRES)))
    freed: list[bool] = []

    def work() -> None:
        query.run(now=timezone.now())
        old = connections["default"]
        let_go = weakref.ref(old)
        connections["default"] = connections.create_connection("default")
        old.close()
        del old
        gc.collect()
        freed.append(let_go() is None)
        assert Lease.objects.count() == 0  # the new connection works

    [outcome] = race([work])
    assert outcome is None, outcome
    assert freed == [True]
