"""Every field error and help text is tied to its field for screen readers.

Django (5.2) writes ``aria-describedby="<auto_id>_helptext <auto_id>_error"`` on a field's
widget when the field has help text or errors; the pages' field templates
(``campaigns/manage/_field.html``, ``workspace/_fields.html``, the gallery's form) must give
those elements exactly these ids, or the reference points at nothing. Each page below is
rendered with a refused form, and every id its ``aria-describedby`` attributes name must exist.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from evalhub.runs.models import GenModel
from tests.builders import build_campaign, logged_in
from tests.factories import CheckpointFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


class _Described(HTMLParser):
    """Every element id of a page, and every id an ``aria-describedby`` names."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.described: list[str] = []
        self.invalid = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        self.described.extend((found.get("aria-describedby") or "").split())
        self.invalid += found.get("aria-invalid") == "true"


def _check(html: str, *, expected: set[str]) -> None:
    """Every described id exists; ``expected`` (ids of the refused fields' errors) among them."""
    page = _Described()
    page.feed(html)
    assert page.invalid, "no field is marked invalid: the form was not refused"
    assert expected <= set(page.described), page.described
    assert [name for name in page.described if name not in page.ids] == []


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=2, annotators=1, name="Described")


def test_the_campaign_forms_errors_and_help_are_described(world):
    client = logged_in(world.scientist)
    created = client.post(f"/projects/{world.campaign.project_id}/campaigns/new/", {
        "name": "", "runs": [run.pk for run in world.runs], "pair_policy": "balanced",
        "judgments_per_pair": "x", "gold_rate": "0", "lease_seconds": 180})
    assert created.status_code == 400
    _check(created.content.decode(), expected={"id_name_error", "id_judgments_per_pair_error",
                                               "id_judgments_per_pair_helptext"})
    judged = client.post(f"/campaigns/{world.campaign.pk}/manage/metric-judge/",
                         {"metric": "clip_score", "epsilon": "-1"})
    assert judged.status_code == 400
    _check(judged.content.decode(), expected={"id_epsilon_error", "id_epsilon_helptext"})
    gold = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/",
                       {"image_a": "abc", "image_b": "", "answer": "maybe"})
    assert gold.status_code == 400
    _check(gold.content.decode(),
           expected={"id_image_a_error", "id_image_b_error", "id_answer_error"})


def test_the_workspace_forms_errors_are_described():
    project = ProjectFactory()
    scientist = MembershipFactory(project=project).user
    CheckpointFactory(model__project=project)
    foreign = GenModel.objects.create(project=ProjectFactory(), name="theirs")
    response = logged_in(scientist).post(
        reverse("workspace-models", kwargs={"project_id": project.pk}),
        {"form": "checkpoint", "checkpoint-model": foreign.pk, "checkpoint-name": "",
         "checkpoint-training_step": "many"})
    assert response.status_code == 400
    _check(response.content.decode(), expected={
        "id_checkpoint-model_error", "id_checkpoint-name_error",
        "id_checkpoint-training_step_error"})


def test_the_gallery_forms_errors_are_described(world):
    left = world.runs[0].pk
    response = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/",
                                              {"a": left, "b": left})
    assert response.status_code == 200
    _check(response.content.decode(), expected={"id_b_error"})
