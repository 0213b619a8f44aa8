import pytest

from evalhub.runs.models import GenerationRun
from tests.factories import CheckpointFactory, GenModelFactory, PromptFactory, PromptSetFactory

pytestmark = pytest.mark.django_db


def test_generators_are_listed_with_their_parameters(api, scientist):
    api.force_authenticate(scientist)
    listing = {g["name"]: g for g in api.get("/api/v1/generators/").json()}
    assert {"shapes", "diffusers"} <= set(listing)
    assert "quality" in listing["shapes"]["parameters"]
    assert "num_inference_steps" in listing["diffusers"]["parameters"]


def test_launching_a_generated_run_queues_its_items(api, scientist, project,
                                                    django_capture_on_commit_callbacks):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes")
    prompt_set = PromptSetFactory(project=project)
    for i in range(3):
        PromptFactory(prompt_set=prompt_set, position=i)
    api.force_authenticate(scientist)
    run = api.post("/api/v1/runs/", {"checkpoint": checkpoint.id, "prompt_set": prompt_set.id,
                                     "name": "gen", "source": "generated", "seeds": [0, 1]},
                   format="json").json()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/v1/runs/{run['id']}/launch/")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["items_total"]) == ("queued", 6)
    assert len(callbacks) == 1  # 6 items fit one batch of 16


def test_launching_an_imported_run_is_refused(api, scientist, project):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project))
    run = GenerationRun.objects.create(project=project, checkpoint=checkpoint, name="imp",
                                       prompt_set=PromptSetFactory(project=project),
                                       source="imported")
    api.force_authenticate(scientist)
    response = api.post(f"/api/v1/runs/{run.id}/launch/")
    assert response.status_code == 400
    assert "imported, not generated" in response.json()["detail"]


def test_a_generated_run_needs_seeds(api, scientist, project):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes")
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.id, "prompt_set": PromptSetFactory(project=project).id,
        "name": "g", "source": "generated", "seeds": []}, format="json")
    assert response.status_code == 400
    assert "at least one seed" in response.json()["detail"]


def test_a_generated_run_with_parameters_its_generator_refuses_is_not_stored(api, scientist,
                                                                             project):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes")
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.id, "prompt_set": PromptSetFactory(project=project).id,
        "name": "g", "source": "generated", "seeds": [0], "parameters": {"qualty": 0.5}},
        format="json")
    assert response.status_code == 400
    assert "unknown run parameter(s) 'qualty'" in response.json()["detail"]
    assert not GenerationRun.objects.filter(name="g").exists()


def test_a_generated_run_of_a_checkpoint_without_a_generator_is_refused_saying_so(
        api, scientist, project):
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), name="from-disk")
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.id, "prompt_set": PromptSetFactory(project=project).id,
        "name": "g", "source": "generated", "seeds": [0]}, format="json")
    assert response.status_code == 400
    assert "Checkpoint 'from-disk' has no generator" in response.json()["detail"]
    assert not GenerationRun.objects.filter(name="g").exists()


def test_launching_again_queues_only_the_batches_with_missing_items(
        api, scientist, project, django_capture_on_commit_callbacks, settings, sent_tasks):
    from evalhub.generation.services import generation_launch
    from evalhub.runs.models import RunStatus
    from tests.factories import GenerationRunFactory, ImageFactory

    settings.EVALHUB_GENERATION_BATCH_ITEMS = 2
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes")
    prompt_set = PromptSetFactory(project=project)
    prompts = [PromptFactory(prompt_set=prompt_set, position=i) for i in range(3)]
    run = GenerationRunFactory(project=project, checkpoint=checkpoint, prompt_set=prompt_set,
                               source="generated", seeds=[0, 1])
    # Items in batch order: (p0, 0) (p0, 1) | (p1, 0) (p1, 1) | (p2, 0) (p2, 1); the middle
    # batch is complete, the others short of one item each.
    for prompt, seed in ((prompts[0], 0), (prompts[1], 0), (prompts[1], 1), (prompts[2], 1)):
        ImageFactory(run=run, prompt=prompt, seed=seed)

    with django_capture_on_commit_callbacks() as callbacks:
        assert generation_launch(run=run) == 2
    assert len(callbacks) == 2

    for prompt, seed in ((prompts[0], 1), (prompts[2], 0)):
        ImageFactory(run=run, prompt=prompt, seed=seed)
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_launch(run=run) == 0
    # No batch: what the images still lack (each its preview task) is all the close queues.
    assert "evalhub.generation.generate_batch" not in {name for name, _ in sent_tasks}
    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_total) == (RunStatus.COMPLETED, 6, 6)

    # Launching the finished run again changes nothing, its finish time included (its
    # images per second are measured to it).
    finished_at = run.finished_at
    assert generation_launch(run=run) == 0
    run.refresh_from_db()
    assert (run.status, run.finished_at) == (RunStatus.COMPLETED, finished_at)


@pytest.mark.django_db(transaction=True)  # tasks are sent when the launch commits
def test_a_launch_the_queue_does_not_take_is_503_and_the_run_says_so(
        api, scientist, project, broker):
    from tests.ports import free_port

    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes")
    prompt_set = PromptSetFactory(project=project)
    PromptFactory(prompt_set=prompt_set, position=0)
    api.force_authenticate(scientist)
    run = api.post("/api/v1/runs/", {"checkpoint": checkpoint.id, "prompt_set": prompt_set.id,
                                     "name": "gen", "source": "generated", "seeds": [0]},
                   format="json").json()

    broker(f"redis://127.0.0.1:{free_port()}/0")  # the broker is down
    response = api.post(f"/api/v1/runs/{run['id']}/launch/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["code"] == "queue_unavailable"
    assert "saved, but its work is not queued" in response.json()["detail"]
    stored = GenerationRun.objects.get(pk=run["id"])
    assert stored.status == "failed"  # not "queued" with nothing queued
    assert "could not be queued" in stored.error and "Launch it again" in stored.error
