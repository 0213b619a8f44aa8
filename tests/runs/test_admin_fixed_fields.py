"""Django's admin keeps the API's rules on what an object is: an image's run, prompt, seed and
files; a prompt (the prompts API never edits one); and the project of a run, model, prompt set,
reference set, metric job or membership (the API never moves an object to another project) are
shown on the change page, not offered as inputs, and a POST that sends other values leaves them
as they were. The add pages still offer every field: a new object is made there as before."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from evalhub.evaluation.models import MetricJob
from evalhub.projects.models import Membership
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, ReferenceSet
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _inputs(page: str, names: list[str]) -> dict[str, bool]:
    """Whether the page has a form input named each of ``names``."""
    return {name: f'name="{name}"' in page for name in names}


def _resubmitted(response: Any, **changes: Any) -> dict[str, Any]:
    """What a browser posts back from the change form in ``response`` (its own values, inline
    rows and their management forms included) with ``changes`` typed over them; fields shown
    read-only have no input, so they are posted only when a change names them."""
    context = response.context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    data: dict[str, Any] = {}
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            data[bound.html_name] = "on" if value is True else value
    data.update(changes)
    return data


def _change(admin_client: Client, url: str, **changes: Any) -> Any:
    """POST the change page at ``url`` back with ``changes``; the admin saved it (302)."""
    form = admin_client.get(url)
    response = admin_client.post(url, _resubmitted(form, **changes))
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def test_an_images_identity_is_read_only(admin_client):
    image = ImageFactory()
    other = ImageFactory(run=GenerationRunFactory(checkpoint=image.run.checkpoint,
                                                  prompt_set=image.run.prompt_set))
    url = f"/admin/runs/image/{image.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert _inputs(page, ["run", "prompt", "seed", "blob", "video", "elapsed_s"]) == {
        "run": False, "prompt": False, "seed": False, "blob": False, "video": False,
        "elapsed_s": True}

    _change(admin_client, url, run=other.run_id, prompt=other.prompt_id, seed=other.seed + 99,
            blob=other.blob_id, elapsed_s="1.5")
    saved = Image.objects.get(pk=image.pk)
    assert (saved.run_id, saved.prompt_id, saved.seed, saved.blob_id, saved.elapsed_s) == (
        image.run_id, image.prompt_id, image.seed, image.blob_id, 1.5)


def test_a_runs_project_is_read_only(admin_client):
    run = GenerationRunFactory()
    ImageFactory(run=run)
    url = f"/admin/runs/generationrun/{run.pk}/change/"
    assert _inputs(admin_client.get(url).content.decode(), ["project", "name"]) == {
        "project": False, "name": True}

    _change(admin_client, url, project=ProjectFactory().pk, name="renamed")
    saved = GenerationRun.objects.get(pk=run.pk)
    assert (saved.project_id, saved.name) == (run.project_id, "renamed")


def test_a_models_project_is_read_only(admin_client):
    model = GenModelFactory()
    url = f"/admin/runs/genmodel/{model.pk}/change/"
    assert _inputs(admin_client.get(url).content.decode(), ["project", "name"]) == {
        "project": False, "name": True}

    _change(admin_client, url, project=ProjectFactory().pk, name="renamed")
    saved = GenModel.objects.get(pk=model.pk)
    assert (saved.project_id, saved.name) == (model.project_id, "renamed")


def test_a_reference_sets_project_is_read_only(admin_client):
    reference_set = ReferenceSet.objects.create(project=ProjectFactory(), name="real")
    url = f"/admin/runs/referenceset/{reference_set.pk}/change/"
    assert _inputs(admin_client.get(url).content.decode(), ["project", "name"]) == {
        "project": False, "name": True}

    _change(admin_client, url, project=ProjectFactory().pk, name="renamed")
    saved = ReferenceSet.objects.get(pk=reference_set.pk)
    assert (saved.project_id, saved.name) == (reference_set.project_id, "renamed")


def test_a_metric_jobs_project_is_read_only(admin_client):
    run = GenerationRunFactory()
    job = MetricJob.objects.create(project=run.project, run=run, metrics=["clip_score"])
    url = f"/admin/evaluation/metricjob/{job.pk}/change/"
    assert not _inputs(admin_client.get(url).content.decode(), ["project"])["project"]

    _change(admin_client, url, project=ProjectFactory().pk)
    assert MetricJob.objects.get(pk=job.pk).project_id == run.project_id


def test_a_memberships_project_and_person_are_read_only(admin_client):
    membership = MembershipFactory()
    url = f"/admin/projects/membership/{membership.pk}/change/"
    assert _inputs(admin_client.get(url).content.decode(), ["project", "user", "role"]) == {
        "project": False, "user": False, "role": True}

    _change(admin_client, url, project=ProjectFactory().pk, user=UserFactory().pk, role="owner")
    saved = Membership.objects.get(pk=membership.pk)
    assert (saved.project_id, saved.user_id, saved.role) == (
        membership.project_id, membership.user_id, "owner")


def test_a_prompt_is_read_only_as_in_the_api(admin_client):
    image = ImageFactory()
    prompt = image.prompt
    url = f"/admin/prompts/prompt/{prompt.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert not any(_inputs(page, ["text", "prompt_set", "position", "category", "tags",
                                  "metadata", "source_image", "source_video"]).values())

    _change(admin_client, url, text="a blue square", prompt_set=PromptSetFactory().pk,
            category="shape", position=prompt.position + 7)
    saved = Prompt.objects.get(pk=prompt.pk)
    assert (saved.text, saved.prompt_set_id, saved.category, saved.position) == (
        prompt.text, prompt.prompt_set_id, prompt.category, prompt.position)


def test_a_prompt_sets_project_and_prompts_are_read_only(admin_client):
    prompt = PromptFactory(text="a red circle")
    prompt_set = prompt.prompt_set
    url = f"/admin/prompts/promptset/{prompt_set.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert _inputs(page, ["project", "name", "prompts-0-text", "prompts-0-category"]) == {
        "project": False, "name": True, "prompts-0-text": False, "prompts-0-category": False}
    assert "a red circle" in page  # shown, not offered

    _change(admin_client, url, project=ProjectFactory().pk, name="renamed",
            **{"prompts-0-text": "a blue square", "prompts-0-category": "shape"})
    saved = PromptSet.objects.get(pk=prompt_set.pk)
    assert (saved.project_id, saved.name) == (prompt_set.project_id, "renamed")
    assert list(saved.prompts.values_list("text", "category")) == [(prompt.text,
                                                                     prompt.category)]


@pytest.mark.parametrize(("page", "names"), [
    ("runs/generationrun", ["project", "checkpoint", "prompt_set", "seeds"]),
    ("runs/genmodel", ["project", "name"]),
    ("runs/image", ["run", "prompt", "seed", "blob"]),
    ("runs/referenceset", ["project", "name"]),
    ("prompts/promptset", ["project", "name", "prompts-TOTAL_FORMS"]),
    ("projects/membership", ["project", "user", "role"]),
])
def test_the_add_pages_still_offer_every_field(admin_client, page, names):
    html = admin_client.get(f"/admin/{page}/add/").content.decode()
    assert all(_inputs(html, names).values()), _inputs(html, names)


def test_a_prompt_set_is_added_with_its_prompts(admin_client):
    project = ProjectFactory()
    response = admin_client.post("/admin/prompts/promptset/add/", {
        "project": project.pk, "name": "shapes", "description": "",
        "prompts-TOTAL_FORMS": "1", "prompts-INITIAL_FORMS": "0",
        "prompts-MIN_NUM_FORMS": "0", "prompts-MAX_NUM_FORMS": "1000",
        "prompts-0-position": "0", "prompts-0-text": "a red circle",
        "prompts-0-category": "colour", "prompts-0-tags": "[]",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    added = PromptSet.objects.get(project=project, name="shapes")
    assert list(added.prompts.values_list("text", flat=True)) == ["a red circle"]


def test_prompts_are_added_with_their_set_not_one_by_one(admin_client):
    # One added to a set afterwards would change what the set's runs were planned over.
    assert admin_client.get("/admin/prompts/prompt/add/").status_code == 403


def test_a_checkpoint_moves_only_to_a_model_of_its_own_project(admin_client):
    checkpoint = CheckpointFactory()  # no outputs yet: its model may still change
    same_project = GenModelFactory(project=checkpoint.model.project)
    other_project = GenModelFactory()
    url = f"/admin/runs/checkpoint/{checkpoint.pk}/change/"
    form = admin_client.get(url)
    refused = admin_client.post(url, _resubmitted(form, model=other_project.pk))
    assert refused.status_code == 200
    assert "A checkpoint stays in its project" in refused.content.decode()
    assert Checkpoint.objects.get(pk=checkpoint.pk).model_id == checkpoint.model_id

    _change(admin_client, url, model=same_project.pk)
    assert Checkpoint.objects.get(pk=checkpoint.pk).model_id == same_project.pk
