"""Snapshots: recomputed in the background after votes (debounced), served with freshness."""

import dataclasses
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, Judgment
from evalhub.campaigns.serving.voting import vote_undo
from evalhub.leaderboards import tasks as lb_tasks
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.models import LeaderboardRefresh, LeaderboardSnapshot
from evalhub.leaderboards.results import SCHEMA_VERSION
from evalhub.leaderboards.selectors import leaderboard_compute
from evalhub.leaderboards.services import (
    leaderboard_get,
    leaderboard_refresh_schedule,
    metric_judges_run,
)
from evalhub.runs.models import Image
from tests.builders import build_campaign, cast_vote
from tests.leaderboards.helpers import cast, set_image_metric, set_run_metric

pytestmark = pytest.mark.django_db


def _refreshes(sent_with_countdown):
    """(args, countdown) of every leaderboard refresh sent to the broker."""
    return [(args, countdown) for name, args, countdown in sent_with_countdown
            if name == "evalhub.leaderboards.refresh"]


def _vote(world, annotator, answer="left"):
    return cast_vote(world.campaign, annotator, answer)


def test_the_refresh_task_recomputes_every_criterion_of_a_campaign():
    world = build_campaign(runs=3, prompts=2, criteria=["overall", "aesthetics"])
    task = ComparisonTask.objects.filter(campaign=world.campaign).first()
    cast(task, world.annotators[0], "a")
    assert lb_tasks.refresh_leaderboards(world.campaign.pk) == 2
    snapshots = LeaderboardSnapshot.objects.filter(campaign=world.campaign)
    assert {s.criterion for s in snapshots} == {"overall", "aesthetics"}
    overall = snapshots.get(criterion="overall")
    assert overall.votes_count == 1 and overall.is_default and overall.fingerprint
    assert overall.result.votes == 1 and overall.result.criterion == "overall"
    assert lb_tasks.refresh_leaderboards(world.campaign.pk) == 2  # idempotent
    assert snapshots.count() == 2
    assert lb_tasks.refresh_leaderboards(987654) == 0


def test_votes_schedule_at_most_one_refresh_per_window(sent_with_countdown, settings,
                                                       django_capture_on_commit_callbacks):
    settings.EVALHUB_LEADERBOARD_REFRESH_SECONDS = 30
    world = build_campaign(runs=3, prompts=3, annotators=3)
    with django_capture_on_commit_callbacks(execute=True):
        _vote(world, world.annotators[0])
        _vote(world, world.annotators[1])
    assert _refreshes(sent_with_countdown) == [([world.campaign.pk], 30)]
    # Once the window has passed (in the database, and in the per-process cache gate),
    # the next vote queues the next refresh.
    LeaderboardRefresh.objects.update(enqueued_at=timezone.now() - timedelta(seconds=31))
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _vote(world, world.annotators[2])
    assert len(_refreshes(sent_with_countdown)) == 2


def test_a_vote_ends_up_in_the_snapshot(tasks_run_inline, django_capture_on_commit_callbacks):
    """Integration: vote -> signal -> debounced task (run inline here) -> snapshot."""
    world = build_campaign(runs=2, prompts=2, annotators=2)
    with django_capture_on_commit_callbacks(execute=True):
        _vote(world, world.annotators[0])
    snapshot = LeaderboardSnapshot.objects.get(campaign=world.campaign, criterion="overall")
    assert snapshot.votes_count == 1
    assert sum(r.wins for r in snapshot.result.runs) == 1


def test_an_undone_vote_leaves_the_snapshot(tasks_run_inline,
                                            django_capture_on_commit_callbacks):
    """Undo schedules the same debounced refresh as a vote: the retracted vote stops counting."""
    world = build_campaign(runs=2, prompts=2, annotators=2)
    annotator = world.annotators[0]
    with django_capture_on_commit_callbacks(execute=True):
        lease = _vote(world, annotator)
    snapshot = LeaderboardSnapshot.objects.get(campaign=world.campaign, criterion="overall")
    assert snapshot.votes_count == 1
    # The next refresh window opens (in the database and in the per-process cache gate).
    LeaderboardRefresh.objects.update(enqueued_at=timezone.now() - timedelta(seconds=31))
    cache.clear()
    client_id = Judgment.objects.filter(lease=lease).values_list("client_id", flat=True)[0]
    with django_capture_on_commit_callbacks(execute=True):
        vote_undo(annotator=annotator, campaign=world.campaign, client_id=client_id)
    snapshot.refresh_from_db()
    assert snapshot.votes_count == 0
    assert sum(r.wins for r in snapshot.result.runs) == 0


def test_stale_default_snapshots_are_served_and_requeued_other_filters_recomputed(
        sent_with_countdown, django_capture_on_commit_callbacks):
    world = build_campaign(runs=3, prompts=2, annotators=2)
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign))
    cast(tasks[0], world.annotators[0], "a")
    default = LeaderboardFilters()
    snapshot, stale = leaderboard_get(campaign=world.campaign, filters=default)
    assert not stale and snapshot.votes_count == 1
    cast(tasks[1], world.annotators[0], "a")
    with django_capture_on_commit_callbacks(execute=True):
        snapshot, stale = leaderboard_get(campaign=world.campaign, filters=default)
    assert stale and snapshot.votes_count == 1
    assert _refreshes(sent_with_countdown)  # a refresh was queued for the stale default snapshot
    snapshot, stale = leaderboard_get(campaign=world.campaign, filters=default, refresh=True)
    assert not stale and snapshot.votes_count == 2

    by_category = LeaderboardFilters(category="colour")
    first, _ = leaderboard_get(campaign=world.campaign, filters=by_category)
    cast(tasks[2], world.annotators[1], "b")
    second, stale = leaderboard_get(campaign=world.campaign, filters=by_category)
    assert not stale and second.computed_at > first.computed_at


def test_metric_judges_make_snapshots_stale():
    world = build_campaign(runs=2, prompts=2)
    for k, image in enumerate(Image.objects.filter(run__in=world.runs)):
        set_image_metric(image, "clip_score", float(k))
    snapshot, _ = leaderboard_get(campaign=world.campaign, filters=LeaderboardFilters())
    metric_judges_run(campaign=world.campaign)
    snapshot.refresh_from_db()
    assert snapshot.fingerprint == ""


def test_schedule_claims_once_per_window(sent_with_countdown, django_capture_on_commit_callbacks):
    world = build_campaign(runs=2, prompts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert leaderboard_refresh_schedule(campaign=world.campaign, delay_s=60)
        assert not leaderboard_refresh_schedule(campaign=world.campaign, delay_s=60)
    assert len(_refreshes(sent_with_countdown)) == 1


def test_a_snapshot_reads_back_as_the_leaderboard_it_stored():
    world = build_campaign(runs=3, prompts=2, annotators=2)
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        cast(task, world.annotators[0], "a")
        cast(task, world.annotators[1], "b", a_side="right")
    set_run_metric(world.runs[0], "fid", 12.5, calibrated=False)
    fresh = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    snapshot, _ = leaderboard_get(campaign=world.campaign, filters=LeaderboardFilters())
    snapshot.refresh_from_db()
    stored = snapshot.result
    assert stored == dataclasses.replace(fresh, computed_at=stored.computed_at)
    fid = next(r.metrics["fid"] for r in stored.runs if r.id == world.runs[0].id)
    assert fid.value == 12.5 and fid.calibrated is False  # the flag survives storage
    assert json.loads(json.dumps(snapshot.payload, allow_nan=False)) == snapshot.payload


def test_a_snapshot_stored_by_older_code_is_recomputed_not_read(sent_with_countdown):
    world = build_campaign(runs=2, prompts=2, annotators=1)
    cast(ComparisonTask.objects.filter(campaign=world.campaign).first(), world.annotators[0], "a")
    default = LeaderboardFilters()
    snapshot, _ = leaderboard_get(campaign=world.campaign, filters=default)
    # The untyped payload of schema 1 (no "schema" key), still fresh by its fingerprint.
    old = {"votes": 1, "runs": [{"id": world.runs[0].id, "elo": 1000.0}], "criterion": "overall"}
    LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(payload=old)
    again, stale = leaderboard_get(campaign=world.campaign, filters=default)
    assert not stale and again.payload["schema"] == SCHEMA_VERSION
    assert again.result.votes == 1 and len(again.result.runs) == 2
    assert LeaderboardSnapshot.objects.get(pk=snapshot.pk).payload == again.payload
    assert not _refreshes(sent_with_countdown)  # recomputed now, not left to the background
