"""A checkpoint is refused when it is written, not when a run is launched, if no generation
could use it: a generator that is not installed, or parameters its generator's schema refuses."""

import pytest

from evalhub.runs.models import Checkpoint, GenerationRun
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    PromptSetFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/checkpoints/"


@pytest.fixture
def model(project):
    return GenModelFactory(project=project)


def _post(api, model, **fields):
    return api.post(URL, {"model": model.pk, "name": "step-1", **fields}, format="json")


def test_a_checkpoint_of_an_installed_generator_with_valid_parameters_is_stored(
        api, scientist, model):
    api.force_authenticate(scientist)
    response = _post(api, model, generator="shapes", parameters={"width": 64})
    assert response.status_code == 201, response.json()
    assert Checkpoint.objects.get(model=model).parameters == {"width": 64}


def test_a_generator_that_is_not_installed_is_refused_naming_those_that_are(
        api, scientist, model):
    api.force_authenticate(scientist)
    response = _post(api, model, generator="shapse")
    assert response.status_code == 400
    message = response.json()["generator"][0]
    assert "unknown generator 'shapse'" in message and "shapes" in message
    assert not Checkpoint.objects.exists()


@pytest.mark.parametrize(("parameters", "message"), [
    ({"widht": 64}, "unknown checkpoint parameter(s) 'widht'"),
    ({"width": "wide"}, "width"),
    ([1, 2], "must be a JSON object"),
])
def test_parameters_the_generators_schema_refuses_are_refused(api, scientist, model,
                                                               parameters, message):
    api.force_authenticate(scientist)
    response = _post(api, model, generator="shapes", parameters=parameters)
    assert response.status_code == 400
    assert message in response.json()["parameters"][0]
    assert not Checkpoint.objects.exists()


def test_an_imported_checkpoint_needs_no_generator_but_a_json_object(api, scientist, model):
    api.force_authenticate(scientist)
    assert _post(api, model, parameters={"note": "from disk"}).status_code == 201
    response = api.post(URL, {"model": model.pk, "name": "step-2", "parameters": "text"},
                        format="json")
    assert response.status_code == 400 and "JSON object" in response.json()["parameters"][0]


def test_a_training_step_is_zero_or_more_when_created_or_changed(api, scientist, model):
    api.force_authenticate(scientist)
    response = _post(api, model, training_step=-5)
    assert response.status_code == 400
    assert "Training step -5 is negative" in response.json()["training_step"][0]
    assert not Checkpoint.objects.exists()
    assert _post(api, model, training_step=0).status_code == 201
    checkpoint = Checkpoint.objects.get(model=model)
    response = api.patch(f"{URL}{checkpoint.pk}/", {"training_step": -1}, format="json")
    assert response.status_code == 400 and "negative" in response.json()["training_step"][0]
    checkpoint.refresh_from_db()
    assert checkpoint.training_step == 0


def test_a_change_is_checked_against_the_checkpoints_other_values(api, scientist, model):
    checkpoint = CheckpointFactory(model=model, generator="shapes", parameters={"width": 64})
    api.force_authenticate(scientist)
    response = api.patch(f"{URL}{checkpoint.pk}/", {"parameters": {"steps": 3}}, format="json")
    assert response.status_code == 400 and "'steps'" in response.json()["parameters"][0]
    response = api.patch(f"{URL}{checkpoint.pk}/", {"generator": "nope"}, format="json")
    assert response.status_code == 400 and "unknown generator" in response.json()["generator"][0]
    checkpoint.refresh_from_db()
    assert (checkpoint.generator, checkpoint.parameters) == ("shapes", {"width": 64})


def test_a_name_used_twice_is_refused_in_words(api, scientist, model):
    api.force_authenticate(scientist)
    assert _post(api, model).status_code == 201
    again = _post(api, model)  # as every name already taken: 409 "duplicate", field named
    assert again.status_code == 409
    assert again.json()["errors"] == [
        "name: This model already has a checkpoint with this name."]
    twin = api.post("/api/v1/models/", {"project": model.project_id, "name": model.name},
                    format="json")
    assert twin.status_code == 409
    assert twin.json()["detail"] == "This project already has a model with this name."
    assert twin.json()["code"] == "duplicate"
    assert Checkpoint.objects.count() == 1


def test_a_diffusers_checkpoint_names_its_weights_when_it_is_written(api, scientist, model):
    # Refused here, not at the first batch of a run ("has no weights_uri").
    api.force_authenticate(scientist)
    response = _post(api, model, generator="diffusers")
    assert response.status_code == 400
    assert response.json()["weights_uri"] == [
        "A diffusers checkpoint loads its weights from weights_uri: give a local folder or a "
        "Hugging Face hub id."]
    assert not Checkpoint.objects.exists()
    stored = _post(api, model, generator="diffusers", weights_uri="/models/sd-tiny")
    assert stored.status_code == 201, stored.json()
    cleared = api.patch(f"{URL}{stored.json()['id']}/", {"weights_uri": " "}, format="json")
    assert cleared.status_code == 400 and "weights_uri" in cleared.json()
    assert Checkpoint.objects.get().weights_uri == "/models/sd-tiny"


def test_what_a_run_was_made_from_is_fixed_once_it_exists_and_its_name_is_not(
        api, scientist, project):
    run = GenerationRunFactory(checkpoint__model__project=project, seeds=[0, 1])
    other = CheckpointFactory(model__project=project)
    api.force_authenticate(scientist)
    url = f"/api/v1/runs/{run.pk}/"
    for change in ({"seeds": [-3, 1]}, {"seeds": [5]}, {"checkpoint": other.pk},
                   {"parameters": {"steps": 3}}, {"source": "generated"}):
        response = api.patch(url, change, format="json")
        assert response.status_code == 400, change
        [field] = change
        assert "is fixed once the run exists" in response.json()[field][0]
    run.refresh_from_db()
    assert run.seeds == [0, 1] and run.checkpoint_id != other.pk
    renamed = api.patch(url, {"name": "baseline", "seeds": [0, 1]}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "baseline"


def test_a_run_renamed_to_another_runs_name_is_refused_in_words_as_a_new_one_is(
        api, scientist, project):
    run = GenerationRunFactory(checkpoint__model__project=project, name="first")
    GenerationRunFactory(checkpoint__model__project=project, name="taken")
    elsewhere = GenerationRunFactory(name="elsewhere")  # another project's run
    api.force_authenticate(scientist)
    url = f"/api/v1/runs/{run.pk}/"
    refused = api.patch(url, {"name": "taken"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["errors"] == ["name: The project already has a run named 'taken'."]
    run.refresh_from_db()
    assert run.name == "first"
    # Its own name again, and a name only another project uses, are fine.
    assert api.patch(url, {"name": "first"}, format="json").status_code == 200
    assert api.patch(url, {"name": elsewhere.name}, format="json").status_code == 200


def test_what_a_checkpoints_outputs_were_made_with_is_fixed_once_a_run_has_outputs(
        api, scientist, project):
    # It used to be moved to another model, or given another generator, with its images.
    checkpoint = CheckpointFactory(model__project=project, generator="shapes",
                                   parameters={"width": 64})
    other_model = GenModelFactory(project=project)
    url = f"{URL}{checkpoint.pk}/"
    api.force_authenticate(scientist)
    ImageFactory(run=GenerationRunFactory(checkpoint=checkpoint))
    for change in ({"model": other_model.pk}, {"generator": "imported"},
                   {"parameters": {"width": 32}}, {"weights_uri": "/models/other"},
                   {"model": other_model.pk, "parameters": {}}):
        response = api.patch(url, change, format="json")
        assert response.status_code == 400, change
        assert set(response.json()) == set(change)
        for field in change:
            assert "is fixed once one of its runs has outputs" in response.json()[field][0]
    model_id = checkpoint.model_id
    checkpoint.refresh_from_db()
    assert (checkpoint.model_id, checkpoint.generator, checkpoint.parameters,
            checkpoint.weights_uri) == (model_id, "shapes", {"width": 64}, "")
    fetched = api.get(url).json()  # renamed, sent back as fetched: accepted
    renamed = api.put(url, {**fetched, "name": "final", "training_step": 7}, format="json")
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["name"] == "final" and renamed.json()["training_step"] == 7


def test_a_checkpoint_whose_runs_have_no_output_yet_may_still_change(api, scientist, project):
    checkpoint = CheckpointFactory(model__project=project, generator="shapes")
    GenerationRunFactory(checkpoint=checkpoint)
    other_model = GenModelFactory(project=project)
    api.force_authenticate(scientist)
    response = api.patch(f"{URL}{checkpoint.pk}/", {"model": other_model.pk,
                                                   "parameters": {"width": 32}}, format="json")
    assert response.status_code == 200, response.json()
    checkpoint.refresh_from_db()
    assert (checkpoint.model_id, checkpoint.parameters) == (other_model.pk, {"width": 32})


@pytest.mark.parametrize(("seeds", "message"), [
    ("0-3", "Seeds are a list of whole numbers"),
    ([None], "Seeds are a list of whole numbers"),
    ([1.5], "Seeds are a list of whole numbers"),
    ([True], "Seeds are a list of whole numbers"),
    ([2**64], "out of range: 18446744073709551616"),
    ([-1], "out of range: -1"),
    (list(range(100_001)), "at most 100000 seeds; 100001 given"),
    ([3, 3], "Seeds must be distinct"),
])
def test_a_runs_seeds_are_distinct_whole_numbers_in_64_bits(api, scientist, model, seeds,
                                                           message):
    # Refused when the run is created, not in the worker (a seed past 64 bits used to fail
    # every batch there and leave the run "running" for good).
    checkpoint = CheckpointFactory(model=model, generator="shapes")
    prompts = PromptSetFactory(project=model.project)
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {"checkpoint": checkpoint.pk, "prompt_set": prompts.pk,
                                          "name": "r", "source": "generated", "seeds": seeds},
                        format="json")
    assert response.status_code == 400, response.content[:300]
    assert message in str(response.json())
    assert not GenerationRun.objects.exists()
