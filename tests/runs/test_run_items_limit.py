"""A generated run plans at most ``EVALHUB_MAX_RUN_ITEMS`` (prompt, seed) items: a run of 51
prompts and 100,000 seeds (5.1 million images) is refused with the numbers when it is created,
whichever way it is created (API, workspace form, ``generate`` command), and when a run stored
before the limit is launched; and a seed list too large to be a run's is refused before it is
built."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from evalhub.runs.models import GenerationRun, RunSource
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    PromptFactory,
    PromptSetFactory,
)

pytestmark = pytest.mark.django_db

REPORTED = "51 prompts x 100,000 seeds = 5,100,000 items; at most 100,000 per run"


@pytest.fixture
def catalog(project):
    """A `shapes` checkpoint of model "sdxl" and the prompt set "big" of 51 prompts."""
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project, name="sdxl"),
                                   name="step-1", generator="shapes")
    prompt_set = PromptSetFactory(project=project, name="big")
    PromptFactory.create_batch(51, prompt_set=prompt_set)
    return checkpoint, prompt_set


def _post_run(api, checkpoint, prompt_set, seeds, name="g"):
    return api.post("/api/v1/runs/", {"checkpoint": checkpoint.pk, "prompt_set": prompt_set.pk,
                                      "name": name, "source": "generated", "seeds": seeds},
                    format="json")


def test_the_api_refuses_a_run_of_more_items_than_the_limit_with_the_numbers(
        api, scientist, catalog):
    checkpoint, prompt_set = catalog
    api.force_authenticate(scientist)
    response = _post_run(api, checkpoint, prompt_set, list(range(100_000)))
    assert response.status_code == 400
    assert REPORTED in response.json()["detail"]
    assert not GenerationRun.objects.exists()


def test_the_limit_is_a_setting_and_a_run_at_it_is_accepted(api, scientist, catalog, settings):
    checkpoint, prompt_set = catalog
    settings.EVALHUB_MAX_RUN_ITEMS = 102
    api.force_authenticate(scientist)
    refused = _post_run(api, checkpoint, prompt_set, [0, 1, 2])
    assert refused.status_code == 400
    assert ("51 prompts x 3 seeds = 153 items; at most 102 per run"
            in refused.json()["detail"])
    accepted = _post_run(api, checkpoint, prompt_set, [0, 1])  # 102 items: at the limit
    assert accepted.status_code == 201, accepted.json()
    assert GenerationRun.objects.get().seeds == [0, 1]


def test_an_imported_run_plans_no_items_and_is_not_limited(api, scientist, catalog, settings):
    checkpoint, prompt_set = catalog
    settings.EVALHUB_MAX_RUN_ITEMS = 10
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {"checkpoint": checkpoint.pk,
                                          "prompt_set": prompt_set.pk, "name": "imp",
                                          "source": "imported"}, format="json")
    assert response.status_code == 201, response.json()


def test_the_workspace_form_shows_the_refusal_next_to_the_seeds(scientist, catalog):
    checkpoint, prompt_set = catalog
    client = Client()
    client.force_login(scientist)
    url = reverse("workspace-runs", kwargs={"project_id": checkpoint.model.project_id})
    fields = {"name": "g", "checkpoint": checkpoint.pk, "prompt_set": prompt_set.pk,
              "seeds": "0-99999", "parameters": "{}"}
    response = client.post(url, {"form": "generated",
                                 **{f"generated-{k}": v for k, v in fields.items()}})
    assert response.status_code == 400
    page = response.content.decode()
    marker = 'id="id_generated-seeds_error"'
    assert marker in page
    assert REPORTED in page.split(marker, 1)[1].split("</ul>", 1)[0]
    assert not GenerationRun.objects.exists()


def test_the_generate_command_refuses_it_and_leaves_no_run(catalog):
    checkpoint, _ = catalog
    with pytest.raises(CommandError, match=REPORTED):
        call_command("generate", "--project", checkpoint.model.project.slug, "--run", "g",
                     "--model", "sdxl", "--checkpoint", "step-1", "--prompt-set", "big",
                     "--seeds", "0-99999", stdout=StringIO())
    assert not GenerationRun.objects.exists()


def test_a_run_stored_before_the_limit_is_refused_at_launch_and_nothing_is_queued(
        api, scientist, catalog, settings, django_capture_on_commit_callbacks):
    checkpoint, prompt_set = catalog
    settings.EVALHUB_MAX_RUN_ITEMS = 100
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set,
                               source=RunSource.GENERATED, seeds=[0, 1])  # 102 items
    api.force_authenticate(scientist)
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(f"/api/v1/runs/{run.pk}/launch/")
    assert response.status_code == 400
    assert "51 prompts x 2 seeds = 102 items; at most 100 per run" in str(response.json())
    assert queued == []
    run.refresh_from_db()
    assert (run.status, run.items_total) == ("pending", 0)


def test_a_seed_list_of_ten_million_is_refused_before_it_is_parsed(api, scientist, catalog):
    checkpoint, prompt_set = catalog
    seeds = "[" + ",".join(["1"] * 10_000_000) + "]"
    body = (f'{{"checkpoint": {checkpoint.pk}, "prompt_set": {prompt_set.pk}, "name": "g", '
            f'"source": "generated", "seeds": {seeds}}}')
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", body, content_type="application/json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    # The same list as a form field of a multipart upload: refused by its size too.
    response = api.post("/api/v1/runs/", {"checkpoint": checkpoint.pk,
                                          "prompt_set": prompt_set.pk, "name": "g",
                                          "source": "generated", "seeds": seeds},
                        format="multipart")
    assert response.status_code == 413
    assert not GenerationRun.objects.exists()


def test_a_seed_list_that_fits_the_body_but_not_a_run_is_refused_by_its_length(
        api, scientist, catalog):
    checkpoint, prompt_set = catalog
    seeds = list(range(100_001))
    assert len(json.dumps(seeds)) < django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    api.force_authenticate(scientist)
    response = _post_run(api, checkpoint, prompt_set, seeds)
    assert response.status_code == 400
    assert "at most 100000 seeds; 100001 given" in str(response.json())
    assert not GenerationRun.objects.exists()
