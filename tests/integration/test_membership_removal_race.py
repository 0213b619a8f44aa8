"""Removing an annotator from a project while one of their requests is being served, on
PostgreSQL with real threads: the removal waits for the lease being written, and neither
side fails.

The rating path locks a task row, then writes a lease (or a vote) whose foreign key takes a
key-share lock on the campaign's row. ``membership_remove`` locks the person's places on the
project's campaigns' annotator lists, a query that joins the campaign: a plain FOR UPDATE there
locked the campaign rows against that key-share lock while the removal then waited for the
task (to expire the person's leases): a deadlock, answered 503 to one of the two.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, Lease, LeaseStatus
from evalhub.campaigns.services import campaign_set_annotators
from evalhub.projects.models import Membership
from evalhub.projects.services import membership_remove
from tests.builders import build_campaign
from tests.threads import race, until_a_backend_waits_for_a_lock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_annotator_removed_while_a_lease_is_written_leaves_and_the_lease_is_kept():
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=2, annotators=2)
    campaign = world.campaign
    leaving, staying = world.annotators
    campaign_set_annotators(campaign=campaign, annotators=[leaving, staying])
    first, second = ComparisonTask.objects.filter(campaign=campaign, is_gold=False).order_by(
        "pk")[:2]
    held = Lease.objects.create(task=first, campaign=campaign, annotator=leaving,
                                expires_at=timezone.now() + timedelta(minutes=3))
    membership = Membership.objects.get(project=campaign.project, user=leaving)
    task_locked, removal_waiting = threading.Event(), threading.Event()

    def serve() -> str:
        # A request in flight: the leaving annotator's task locked (as a vote locks its
        # lease's task), then a row referring to the campaign written.
        with transaction.atomic():
            list(ComparisonTask.objects.select_for_update(no_key=True).filter(pk=first.pk))
            task_locked.set()
            assert removal_waiting.wait(20)
            Lease.objects.create(task=second, campaign=campaign, annotator=staying,
                                 expires_at=timezone.now() + timedelta(minutes=3))
        return "served"

    def remove() -> str:
        assert task_locked.wait(20)
        membership_remove(membership=membership)
        return "removed"

    def watch() -> str:
        assert task_locked.wait(20)
        until_a_backend_waits_for_a_lock("the removal")
        removal_waiting.set()
        return "watched"

    assert race([serve, remove, watch]) == ["served", "removed", "watched"]
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert list(campaign.annotators.all()) == [staying]
    held.refresh_from_db()
    assert held.status != LeaseStatus.ACTIVE  # the leaving annotator's pair went back
    assert Lease.objects.filter(task=second, annotator=staying,
                                status=LeaseStatus.ACTIVE).exists()


def test_a_member_named_on_a_list_while_being_removed_does_not_stay_on_it():
    # An owner saving a campaign's annotator list holds the memberships it names
    # (campaign_set_annotators); the removal waits for that save and then takes the new place
    # off the list, instead of leaving it for a later re-admission to bring back.
    world = build_campaign(prompts=1, annotators=2)
    campaign = world.campaign
    leaving, staying = world.annotators
    membership = Membership.objects.get(project=campaign.project, user=leaving)
    list_locked, removal_waiting = threading.Event(), threading.Event()

    def name_on_the_list() -> str:
        with transaction.atomic():
            list(Membership.objects.select_for_update(no_key=True).filter(
                project=campaign.project, user__in=[leaving, staying]).order_by("pk"))
            list_locked.set()
            assert removal_waiting.wait(20)
            campaign.annotators.set([leaving, staying])
        return "named"

    def remove() -> str:
        assert list_locked.wait(20)
        membership_remove(membership=membership)
        return "removed"

    def watch() -> str:
        assert list_locked.wait(20)
        until_a_backend_waits_for_a_lock("the removal")
        removal_waiting.set()
        return "watched"

    assert race([name_on_the_list, remove, watch]) == ["named", "removed", "watched"]
    assert list(campaign.annotators.all()) == [staying]
