"""Django's admin keeps the API's rules on what outputs were made from: a used checkpoint's
model, generator, parameters and weights, and a run's checkpoint, prompts and seeds, are shown,
not editable (the admin saved them without the API's check)."""

import pytest

from evalhub.runs.models import Checkpoint
from tests.factories import CheckpointFactory, GenerationRunFactory, ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _inputs(page: str, names: list[str]) -> dict[str, bool]:
    return {name: f'name="{name}"' in page for name in names}


def test_a_used_checkpoint_shows_what_its_outputs_were_made_with_read_only(admin_client):
    used = CheckpointFactory(generator="shapes", parameters={"quality": 0.8})
    ImageFactory(run=GenerationRunFactory(checkpoint=used, project=used.model.project))
    url = f"/admin/runs/checkpoint/{used.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert _inputs(page, ["name", "training_step", "model", "generator", "parameters",
                          "weights_uri"]) == {
        "name": True, "training_step": True, "model": False, "generator": False,
        "parameters": False, "weights_uri": False}

    admin_client.post(url, {"name": "renamed", "training_step": 5, "generator": "imported",
                            "parameters": "{}", "weights_uri": "/elsewhere"})
    used.refresh_from_db()
    assert (used.name, used.generator, used.parameters) == ("renamed", "shapes",
                                                            {"quality": 0.8})


def test_a_checkpoint_without_outputs_is_edited_freely(admin_client):
    fresh = CheckpointFactory(generator="shapes")
    GenerationRunFactory(checkpoint=fresh, project=fresh.model.project)  # a run, no output yet
    page = admin_client.get(f"/admin/runs/checkpoint/{fresh.pk}/change/").content.decode()
    assert all(_inputs(page, ["model", "generator", "parameters", "weights_uri"]).values())
    assert Checkpoint.objects.get(pk=fresh.pk).generator == "shapes"


def test_a_runs_origin_is_read_only_in_the_admin(admin_client):
    run = GenerationRunFactory()
    page = admin_client.get(f"/admin/runs/generationrun/{run.pk}/change/").content.decode()
    assert _inputs(page, ["name", "checkpoint", "prompt_set", "source", "seeds",
                          "parameters"]) == {
        "name": True, "checkpoint": False, "prompt_set": False, "source": False,
        "seeds": False, "parameters": False}
