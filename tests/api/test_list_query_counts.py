"""A list endpoint costs the same number of queries however many rows it lists.

Each listed row used to cost its own queries for what the answer counts about it: a
campaign's progress (three), a prompt set's prompts and categories (two), a run's images, a
reference set's images and videos, the caller's role in each project. A page of a thousand
campaigns took some 3,000 queries. The counts themselves are unchanged: each test checks
them too, with several related rows of each kind, as they would come out of joins that
multiply rows.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalhub.campaigns.models import JudgeKind
from evalhub.campaigns.services import campaign_create
from evalhub.projects.models import Role
from tests.builders import build_campaign
from tests.evaluation.helpers import make_reference_set, make_video_reference_set
from tests.factories import (
    ComparisonTaskFactory,
    GenerationRunFactory,
    ImageFactory,
    JudgmentFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _listed(api, url: str) -> tuple[int, list[dict]]:
    """The number of queries a list answer took, and its rows (one page of up to 1,000)."""
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, {"page_size": 1000})
    assert response.status_code == 200, response.content
    return len(queries), response.json()["results"]


def _by_id(rows: list[dict]) -> dict[int, dict]:
    return {row["id"]: row for row in rows}


# --- campaigns --------------------------------------------------------------------------------


def _campaign_with_votes():
    """Three pairs (three votes needed each) and two gold pairs: the first pair voted by three
    annotators (complete), the second by one; votes that do not count beside them (another
    criterion, retracted, a metric's); one gold pair voted by a fourth annotator."""
    world = build_campaign(runs=2, prompts=3, annotators=2)
    campaign = world.campaign
    first, second, third = world.tasks
    one, two = world.annotators
    three, four = UserFactory(), UserFactory()
    gold = [ComparisonTaskFactory(campaign=campaign, is_gold=True, judgments_needed=0)
            for _ in range(2)]
    for annotator in (one, two, three):
        JudgmentFactory(task=first, annotator=annotator)
    JudgmentFactory(task=second, annotator=one)
    JudgmentFactory(task=second, annotator=two, criterion="aesthetics")
    JudgmentFactory(task=third, annotator=two, retracted_at=timezone.now())
    JudgmentFactory(task=third, annotator=None, judge_kind=JudgeKind.METRIC)
    JudgmentFactory(task=gold[0], annotator=four)
    return world


def _another_campaign(world, index: int):
    """One more campaign of the same runs, voted once."""
    campaign = campaign_create(project=world.campaign.project, name=f"more-{index}",
                               runs=world.runs, build_now=True)
    JudgmentFactory(task=campaign.tasks.first(), annotator=world.annotators[0])
    return campaign


def test_the_campaign_list_costs_the_same_queries_for_one_campaign_or_many(api):
    world = _campaign_with_votes()
    api.force_authenticate(world.owner)
    few, _ = _listed(api, "/api/v1/campaigns/")
    others = [_another_campaign(world, index) for index in range(3)]
    many, rows = _listed(api, "/api/v1/campaigns/")
    assert len(rows) == 4
    assert many == few

    listed = _by_id(rows)
    assert listed[world.campaign.pk]["progress"] == {
        "tasks": 3, "tasks_complete": 1, "judgments_needed": 9, "judgments_done": 4,
        "human_votes": 5, "annotators": 4, "gold_tasks": 2}
    for other in others:
        assert listed[other.pk]["progress"] == {
            "tasks": 3, "tasks_complete": 0, "judgments_needed": 9, "judgments_done": 1,
            "human_votes": 1, "annotators": 1, "gold_tasks": 0}


def test_a_campaign_without_tasks_or_votes_lists_zeros(api):
    world = build_campaign(runs=2, prompts=1, annotators=0)
    world.campaign.tasks.all().delete()
    api.force_authenticate(world.owner)
    _, rows = _listed(api, "/api/v1/campaigns/")
    assert rows[0]["progress"] == {
        "tasks": 0, "tasks_complete": 0, "judgments_needed": 0, "judgments_done": 0,
        "human_votes": 0, "annotators": 0, "gold_tasks": 0}


def test_a_campaigns_detail_answers_the_progress_the_list_does(api):
    world = _campaign_with_votes()
    _another_campaign(world, 0)
    api.force_authenticate(world.owner)
    _, rows = _listed(api, "/api/v1/campaigns/")
    detail = api.get(f"/api/v1/campaigns/{world.campaign.pk}/")
    assert detail.status_code == 200
    assert detail.json() == _by_id(rows)[world.campaign.pk]


# --- prompt sets ------------------------------------------------------------------------------


def _prompt_set(project, categories: list[str]):
    prompt_set = PromptSetFactory(project=project)
    for position, category in enumerate(categories):
        PromptFactory(prompt_set=prompt_set, position=position, category=category)
    return prompt_set


def test_the_prompt_set_list_costs_the_same_queries_for_one_set_or_many(api, project, owner):
    api.force_authenticate(owner)
    mixed = _prompt_set(project, ["counting", "colour", "", "colour", "Zebra"])
    few, _ = _listed(api, "/api/v1/prompt-sets/")
    empty = _prompt_set(project, [])
    uncategorised = _prompt_set(project, ["", ""])
    more = [_prompt_set(project, ["colour"]) for _ in range(3)]
    many, rows = _listed(api, "/api/v1/prompt-sets/")
    assert len(rows) == 6
    assert many == few

    listed = _by_id(rows)
    assert listed[mixed.pk]["prompt_count"] == 5
    assert listed[mixed.pk]["categories"] == ["Zebra", "colour", "counting"]
    assert (listed[empty.pk]["prompt_count"], listed[empty.pk]["categories"]) == (0, [])
    assert (listed[uncategorised.pk]["prompt_count"],
            listed[uncategorised.pk]["categories"]) == (2, [])
    for prompt_set in more:
        assert (listed[prompt_set.pk]["prompt_count"],
                listed[prompt_set.pk]["categories"]) == (1, ["colour"])
    detail = api.get(f"/api/v1/prompt-sets/{mixed.pk}/")
    assert detail.json() == listed[mixed.pk]


# --- runs -------------------------------------------------------------------------------------


def _run(project, images: int):
    run = GenerationRunFactory(checkpoint__model__project=project)
    prompt = PromptFactory(prompt_set=run.prompt_set)
    for seed in range(images):
        ImageFactory(run=run, prompt=prompt, seed=seed)
    return run


def test_the_run_list_costs_the_same_queries_for_one_run_or_many(api, project, owner):
    api.force_authenticate(owner)
    three = _run(project, images=3)
    few, _ = _listed(api, "/api/v1/runs/")
    none, two = _run(project, images=0), _run(project, images=2)
    many, rows = _listed(api, "/api/v1/runs/")
    assert len(rows) == 3
    assert many == few

    listed = _by_id(rows)
    assert [listed[run.pk]["image_count"] for run in (three, none, two)] == [3, 0, 2]
    detail = api.get(f"/api/v1/runs/{three.pk}/")
    assert detail.json() == listed[three.pk]


# --- reference sets ---------------------------------------------------------------------------


def test_the_reference_set_list_costs_the_same_queries_for_one_set_or_many(
        api, project, owner, tmp_path):
    api.force_authenticate(owner)
    three = make_reference_set(project, n=3, seed_offset=100)
    few, _ = _listed(api, "/api/v1/reference-sets/")
    two = make_reference_set(project, n=2, seed_offset=200)
    videos = make_video_reference_set(tmp_path, project, n=2, frames=9)
    many, rows = _listed(api, "/api/v1/reference-sets/")
    assert len(rows) == 3
    assert many == few

    listed = _by_id(rows)
    assert (listed[three.pk]["image_count"], listed[three.pk]["video_count"]) == (3, 0)
    assert (listed[two.pk]["image_count"], listed[two.pk]["video_count"]) == (2, 0)
    # A video set's count of videos is not multiplied by its posters (nor the reverse).
    assert listed[videos.pk]["video_count"] == 2
    assert listed[videos.pk]["image_count"] == videos.images.count()
    detail = api.get(f"/api/v1/reference-sets/{videos.pk}/")
    assert detail.json() == listed[videos.pk]


# --- projects ---------------------------------------------------------------------------------


def test_the_project_list_costs_the_same_queries_for_one_project_or_many(api):
    user = UserFactory()
    api.force_authenticate(user)
    owned = MembershipFactory(user=user, role=Role.OWNER).project
    MembershipFactory(project=owned, role=Role.ANNOTATOR)  # another member: not the caller
    few, _ = _listed(api, "/api/v1/projects/")
    rated = MembershipFactory(user=user, role=Role.ANNOTATOR).project
    studied = MembershipFactory(user=user, role=Role.SCIENTIST).project
    MembershipFactory(project=studied, role=Role.OWNER)
    ProjectFactory()  # not the caller's: not listed
    many, rows = _listed(api, "/api/v1/projects/")
    assert many == few

    assert {row["id"]: row["my_role"] for row in rows} == {
        owned.pk: Role.OWNER, rated.pk: Role.ANNOTATOR, studied.pk: Role.SCIENTIST}
    detail = api.get(f"/api/v1/projects/{studied.pk}/")
    assert detail.json()["my_role"] == Role.SCIENTIST
