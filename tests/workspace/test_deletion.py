"""Deleting workspace objects from the browser: a confirmation page that says what goes with
the object, a delete that removes exactly that, and refusals (still in use, still being worked
on, votes) shown on the page with status 409, never a 500, nothing deleted.

The world is a built campaign of two runs of one model over three prompts (tests/builders.py),
with nobody's votes unless a test casts them.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.projects.models import Role
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import (
    Checkpoint,
    GenerationRun,
    GenModel,
    Image,
    ReferenceSet,
    RunStatus,
)
from tests.builders import build_campaign, cast_vote, logged_in
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    MembershipFactory,
    PromptSetFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _url(kind: str, pk: int) -> str:
    return reverse("workspace-delete", kwargs={"kind": kind, "object_id": pk})


def _refusal(response) -> str:
    html = response.content.decode()
    assert 'id="delete-refused"' in html
    return html.split('id="delete-refused">', 1)[1].split("</p>", 1)[0]


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=3, name="study")


def test_every_object_kind_is_listed_with_a_link_to_its_delete_page(world):
    client = logged_in(world.scientist)
    project = world.campaign.project
    run = world.runs[0]
    checkpoint = run.checkpoint
    pages = {
        reverse("workspace-models", kwargs={"project_id": project.pk}): [
            _url("model", checkpoint.model_id), _url("checkpoint", checkpoint.pk)],
        reverse("workspace-prompts", kwargs={"project_id": project.pk}): [
            _url("prompt-set", run.prompt_set_id)],
        reverse("workspace-runs", kwargs={"project_id": project.pk}): [_url("run", run.pk)],
        reverse("campaigns-manage", kwargs={"project_id": project.pk}): [
            _url("campaign", world.campaign.pk)],
    }
    reference_set = ReferenceSet.objects.create(project=project, name="refs")
    pages[reverse("workspace-references", kwargs={"project_id": project.pk})] = [
        _url("reference-set", reference_set.pk)]
    for page, links in pages.items():
        html = client.get(page).content.decode()
        for link in links:
            assert f'href="{link}"' in html, (page, link)


def test_the_confirmation_page_lists_what_goes_with_the_object_and_deletes_nothing(world):
    run = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=world.campaign.project),
                               prompt_set=world.runs[0].prompt_set, name="spare")
    for prompt in world.prompts:
        ImageFactory(run=run, prompt=prompt, seed=0)
    response = logged_in(world.scientist).get(_url("run", run.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="delete-form"' in html
    assert _removes(response) == ["3 images"]  # the run itself is the page's title
    assert GenerationRun.objects.filter(pk=run.pk).exists()


def _removes(response) -> list[str]:
    """What the confirmation page says goes *with* the object ("3 images"), in its order."""
    listed = response.content.decode().split('id="delete-removes">', 1)[1].split("</ul>")[0]
    return [item.split("</li>")[0].replace('<span class="num">', "").replace("</span>", "")
            for item in listed.split("<li>")[1:]]


def test_the_confirmation_page_names_each_kind_for_its_number_and_no_link_rows(world):
    # A set of images is one "reference set", not "1 reference sets"; its links to the images
    # it holds ("referenceset-imageblob relationships") are not objects anyone deletes, and
    # neither are a campaign's links to its runs and annotators.
    project = world.campaign.project
    reference_set = ReferenceSet.objects.create(project=project, name="refs")
    reference_set.images.add(*{image.blob for image in Image.objects.filter(
        run__in=world.runs)})
    world.campaign.annotators.add(*world.annotators)
    client = logged_in(world.scientist)
    alone = client.get(_url("reference-set", reference_set.pk)).content.decode()
    assert 'id="delete-removes"' not in alone
    assert "Nothing else is deleted with it." in alone
    removes = _removes(client.get(_url("campaign", world.campaign.pk)))
    assert removes == ["3 comparison tasks"], removes
    assert not any("relationship" in item for item in removes)


def test_a_run_nobody_compared_is_deleted_with_its_images(world):
    run = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=world.campaign.project),
                               prompt_set=world.runs[0].prompt_set, name="spare")
    images = [ImageFactory(run=run, prompt=prompt, seed=0).pk for prompt in world.prompts]
    response = logged_in(world.scientist).post(_url("run", run.pk))
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace-runs",
                                           kwargs={"project_id": run.project_id})
    assert not GenerationRun.objects.filter(pk=run.pk).exists()
    assert not Image.objects.filter(pk__in=images).exists()


def test_objects_still_in_use_are_refused_with_what_uses_them(world):
    client = logged_in(world.owner)
    run = world.runs[0]
    expected = {
        # Comparison tasks show the run's images.
        ("run", run.pk): "comparison task",
        # Runs were made from the checkpoint, of the model, with the prompt set.
        ("checkpoint", run.checkpoint_id): "generation run",
        ("model", run.checkpoint.model_id): "generation run",
        ("prompt-set", run.prompt_set_id): "generation run",
    }
    before = (GenerationRun.objects.count(), Checkpoint.objects.count(),
              GenModel.objects.count(), Prompt.objects.count(), Image.objects.count())
    for (kind, pk), blocker in expected.items():
        page = client.get(_url(kind, pk))
        assert page.status_code == 200 and blocker in _refusal(page), kind
        assert 'id="delete-form"' not in page.content.decode()
        refused = client.post(_url(kind, pk))
        assert refused.status_code == 409, kind
        assert blocker in _refusal(refused) and "Nothing was deleted" in _refusal(refused)
    assert (GenerationRun.objects.count(), Checkpoint.objects.count(),
            GenModel.objects.count(), Prompt.objects.count(), Image.objects.count()) == before


def test_a_campaign_without_votes_is_deleted_with_its_tasks_and_then_its_runs_can_go(world):
    client = logged_in(world.scientist)
    campaign = world.campaign
    assert client.post(_url("campaign", campaign.pk)).status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not ComparisonTask.objects.filter(campaign_id=campaign.pk).exists()
    # No task shows the run's images any more.
    assert client.post(_url("run", world.runs[0].pk)).status_code == 302
    assert not GenerationRun.objects.filter(pk=world.runs[0].pk).exists()


def test_a_campaign_with_human_votes_is_never_deleted(world):
    cast_vote(world.campaign, world.annotator, "left")
    response = logged_in(world.owner).post(_url("campaign", world.campaign.pk))
    assert response.status_code == 409
    assert "1 human vote" in _refusal(response) and "Close the campaign" in _refusal(response)
    assert Campaign.objects.filter(pk=world.campaign.pk).exists()


def test_work_in_progress_refuses_the_delete_until_it_is_over(world):
    project = world.campaign.project
    client = logged_in(world.scientist)
    building = Campaign.objects.create(project=project, name="building",
                                       status=CampaignStatus.BUILDING)
    assert "being built" in _refusal(client.post(_url("campaign", building.pk)))
    generating = GenerationRunFactory(
        checkpoint=CheckpointFactory(model__project=project),
        prompt_set=PromptSetFactory(project=project), status=RunStatus.RUNNING)
    assert "generating" in _refusal(client.post(_url("run", generating.pk)))
    measured = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=project),
                                    prompt_set=generating.prompt_set, status=RunStatus.COMPLETED)
    MetricJob.objects.create(project=project, run=measured, metrics=["clip_score"],
                             status=JobStatus.RUNNING)
    assert "metric job" in _refusal(client.post(_url("run", measured.pk)))
    # Nor the reference set a running job compares with (its values would lose it), on the
    # page and through the API alike.
    refs = ReferenceSet.objects.create(project=project, name="refs in use")
    MetricJob.objects.create(project=project, run=measured, metrics=["kid"],
                             reference_set=refs, status=JobStatus.QUEUED)
    assert "comparing a run with reference set" in _refusal(
        client.post(_url("reference-set", refs.pk)))
    assert client.delete(f"/api/v1/reference-sets/{refs.pk}/").status_code == 409
    assert ReferenceSet.objects.filter(pk=refs.pk).exists()
    assert Campaign.objects.filter(pk=building.pk).exists()
    assert GenerationRun.objects.filter(pk__in=[generating.pk, measured.pk]).count() == 2


def test_unused_model_checkpoint_prompt_set_and_reference_set_are_deleted(world):
    project = world.campaign.project
    client = logged_in(world.scientist)
    checkpoint = CheckpointFactory(model__project=project)
    prompt_set = PromptSetFactory(project=project)
    reference_set = ReferenceSet.objects.create(project=project, name="refs")
    for kind, obj, model in (("checkpoint", checkpoint, Checkpoint),
                             ("model", checkpoint.model, GenModel),
                             ("prompt-set", prompt_set, PromptSet),
                             ("reference-set", reference_set, ReferenceSet)):
        response = client.post(_url(kind, obj.pk))
        assert response.status_code == 302, kind
        assert not model.objects.filter(pk=obj.pk).exists(), kind


def test_who_may_delete_annotators_403_outsiders_404_anonymous_sign_in(world):
    checkpoint = CheckpointFactory(model__project=world.campaign.project)
    url = _url("checkpoint", checkpoint.pk)
    other_owner = MembershipFactory(role=Role.OWNER).user
    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    for method in ("get", "post"):
        assert getattr(logged_in(world.annotator), method)(url).status_code == 403
        assert getattr(logged_in(UserFactory()), method)(url).status_code == 404
        assert getattr(logged_in(other_owner), method)(url).status_code == 404
    assert Checkpoint.objects.filter(pk=checkpoint.pk).exists()
    scientist = logged_in(world.scientist)
    assert scientist.get(_url("checkpoint", 999_999_999)).status_code == 404
    assert scientist.get(_url("nonsense", checkpoint.pk)).status_code == 404
    # Deleted twice (a second tab): the second is a 404, not a 500.
    assert scientist.post(url).status_code == 302
    assert scientist.post(url).status_code == 404


def test_the_api_delete_refuses_the_same_things_with_the_same_message(api, world):
    project = world.campaign.project
    api.force_login(world.scientist)
    generating = GenerationRunFactory(
        checkpoint=CheckpointFactory(model__project=project),
        prompt_set=PromptSetFactory(project=project), status=RunStatus.RUNNING)
    refused = api.delete(f"/api/v1/runs/{generating.pk}/")
    page = logged_in(world.scientist).post(_url("run", generating.pk))
    assert refused.status_code == page.status_code == 409
    assert refused.json()["detail"] == _refusal(page).replace("&#x27;", "'")
    in_use = api.delete(f"/api/v1/prompt-sets/{world.runs[0].prompt_set_id}/")
    assert in_use.status_code == 409 and "generation run" in in_use.json()["detail"]
    unused = CheckpointFactory(model__project=project)
    assert api.delete(f"/api/v1/checkpoints/{unused.pk}/").status_code == 204
    assert not Checkpoint.objects.filter(pk=unused.pk).exists()
    assert GenerationRun.objects.filter(pk=generating.pk).exists()


def test_the_api_deletes_a_finished_metric_job_and_refuses_a_running_one(api, world):
    project = world.campaign.project
    api.force_login(world.scientist)
    running = MetricJob.objects.create(project=project, run=world.runs[0],
                                       metrics=["clip_score"], status=JobStatus.RUNNING)
    finished = MetricJob.objects.create(project=project, run=world.runs[0],
                                        metrics=["clip_score"], status=JobStatus.COMPLETED)

    refused = api.delete(f"/api/v1/metric-jobs/{running.pk}/")
    page = logged_in(world.scientist).post(_url("metric-job", running.pk))
    assert refused.status_code == page.status_code == 409
    assert refused.json()["detail"] == _refusal(page).replace("&#x27;", "'")
    assert api.delete(f"/api/v1/metric-jobs/{finished.pk}/").status_code == 204
    assert list(MetricJob.objects.filter(project=project)) == [running]


def test_no_kind_counts_the_object_itself_among_what_goes_with_it(world):
    # "Deleting it also deletes: 1 generation run, 4 images" counted the run being deleted.
    project = world.campaign.project
    client = logged_in(world.scientist)
    imported = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=project),
                                    prompt_set=world.runs[0].prompt_set, name="imported")
    for seed in range(4):
        ImageFactory(run=imported, prompt=world.prompts[0], seed=seed)
    MetricJob.objects.create(project=project, run=imported, metrics=["clip_score"],
                             status=JobStatus.COMPLETED)
    assert _removes(client.get(_url("run", imported.pk))) == ["4 images", "1 metric job"]
    checkpoint = CheckpointFactory(model__project=project)
    assert _removes(client.get(_url("model", checkpoint.model_id))) == ["1 checkpoint"]
    job = MetricJob.objects.filter(run=imported).get()
    for kind, obj in (("checkpoint", checkpoint), ("prompt-set", PromptSetFactory(project=project)),
                      ("metric-job", job),
                      ("reference-set", ReferenceSet.objects.create(project=project, name="r"))):
        page = client.get(_url(kind, obj.pk)).content.decode()
        assert "Nothing else is deleted with it." in page, kind
    assert _removes(client.get(_url("campaign", world.campaign.pk))) == ["3 comparison tasks"]
