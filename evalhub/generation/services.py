"""Launching generated runs and producing their images, item by item, resumably.

Every image is committed on its own together with its ``Image`` row, so a worker that dies
loses at most the item it was drawing; a redelivered batch skips what exists, and the unique
(run, prompt, seed) constraint makes a duplicate impossible even if two workers race.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.models import VideoBlob
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.video_services import video_inspect, video_store, videos_after_store
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import QueueUnavailable, enqueue_on_commit
from evalhub.generation.plan import PlannedItem, batch_bounds, run_items
from evalhub.generation.workers import cached_generator
from evalhub.prompts.models import Prompt
from evalhub.runs.models import (
    IMPORTED_GENERATOR,
    Checkpoint,
    GenerationFailure,
    GenerationRun,
    Image,
    MediaKind,
    RunSource,
    RunStatus,
)
from evalhub.runs.previews import images_after_store
from evalhub.runs.services import run_items_check
from generators import (
    CheckpointSpec,
    GenerationItem,
    GenerationResult,
    GeneratorError,
    get_generator_class,
    validate_params,
)
from generators.video import encode_mp4

logger = logging.getLogger(__name__)

GENERATE_BATCH_TASK = "evalhub.generation.generate_batch"


def checkpoint_spec(run: GenerationRun) -> CheckpointSpec:
    checkpoint = run.checkpoint
    return CheckpointSpec(
        name=f"{checkpoint.model.name}/{checkpoint.name}",
        weights_uri=checkpoint.weights_uri,
        parameters=checkpoint.parameters,
    )


class MissingWeights(EvalHubError):
    """A checkpoint of a generator that loads weights names none (``weights_uri`` empty)."""


def checkpoint_check(*, generator: str, parameters: Any, weights_uri: str = "") -> None:
    """Refuse a checkpoint that no generation could use: a generator that is not installed
    (the message lists those that are), or parameters its generator's schema refuses (unknown
    keys, wrong types, out of range; :func:`generators.base.validate_params`), or no
    ``weights_uri`` for a generator that loads weights (``Generator.needs_weights``), checked
    when the checkpoint is written instead of when a run is launched. An imported checkpoint
    has no generator; its parameters must still be a JSON object."""
    if not isinstance(parameters, dict):
        raise EvalHubError(f"checkpoint parameters must be a JSON object, got {parameters!r}")
    if generator == IMPORTED_GENERATOR:
        return
    try:
        cls = get_generator_class(generator, settings.EVALHUB_GENERATORS)
        validate_params(cls.parameters_schema, None, parameters)
    except GeneratorError as exc:
        raise EvalHubError(str(exc)) from exc
    if cls.needs_weights and not (weights_uri or "").strip():
        raise MissingWeights(f"A {generator} checkpoint loads its weights from weights_uri: "
                             "give a local folder or a Hugging Face hub id.")


def generation_parameters(*, checkpoint: Checkpoint, parameters: Any) -> dict[str, Any]:
    """The parameters a generated run of ``checkpoint`` draws with: its generator's schema
    defaults, then the checkpoint's, then the run's ``parameters``, each checked (an installed
    generator, known keys, types and ranges, the generator's own cross-field checks)."""
    if checkpoint.generator == IMPORTED_GENERATOR:
        raise EvalHubError(f"Checkpoint {checkpoint.name!r} has no generator (its outputs are "
                           "imported): give it one, e.g. shapes or diffusers, to generate runs.")
    try:
        cls = get_generator_class(checkpoint.generator, settings.EVALHUB_GENERATORS)
        return cls.resolve_params(parameters, checkpoint.parameters)
    except GeneratorError as exc:
        raise EvalHubError(str(exc)) from exc


def generation_validate(run: GenerationRun) -> dict[str, Any]:
    """Check that the run's generator exists and its parameters are valid; return them."""
    if run.source != RunSource.GENERATED:
        raise EvalHubError(f"Run {run.name!r} is imported, not generated.")
    return generation_parameters(checkpoint=run.checkpoint, parameters=run.parameters)


def generation_launch(*, run: GenerationRun, batch_items: int | None = None) -> int:
    """Queue the batches of the run that hold missing items on the gpu queue; returns how
    many were queued.

    Launching again after a failure or a dead worker queues only the batches with items not
    stored yet (failed items included, so they are tried again): a run of 10,000 items short
    of five sends one or a few batches, not all of them. A run with nothing missing is closed
    at once (0 batches).
    """
    generation_validate(run)
    run_items_check(prompt_set=run.prompt_set, seeds=run.seeds)
    items = run_items(run)
    if not items:
        raise EvalHubError(f"Run {run.name!r} has no items (empty prompt set or no seeds).")
    batch_items = batch_items or settings.EVALHUB_GENERATION_BATCH_ITEMS
    missing = set(_pending(run, items))
    bounds = [(start, stop) for start, stop in batch_bounds(len(items), max(1, batch_items))
              if not missing.isdisjoint(items[start:stop])]
    if not bounds:
        # Nothing to make: a finished run is left as it is (its times say when it was made);
        # one left "failed" or "running" by a lost batch is closed now. Either way what its
        # outputs and campaigns still wait for is queued (run_follow_ups_queue): the batch
        # that closed it may have ended while the broker was down.
        if run.status not in (RunStatus.COMPLETED, RunStatus.PARTIAL) or \
                run.items_total != len(items):
            GenerationRun.objects.filter(pk=run.pk).update(items_total=len(items), error="")
            run.refresh_from_db()
            run_refresh_progress(run=run)
        else:
            run_follow_ups_queue(run=run)
        return 0
    with transaction.atomic():
        # The launch's own span: started when a worker takes its first batch, and its rate
        # counts only the images made since (the stored count, not ``items_done``: a worker
        # that died mid-batch left its images uncounted).
        GenerationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.QUEUED, items_total=len(items), error="", started_at=None,
            finished_at=None, items_done_at_launch=_images_stored(run),
        )
        for start, stop in bounds:
            enqueue_on_commit(GENERATE_BATCH_TASK, run.pk, start, stop,
                              not_queued=lambda: _not_queued(run))
    run.refresh_from_db()
    return len(bounds)


def _not_queued(run: GenerationRun) -> None:
    """The run's batches did not reach the task queue: say so on the run, not "queued"."""
    GenerationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, finished_at=timezone.now(),
        error="Its batches could not be queued (the task queue did not answer). Launch it "
              "again once the queue is back: only missing items are made.")


def _source_image(prompt: Prompt) -> PILImage.Image | None:
    if prompt.source_image is None:
        return None
    with default_storage.open(prompt.source_image.file.name, "rb") as handle:
        image = PILImage.open(io.BytesIO(handle.read()))
        image.load()
    return image


def _pending(run: GenerationRun, items: Sequence[PlannedItem]) -> list[PlannedItem]:
    done = set(
        Image.objects.filter(run=run, prompt_id__in={i.prompt_id for i in items}).values_list(
            "prompt_id", "seed"
        )
    )
    return [i for i in items if (i.prompt_id, i.seed) not in done]


@dataclass(frozen=True)
class _Stored:
    image_id: int
    blob_id: int
    video_id: int | None


def _save_output(run: GenerationRun, item: PlannedItem,
                 result: GenerationResult) -> _Stored | None:
    """Store one image or video with its row (None if another delivery stored it first).

    A video is encoded to MP4 (generators/video.py), validated like an imported one and
    stored as a ``VideoBlob``; the ``Image`` row points at its poster (the middle frame) and
    at it. Encoding happens before the transaction, so no row lock waits on it.
    """
    name = f"run {run.pk} prompt {item.prompt_id} seed {item.seed}"
    video_data = None
    if result.video is not None:
        video_data = encode_mp4(result.video.frames, result.video.fps)
    try:
        with transaction.atomic():
            video = None
            if video_data is not None:
                video = video_store(data=video_data, info=video_inspect(video_data, name=name),
                                    name=name, poster=result.png_bytes())
                blob = video.poster
            else:
                blob = blob_store_bytes(result.png_bytes(), name=name)
            image = Image.objects.create(run=run, prompt_id=item.prompt_id, seed=item.seed,
                                         blob=blob, video=video, elapsed_s=result.elapsed_s,
                                         metadata=result.metadata)
            GenerationFailure.objects.filter(run=run, prompt_id=item.prompt_id,
                                             seed=item.seed).delete()
            return _Stored(image.pk, blob.pk, video.pk if video is not None else None)
    except IntegrityError:
        # A duplicate only if the item's row is there: another delivery of this batch stored it
        # first (unique (run, prompt, seed)). Any other refusal (a plugin's result the row
        # cannot hold, a row it names deleted meanwhile) is raised: taken for a duplicate, the
        # item would be neither stored nor failed, and the run never complete.
        if not Image.objects.filter(run=run, prompt_id=item.prompt_id, seed=item.seed).exists():
            raise
        logger.info("run %s item %s already stored", run.pk, item)
        return None


def _record_failure(run: GenerationRun, item: PlannedItem, error: str) -> None:
    failure, created = GenerationFailure.objects.get_or_create(
        run=run, prompt_id=item.prompt_id, seed=item.seed, defaults={"error": error}
    )
    if not created:
        GenerationFailure.objects.filter(pk=failure.pk).update(
            error=error, attempts=F("attempts") + 1
        )


def generation_run_batch(*, run: GenerationRun, start: int, stop: int) -> int:
    """Produce the missing items ``[start, stop)`` of ``run``; returns how many were made.

    The run is counted (and closed, when every item is stored or failed) before its follow-up
    work is queued, and a broker that does not take that work is logged, not raised
    (:func:`_not_queued_logged`): the images are stored, and a run left "running" with all of
    them would hold up the campaigns waiting for it. The batch that closes the run queues what
    every output of the run still lacks (:func:`run_follow_ups_queue`), those of a batch whose
    worker was killed before it queued theirs included; the others queue their own outputs'.
    """
    items = run_items(run)[start:stop]
    pending = _pending(run, items)
    if pending:
        GenerationRun.objects.filter(pk=run.pk, started_at__isnull=True).update(
            started_at=timezone.now()
        )
        GenerationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING
        )
    prompts = Prompt.objects.select_related("source_image").in_bulk(
        {i.prompt_id for i in pending}
    )
    made = 0
    stored_images: list[int] = []
    stored_video = False
    try:
        if pending:
            generator = cached_generator(run.checkpoint.generator, checkpoint_spec(run),
                                         checkpoint_id=run.checkpoint_id)
            requests = [
                GenerationItem(
                    key=f"{i.prompt_id}:{i.seed}",
                    prompt=prompts[i.prompt_id].text,
                    seed=i.seed,
                    source_image=_source_image(prompts[i.prompt_id]),
                )
                for i in pending
            ]
            by_key = {f"{i.prompt_id}:{i.seed}": i for i in pending}
            for result in generator.generate(requests, run.parameters):
                item = by_key[result.item.key]
                if result.ok:
                    stored = _save_output(run, item, result)
                    if stored is not None:
                        stored_images.append(stored.image_id)
                        stored_video = stored_video or stored.video_id is not None
                        made += 1
                else:
                    _record_failure(run, item, result.error or "unknown error")
    except BaseException:
        # What was stored gets its follow-up work even when an error ends the batch early: a
        # retried batch skips the stored items, and would queue theirs only if it closed the
        # run.
        if stored_images:
            with _not_queued_logged(run):
                _follow_ups_queue(Image.objects.filter(pk__in=stored_images))
        raise
    finally:
        if stored_video and run.media_kind != MediaKind.VIDEO:
            GenerationRun.objects.filter(pk=run.pk).update(media_kind=MediaKind.VIDEO)
    with _not_queued_logged(run):
        run = run_refresh_progress(run=run)  # closing the run queues its outputs' work
        if stored_images and not _all_items_over(run):
            _follow_ups_queue(Image.objects.filter(pk__in=stored_images))
    return made


@contextmanager
def _not_queued_logged(run: GenerationRun) -> Iterator[None]:
    """In a batch, follow-up work the broker does not take is logged at ERROR with what to run
    once it is back, instead of raised: the batch's images are stored and counted, and the task
    has nothing to retry (it retries database errors only; the next send would fail alike)."""
    try:
        yield
    except QueueUnavailable:
        slug = run.project.slug
        logger.error(
            "generation run %s: follow-up work not queued, the task queue did not answer (the "
            "previews, display derivatives, tiles or video renditions of its stored images, or "
            "the builds of campaigns waiting for it). Its images are stored and counted. The "
            "batch that closes the run queues what its images lack; if the run is closed "
            "already, launch it again once the queue is back (POST /api/v1/runs/%s/launch/, "
            "Launch again on its page, or manage.py generate --project %s --run %r): it "
            "generates nothing it has and queues that work. manage.py make_image_previews "
            "--project %s queues the missing previews alone.",
            run.pk, run.pk, slug, run.name, slug, extra={"run": run.pk})


def _follow_ups_queue(images: QuerySet[Image]) -> None:
    """Queue, once the current transaction commits, the follow-up work that the given stored
    outputs still lack: what their blobs lack (display derivatives missing or of an earlier
    rule, pyramids of images over the tiling threshold not built: blobs/after_store.py
    ``blobs_after_store``, the one rule for new and stored blobs), the renditions of videos
    without theirs, and the preview task of every image that shows no preview (a new image
    always: each gets its own, runs/previews.py, so the blobs' own preview task is not
    queued). Each task skips what is done by the time it runs, so an output queued twice (two
    batches closing the run at once) costs a message."""
    blob_ids = images.order_by().values_list("blob_id", flat=True)
    videos = list(VideoBlob.objects.filter(pk__in=images.values("video_id"))
                  .filter(Q(rendition="") | Q(thumbnails="")).order_by("pk")
                  .values_list("pk", flat=True))
    previews = list(images.preview_missing().order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        blobs_after_store(blob_ids, previews=False, lacking_only=True)
        videos_after_store(videos)
        images_after_store(previews)


def run_follow_ups_queue(*, run: GenerationRun) -> None:
    """Queue what a closed run's outputs, campaigns and metric jobs still wait for: the
    follow-up work its stored outputs lack (:func:`_follow_ups_queue`), the builds of the
    campaigns waiting for it and the shards of the metric jobs waiting for it. Done when the
    run is closed (by its last batch, or by a launch that finds nothing missing) and when a
    closed run is launched again, so that work a batch could not queue (the broker down as it
    ended) or never queued (its worker killed after storing) is queued then; the tasks skip
    what is done."""
    from evalhub.campaigns.building.pairs import campaigns_build_waiting_for
    from evalhub.evaluation.services import metric_jobs_start_waiting_for

    # The derivatives first: a campaign is served once its large images have theirs.
    _follow_ups_queue(Image.objects.filter(run=run))
    campaigns_build_waiting_for(run=run)
    metric_jobs_start_waiting_for(run=run)


def _images_stored(run: GenerationRun) -> int:
    """What ``items_done`` counts: the run's stored outputs."""
    return Image.objects.filter(run=run).count()


def _all_items_over(run: GenerationRun) -> bool:
    """Whether every item of the run is stored or failed, as last counted: what closes it."""
    return bool(run.items_total and run.items_done + run.items_failed >= run.items_total)


def run_refresh_progress(*, run: GenerationRun) -> GenerationRun:
    """Recount done and failed items; close the run when every item is one or the other, and
    then queue what its outputs and campaigns wait for (:func:`run_follow_ups_queue`)."""
    run.items_done = _images_stored(run)
    run.items_failed = GenerationFailure.objects.filter(run=run).count()
    fields: dict[str, Any] = {"items_done": run.items_done, "items_failed": run.items_failed}
    finishing = _all_items_over(run)
    if finishing:
        fields["status"] = RunStatus.COMPLETED if run.items_failed == 0 else RunStatus.PARTIAL
        fields["finished_at"] = timezone.now()
    GenerationRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    if finishing:
        run_follow_ups_queue(run=run)
    return run


def generation_mark_failed(*, run: GenerationRun, error: str) -> None:
    """Fail the whole run with ``error`` (shown on its page) and log it at ERROR: its task
    ends normally (retrying would not help), so this line is what a worker's log shows of a
    GPU host without the weights, say. What waits for the run goes on as after any close
    (:func:`run_follow_ups_queue`): the campaigns over it are built on the runs that have
    images, and its metric jobs start on the outputs it has, failing when it has none."""
    GenerationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )
    logger.error("generation run %s failed: %s", run.pk, error[:5000],
                 extra={"run": run.pk, "checkpoint": run.checkpoint_id})
    with _not_queued_logged(run):
        run_follow_ups_queue(run=run)
