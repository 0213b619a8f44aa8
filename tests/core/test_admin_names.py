"""Django's admin follows the name rule of every other input path
(:func:`evalhub.core.limits.name_text`): every name and slug it edits is NFC-normalised and
refuses control and format characters, so it cannot store what ``check_names`` would list."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

from evalhub.core.forms import NameFormField
from evalhub.core.limits import NAME_FIELDS
from evalhub.core.names import NAMED_KINDS
from evalhub.projects.models import Project
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ProjectFactory,
    UserFactory,
)
from tests.runs.test_admin_fixed_fields import _resubmitted, admin_client  # noqa: F401

pytestmark = pytest.mark.django_db


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


def test_a_name_with_a_bidi_override_is_refused_and_kept_as_it_was(admin_client):  # noqa: F811
    run = GenerationRunFactory(name="baseline")
    url = f"/admin/runs/generationrun/{run.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url),
                                                   name="evil\u202egnp.exe"))
    assert response.status_code == 200  # the form again, with the refusal
    assert "invisible formatting character U+202E" in response.content.decode()
    run.refresh_from_db()
    assert run.name == "baseline"


def test_a_decomposed_name_is_stored_composed_and_meets_its_twin(admin_client):  # noqa: F811
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


def test_a_project_slug_keeps_a_slugs_own_rule(admin_client):  # noqa: F811
    project = ProjectFactory(slug="demo")
    url = f"/admin/projects/project/{project.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url), slug="not a slug"))
    assert response.status_code == 200
    project.refresh_from_db()
    assert project.slug == "demo"


def test_a_rename_to_a_name_the_project_has_is_refused_at_the_form(admin_client):  # noqa: F811
    # The run's project is shown read-only, and Django then skipped the (project, name)
    # constraint: the database refused the save, a 500.
    run = GenerationRunFactory(name="baseline")
    GenerationRunFactory(project=run.project, name="R\u00fan one")
    url = f"/admin/runs/generationrun/{run.pk}/change/"
    for taken in ("R\u00fan one", "Ru\u0301n one"):  # also its decomposed twin
        response = admin_client.post(url, _resubmitted(admin_client.get(url), name=taken))
        assert response.status_code == 200
        assert "already exists" in response.content.decode()
    run.refresh_from_db()
    assert run.name == "baseline"


def test_a_used_checkpoint_renamed_to_its_models_other_checkpoint_is_refused(admin_client):  # noqa: F811
    checkpoint = CheckpointFactory(name="step-10k")
    CheckpointFactory(model=checkpoint.model, name="step-20k")
    GenerationRunFactory(checkpoint=checkpoint)  # its model is read-only once it is used
    url = f"/admin/runs/checkpoint/{checkpoint.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url), name="step-20k"))
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    checkpoint.refresh_from_db()
    assert checkpoint.name == "step-10k"


def test_a_model_renamed_to_another_models_name_is_refused(admin_client):  # noqa: F811
    model = GenModelFactory(name="shapes-base")
    GenModelFactory(project=model.project, name="shapes-video")
    url = f"/admin/runs/genmodel/{model.pk}/change/"
    response = admin_client.post(url, _resubmitted(admin_client.get(url), name="shapes-video"))
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    model.refresh_from_db()
    assert model.name == "shapes-base"
