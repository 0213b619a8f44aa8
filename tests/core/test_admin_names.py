"""Django's admin follows the name rule of every other input path
(:func:`evalhub.core.limits.name_text`): every name and slug it edits is NFC-normalised and
refuses control and format characters, so it cannot store what ``check_names`` would list."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client, RequestFactory

from evalhub.core.forms import NameFormField
from evalhub.core.limits import NAME_FIELDS
from evalhub.core.names import NAMED_KINDS
from evalhub.projects.models import Project
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.runs.test_admin_fixed_fields import _resubmitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_every_name_the_admin_edits_follows_the_rule():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    checked = []
    for named in NAMED_KINDS:
        model_admin = admin.site._registry.get(named.model)
        if model_admin is None or not model_admin.has_change_permission(request):
            continue  # a campaign's admin page only reads
        form = model_admin.get_form(request)
        admins = [(model_admin, form)] + [
            (inline, inline.get_formset(request).form)
            for inline in model_admin.get_inline_instances(request)]
        for owner, form in admins:
            for name in NAME_FIELDS & set(form.base_fields):
                assert isinstance(form.base_fields[name], NameFormField), (owner, name)
                checked.append((owner.model, name))
    # Every editable named model was reached, the checkpoint on its model's page too.
    assert {model for model, _ in checked} >= {Project, GenModel, Checkpoint, GenerationRun}
    assert (Project, "slug") in checked


def test_a_name_with_a_bidi_override_is_refused_and_kept_as_it_was(admin_client):
    run = GenerationRunFactory(name="baseline")
    url = f"/admin/runs/generationrun/{run.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url),
                                                   name="evil\u202egnp.exe"))
    assert response.status_code == 200  # the form again, with the refusal
    assert "invisible formatting character U+202E" in response.content.decode()
    run.refresh_from_db()
    assert run.name == "baseline"


def test_a_decomposed_name_is_stored_composed_and_meets_its_twin(admin_client):
    checkpoint = CheckpointFactory(name="step-1")
    CheckpointFactory(model=checkpoint.model, name="caf\u00e9")
    url = f"/admin/runs/checkpoint/{checkpoint.pk}/change/"
    twin = admin_client.post(url, _resubmitted(admin_client.get(url), name="cafe\u0301"))
    assert twin.status_code == 200  # refused: the model already has "café"
    checkpoint.refresh_from_db()
    assert checkpoint.name == "step-1"

    admin_client.post(url, _resubmitted(admin_client.get(url), name="the\u0301"))
    checkpoint.refresh_from_db()
    assert checkpoint.name == "th\u00e9"


def test_a_project_slug_keeps_a_slugs_own_rule(admin_client):
    project = ProjectFactory(slug="demo")
    url = f"/admin/projects/project/{project.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url), slug="not a slug"))
    assert response.status_code == 200
    project.refresh_from_db()
    assert project.slug == "demo"


def _run_of_a_project_with_the_name() -> tuple[Model, tuple[str, ...]]:
    # The run's project is shown read-only, and Django then skipped the (project, name)
    # constraint: the database refused the save, a 500.
    run = GenerationRunFactory(name="baseline")
    GenerationRunFactory(project=run.project, name="R\u00fan one")
    return run, ("R\u00fan one", "Ru\u0301n one")  # also its decomposed twin


def _used_checkpoint_of_a_model_with_the_name() -> tuple[Model, tuple[str, ...]]:
    checkpoint = CheckpointFactory(name="step-10k")
    CheckpointFactory(model=checkpoint.model, name="step-20k")
    # Its model is read-only once a run of it has an output (checkpoint_has_outputs).
    ImageFactory(run=GenerationRunFactory(checkpoint=checkpoint))
    return checkpoint, ("step-20k",)


def _unused_checkpoint_of_a_model_with_the_name() -> tuple[Model, tuple[str, ...]]:
    # Its model is an input: Django's own validation checks the (model, name) constraint.
    checkpoint = CheckpointFactory(name="step-10k")
    CheckpointFactory(model=checkpoint.model, name="step-20k")
    return checkpoint, ("step-20k",)


def _model_of_a_project_with_the_name() -> tuple[Model, tuple[str, ...]]:
    model = GenModelFactory(name="shapes-base")
    GenModelFactory(project=model.project, name="shapes-video")
    return model, ("shapes-video",)


@pytest.mark.parametrize("named_beside_a_taken_name", [
    pytest.param(_run_of_a_project_with_the_name, id="run-read-only-project"),
    pytest.param(_used_checkpoint_of_a_model_with_the_name, id="used-checkpoint-read-only-model"),
    pytest.param(_unused_checkpoint_of_a_model_with_the_name, id="unused-checkpoint-own-model"),
    pytest.param(_model_of_a_project_with_the_name, id="model-read-only-project"),
])
def test_a_rename_to_a_name_taken_beside_it_is_refused_once_at_the_form(
        admin_client, named_beside_a_taken_name):
    named, taken_names = named_beside_a_taken_name()
    kept = named.name
    url = f"/admin/{named._meta.app_label}/{named._meta.model_name}/{named.pk}/change/"
    for taken in taken_names:
        response = admin_client.post(url, _resubmitted(admin_client.get(url), name=taken))
        assert response.status_code == 200  # the form again, not a 500
        # Once: each constraint is checked once per submission.
        assert response.content.decode().count("already exists") == 1
    named.refresh_from_db()
    assert named.name == kept


def test_a_membership_the_project_has_is_refused_once_at_the_form(admin_client):
    # Every admin form of a named kind's page is a UniqueNamesForm, a membership's too.
    member = MembershipFactory()
    response = admin_client.post("/admin/projects/membership/add/", {
        "project": member.project.pk, "user": member.user.pk, "role": member.role})
    assert response.status_code == 200
    assert response.content.decode().count("already exists") == 1
