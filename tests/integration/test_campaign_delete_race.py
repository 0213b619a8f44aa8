"""Deleting a campaign while an annotator is being served from it, on PostgreSQL with real
threads: the delete waits for the lease being written and then deletes it with the rest, and
neither side fails.

The rating path locks a task row, then writes a lease (or a vote) whose foreign key takes a
key-share lock on the campaign's row. A delete that locked the campaign first and its tasks
second deadlocked with it: PostgreSQL aborted one of the two, and the annotator's request was
answered 503.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from evalhub.campaigns.models import Campaign, ComparisonTask, Lease
from evalhub.workspace.deletion import object_delete
from tests.builders import build_campaign
from tests.threads import race, until_a_backend_waits_for_a_lock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_campaign_deleted_while_a_lease_is_written_takes_the_lease_with_it():
    assert connection.vendor == "postgresql"
    world = build_campaign(prompts=2, annotators=1)  # no vote: it may be deleted
    campaign = world.campaign
    task_locked, delete_waiting = threading.Event(), threading.Event()

    def lease() -> str:
        # What serving does: the task row first (no-key lock), then the lease row.
        with transaction.atomic():
            task = ComparisonTask.objects.select_for_update(no_key=True).filter(
                campaign=campaign, is_gold=False).order_by("pk").first()
            task_locked.set()
            assert delete_waiting.wait(20)
            Lease.objects.create(task=task, campaign=campaign, annotator=world.annotator,
                                 expires_at=timezone.now() + timedelta(minutes=3))
        return "leased"

    def delete() -> str:
        assert task_locked.wait(20)
        object_delete(kind="campaign", obj=campaign)
        return "deleted"

    def watch() -> str:
        assert task_locked.wait(20)
        until_a_backend_waits_for_a_lock("the delete")
        delete_waiting.set()
        return "watched"

    assert race([lease, delete, watch]) == ["leased", "deleted", "watched"]
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Lease.objects.filter(campaign_id=campaign.pk).exists()
