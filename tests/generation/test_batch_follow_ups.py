"""A generation batch's follow-up work (each image's preview task, display derivatives,
pyramids of huge images, builds of the campaigns waiting for the run) when the broker was down
as the batch ended, or when the worker that stored the images was killed before it queued any:
the run is counted and closed all the same, and what its images lack is queued when the run is
closed, or launched again once the broker is back.

Real broker (the suite's Redis; a closed port for a broker that is down) and a real worker
that makes the derivatives; the batches themselves run in this process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from evalhub.blobs.display import display_is_current
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tiles import TILE_MIN_SIDE_PX, pyramid_built
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.campaigns.services import campaign_create
from evalhub.generation.services import generation_launch, generation_run_batch
from evalhub.generation.tasks import generate_batch
from evalhub.runs.models import GenerationRun, Image, RunSource, RunStatus
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    PromptFactory,
    png_bytes,
)
from tests.integration.fixtures import REDIS_URL
from tests.integration.workers import wait_until
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media_shared_with_the_worker(settings, shared_media_root):
    """The worker reads the files this process stores (tests/integration/conftest.py)."""
    settings.MEDIA_ROOT = str(shared_media_root)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(shared_media_root)}},
    }


@contextmanager
def _broker_down(broker: Callable[..., None]) -> Iterator[None]:
    """The broker is down (a closed port) inside the block, back after it, also when the block
    fails: the worker fixture's teardown talks to the broker."""
    broker(f"redis://127.0.0.1:{free_port()}/0")
    try:
        yield
    finally:
        broker(REDIS_URL)


def _generated_run(*, prompts: int, seeds: list[int]) -> GenerationRun:
    run = GenerationRunFactory(
        checkpoint=CheckpointFactory(generator="shapes", parameters={"quality": 0.5}),
        source=RunSource.GENERATED, seeds=seeds, items_total=prompts * len(seeds),
        status=RunStatus.QUEUED)
    for position in range(prompts):
        PromptFactory(prompt_set=run.prompt_set, position=position,
                      text=f"{position + 1} red circles left of a blue square")
    return run


def _followed_up(run: GenerationRun) -> bool:
    """Every image of the run shows its preview, and its blob has a current display
    derivative and, when it is huge, its pyramid."""
    images = list(Image.objects.filter(run=run).select_related("blob"))
    return all(image.preview is not None and display_is_current(image.blob)
               and (max(image.blob.width, image.blob.height) <= TILE_MIN_SIDE_PX
                    or pyramid_built(image.blob))
               for image in images)


def _nothing_followed_up(run: GenerationRun) -> bool:
    return not Image.objects.filter(run=run).preview_shown().exists() and not (
        ImageBlob.objects.filter(images__run=run).exclude(display="").exists())


def test_a_batch_that_ends_while_the_broker_is_down_still_closes_its_run(
        worker, broker, caplog):
    """What the QA pass saw: the batch's images were stored, the follow-up send failed, and
    the run stayed "running 0/6" with the campaign over it "building" for good."""
    run = _generated_run(prompts=2, seeds=[0, 1, 2])
    done = GenerationRunFactory(project=run.project, prompt_set=run.prompt_set,
                                checkpoint=CheckpointFactory(model=run.checkpoint.model),
                                status=RunStatus.COMPLETED)
    for prompt in run.prompt_set.prompts.all():
        for seed in run.seeds:
            ImageFactory(run=done, prompt=prompt, seed=seed)
    campaign = campaign_create(project=run.project, name="waits for the run", runs=[run, done],
                               build_now=True)
    assert campaign.status == CampaignStatus.BUILDING

    with _broker_down(broker), caplog.at_level(logging.ERROR,
                                               logger="evalhub.generation.services"):
        assert generate_batch(run.pk, 0, 6) == 6  # the task ends normally: nothing to retry

    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_failed) == (RunStatus.COMPLETED, 6, 0)
    assert run.finished_at is not None
    assert _nothing_followed_up(run)
    (record,) = [r for r in caplog.records if r.name == "evalhub.generation.services"]
    assert record.levelname == "ERROR" and record.run == run.pk
    message = record.getMessage()
    assert f"generation run {run.pk}" in message and "not queued" in message
    # What to run once the queue is back.
    assert f"POST /api/v1/runs/{run.pk}/launch/" in message
    assert f"manage.py generate --project {run.project.slug} --run {run.name!r}" in message
    assert f"manage.py make_image_previews --project {run.project.slug}" in message

    # The broker is back.
    finished_at = run.finished_at
    assert generation_launch(run=run) == 0  # nothing to generate...
    # ... and what the images and the campaign waited for is queued, and made by the worker.
    wait_until(lambda: _followed_up(run), timeout=60, what="previews and derivatives",
               on_timeout=worker.log)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status != CampaignStatus.BUILDING,
               timeout=60, what="the campaign built", on_timeout=worker.log)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE and campaign.tasks.count() == 6
    run.refresh_from_db()
    assert (run.status, run.finished_at) == (RunStatus.COMPLETED, finished_at)


def test_a_batch_short_of_its_last_items_while_the_broker_is_down_counts_them(
        worker, broker, caplog):
    """A batch that does not close its run: its images are counted, and their follow-up work
    is queued by the batch that closes the run once the broker is back."""
    run = _generated_run(prompts=2, seeds=[0, 1])
    with _broker_down(broker), caplog.at_level(logging.ERROR,
                                               logger="evalhub.generation.services"):
        assert generation_run_batch(run=run, start=0, stop=2) == 2
    run.refresh_from_db()
    assert (run.status, run.items_done) == (RunStatus.RUNNING, 2)
    assert any(r.name == "evalhub.generation.services" and r.run == run.pk
               for r in caplog.records)

    assert generation_run_batch(run=run, start=2, stop=4) == 2
    run.refresh_from_db()
    assert (run.status, run.items_done) == (RunStatus.COMPLETED, 4)
    wait_until(lambda: _followed_up(run), timeout=60, what="previews and derivatives of all 4",
               on_timeout=worker.log)


@pytest.mark.parametrize("stored_before", [2, 4], ids=["some", "all"])
def test_images_a_killed_batch_stored_get_their_follow_ups_from_the_batch_run_again(
        worker, stored_before):
    """A worker killed (SIGKILL) mid-batch stored images and queued nothing for them (it never
    reached the end of its batch); the batch delivered again, which closes the run, skips them
    yet queues what they lack, also when it has nothing left to make (killed after its last
    image). A batch that does not close the run leaves them to the one that does."""
    run = _generated_run(prompts=2, seeds=[0, 1])
    items = [(prompt, seed) for prompt in run.prompt_set.prompts.order_by("position")
             for seed in run.seeds]
    # Stored as the killed batch left them: rows and files, no preview, no derivative. One
    # is wider than the tiling threshold, so it needs a pyramid too.
    for index, (prompt, seed) in enumerate(items[:stored_before]):
        size = (TILE_MIN_SIDE_PX + 4, 8) if index == 0 else (32, 32)
        ImageFactory(run=run, prompt=prompt, seed=seed, blob=blob_store_bytes(
            png_bytes(color=(index * 40, 90, 200), size=size), name=f"killed-{index}.png"))
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert _nothing_followed_up(run)

    assert generation_run_batch(run=run, start=0, stop=4) == 4 - stored_before

    run.refresh_from_db()
    assert (run.status, run.items_done) == (RunStatus.COMPLETED, 4)
    wait_until(lambda: _followed_up(run), timeout=60, what="previews, derivatives, pyramid",
               on_timeout=worker.log)
