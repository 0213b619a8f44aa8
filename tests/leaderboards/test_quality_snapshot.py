"""The scientist pages read what the background refresh stored: the leaderboard with its charts
and the annotator quality (crowd-BT reliability, gold accuracy, agreement, votes per
annotator). No page estimates reliability or draws a chart per request; each says when its
figures were computed and what changed since."""

import pytest

from evalhub.campaigns.quality.annotators import annotator_set_excluded
from evalhub.leaderboards import charts, quality_snapshot
from evalhub.leaderboards import services as lb_services
from evalhub.leaderboards.models import LeaderboardSnapshot, QualitySnapshot
from evalhub.leaderboards.services import campaign_leaderboards_refresh
from evalhub.projects.models import Role
from tests.builders import build_campaign, logged_in
from tests.factories import MembershipFactory
from tests.leaderboards.helpers import cast, simulate_votes

pytestmark = pytest.mark.django_db

PER_REQUEST_WORK = ("campaign_reliability", "annotator_quality", "agreement_by_criterion",
                    "annotator_progress")


@pytest.fixture
def world():
    world = build_campaign(runs=3, prompts=4, annotators=3)
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)})
    return world


def _forbid_per_request_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("computed per request")

    for name in PER_REQUEST_WORK:
        monkeypatch.setattr(quality_snapshot, name, refuse)
    monkeypatch.setattr(charts, "campaign_figures", refuse)


def test_the_refresh_stores_the_annotator_quality_and_the_charts(world):
    campaign_leaderboards_refresh(campaign=world.campaign)

    stored = QualitySnapshot.objects.get(campaign=world.campaign)
    usernames = {row["username"] for row in stored.payload["reliability"]}
    assert usernames == {a.username for a in world.annotators}
    assert stored.payload["agreement"]["overall"]["judgments"] == 3 * len(world.tasks)
    snapshot = LeaderboardSnapshot.objects.get(campaign=world.campaign, is_default=True)
    assert snapshot.charts["version"] == charts.CHARTS_VERSION
    assert {f["id"] for f in snapshot.charts["figures"]} >= {"elo", "winrate-observed"}


def test_the_pages_read_the_stored_figures_and_say_when_they_were_computed(world, monkeypatch):
    campaign_leaderboards_refresh(campaign=world.campaign)
    computed = QualitySnapshot.objects.get(campaign=world.campaign).computed_at
    _forbid_per_request_work(monkeypatch)
    client = logged_in(world.scientist)

    board = client.get(f"/dashboard/campaigns/{world.campaign.pk}/")
    assert board.status_code == 200
    html = board.content.decode()
    assert f"Reliability computed {computed:%Y-%m-%d %H:%M:%S} UTC" in html
    assert 'data-figure="elo-data"' in html
    manage = client.get(f"/campaigns/{world.campaign.pk}/manage/")
    assert manage.status_code == 200
    html = manage.content.decode()
    assert f"Computed {computed:%Y-%m-%d %H:%M:%S} UTC" in html
    for annotator in world.annotators:
        assert f'data-annotator="{annotator.username}"' in html


def test_a_vote_after_the_refresh_is_said_and_queues_the_next_refresh(
        world, monkeypatch, sent_with_countdown, django_capture_on_commit_callbacks):
    campaign_leaderboards_refresh(campaign=world.campaign)
    newcomer = MembershipFactory(project=world.campaign.project, role=Role.ANNOTATOR).user
    cast(world.tasks[0], newcomer, "a")
    _forbid_per_request_work(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        html = logged_in(world.scientist).get(
            f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert "since then: 1 new vote; refresh queued" in html
    assert [name for name, _, _ in sent_with_countdown] == ["evalhub.leaderboards.refresh"]


def test_an_exclusion_shows_at_once_and_zeroes_the_stored_weight(world, monkeypatch):
    campaign_leaderboards_refresh(campaign=world.campaign)
    left_out = world.annotators[1]
    annotator_set_excluded(campaign=world.campaign, annotator_id=left_out.pk, excluded=True)
    _forbid_per_request_work(monkeypatch)

    quality = quality_snapshot.quality_get(campaign=world.campaign)
    rows = {row.annotator_id: row for row in quality.reliability.annotators}
    assert rows[left_out.pk].excluded and rows[left_out.pk].weight == 0.0
    assert rows[left_out.pk].estimated_weight > 0.0
    assert {row.annotator_id for row in quality.annotators if row.excluded} == {left_out.pk}
    assert quality.stale and quality.changes.annotator_flags == 1


def test_a_missing_snapshot_is_computed_on_the_first_view(world):
    assert not QualitySnapshot.objects.exists()
    page = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/")
    assert page.status_code == 200
    assert QualitySnapshot.objects.filter(campaign=world.campaign).exists()


def test_charts_drawn_by_another_version_are_drawn_again_and_stored(world, monkeypatch):
    campaign_leaderboards_refresh(campaign=world.campaign)
    LeaderboardSnapshot.objects.update(charts={"version": "older", "figures": []})
    snapshot = LeaderboardSnapshot.objects.get(campaign=world.campaign, is_default=True)

    figures = lb_services.snapshot_figures(snapshot)
    assert {f["id"] for f in figures} >= {"elo"}
    snapshot.refresh_from_db()
    assert snapshot.charts["version"] == charts.CHARTS_VERSION


def test_a_filtered_leaderboard_uses_the_stored_estimate_while_it_is_current(world, monkeypatch):
    campaign_leaderboards_refresh(campaign=world.campaign)
    monkeypatch.setattr(quality_snapshot, "campaign_reliability",
                        lambda **kw: pytest.fail("estimated again"))
    page = logged_in(world.scientist).get(f"/dashboard/campaigns/{world.campaign.pk}/",
                                          {"quality": "weight"})
    assert page.status_code == 200 and "weight" in page.content.decode()
