"""Generation through real worker processes: end to end, killed mid-run, diffusers offline."""

from collections import Counter

import pytest

from evalhub.generation.services import generation_launch
from evalhub.runs.models import GenerationRun, Image, RunSource, RunStatus
from generators.testing import build_tiny_sd_pipeline
from tests.factories import CheckpointFactory, GenerationRunFactory, PromptFactory
from tests.generation.plugins import PLUGIN_ENV, PLUGINS
from tests.integration.fixtures import REDIS_URL, VISIBILITY_TIMEOUT_S
from tests.integration.workers import wait_redeliverable, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _run(generator: str, prompts: int, seeds: list[int], checkpoint_params=None, **params):
    run = GenerationRunFactory(
        checkpoint=CheckpointFactory(generator=generator, parameters=checkpoint_params or {}),
        source=RunSource.GENERATED, seeds=seeds, parameters=params,
    )
    for position in range(prompts):
        PromptFactory(prompt_set=run.prompt_set, position=position,
                      text=f"{position + 1} red circles left of a blue square")
    return run


def _finished(run: GenerationRun) -> bool:
    run.refresh_from_db()
    return run.status in (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)


def test_a_shapes_run_is_generated_by_the_worker(worker):
    run = _run("shapes", prompts=3, seeds=[0, 1], checkpoint_params={"quality": 0.8})
    generation_launch(run=run, batch_items=4)
    wait_until(lambda: _finished(run), timeout=120, what="run finished", on_timeout=worker.log)
    assert (run.status, run.items_done, run.items_total) == (RunStatus.COMPLETED, 6, 6)
    assert run.images.filter(blob__width=256, blob__height=256).count() == 6


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(start_worker, settings):
    settings.EVALHUB_GENERATORS = PLUGINS
    run = _run("test-slow", prompts=10, seeds=[0, 1], delay_s=0.25)
    first = start_worker("doomed", **PLUGIN_ENV)
    generation_launch(run=run, batch_items=20)  # one batch: the kill lands inside it
    wait_until(lambda: run.images.count() >= 3, timeout=60, what="first images",
               on_timeout=first.log)
    first.kill()
    made_before_kill = run.images.count()
    assert made_before_kill < 20

    # A fresh worker: it restores the killed worker's unacknowledged message when it starts,
    # where a running one would sweep for such messages only every ~100 s (kombu's default).
    # Started once that message is past its visibility timeout, not before: one started within
    # 5 s of the batch's delivery (an idle machine) waited for the sweep, 111 s instead of 15.
    wait_redeliverable(REDIS_URL, VISIBILITY_TIMEOUT_S)
    second = start_worker("rescuer", **PLUGIN_ENV)
    wait_until(lambda: _finished(run), timeout=120, what="run finished after redelivery",
               on_timeout=second.log)

    assert (run.status, run.items_done, run.items_failed) == (RunStatus.COMPLETED, 20, 0)
    per_item = Counter(Image.objects.filter(run=run).values_list("prompt_id", "seed"))
    assert len(per_item) == 20 and set(per_item.values()) == {1}
    assert "generate_batch" in second.log()


def test_per_item_failures_are_visible_in_the_api(worker, settings, api):
    settings.EVALHUB_GENERATORS = PLUGINS
    run = _run("test-flaky", prompts=2, seeds=[0])
    PromptFactory(prompt_set=run.prompt_set, position=5, text="this one will fail")
    generation_launch(run=run)
    wait_until(lambda: _finished(run), timeout=60, what="run finished")
    assert (run.status, run.items_done, run.items_failed) == (RunStatus.PARTIAL, 2, 1)

    from evalhub.projects.models import Membership

    user = Membership.objects.create(project=run.project, role="scientist",
                                     user=__import__("tests.factories").factories.UserFactory()
                                     ).user
    api.force_authenticate(user)
    failures = api.get(f"/api/v1/runs/{run.id}/failures/").json()
    assert [(f["prompt_text"], f["seed"]) for f in failures] == [("this one will fail", 0)]
    assert "cannot draw" in failures[0]["error"]


def test_a_tiny_diffusers_pipeline_generates_through_the_worker(worker, tmp_path):
    path = build_tiny_sd_pipeline(tmp_path / "tiny-sd")
    run = _run("diffusers", prompts=2, seeds=[0, 1], num_inference_steps=2, width=32, height=32,
               guidance_scale=1.0)
    run.checkpoint.weights_uri = str(path)
    run.checkpoint.save()
    generation_launch(run=run)
    wait_until(lambda: _finished(run), timeout=240, what="diffusers run", on_timeout=worker.log)
    assert (run.status, run.items_done) == (RunStatus.COMPLETED, 4), run.error
    assert set(run.images.values_list("blob__width", "blob__height")) == {(32, 32)}
    assert run.images.values("blob").distinct().count() == 4  # seeds give different images
