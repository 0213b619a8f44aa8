"""Deleting a big run: EvalHub's delete beside Django's own, on runs of FID-scale size.

A run of ``--images`` images (each with a CLIP-score row, as after a metric job) is previewed
(what the confirmation page lists: ``workspace.deletion.deletion_plan``) and deleted
(``object_delete``: the rules, the row lock, the blob clean-up's ids, the delete), then the same
for a run of ``--peer-images`` images, beside Django's plain ``Collector`` (what
``Model.delete()`` runs: collect, count, delete) on another run of that size; last, the
refusal to delete a run that ``--refusal-tasks`` comparison tasks show
(:func:`measure_refusal`). Django's collector
lists every collected key in its lookups, so on PostgreSQL it fails past 65,535 bound values
a statement; a pair metric's two keys to ``Image`` are looked up in one statement, so a run of
more than 32,767 images already fails (50,000 did): the peer's size stays below that.

Each run is built in bulk in a scratch database (``DATABASE_URL``, default
``evalhub_bench_deletion``, dropped and made anew), ANALYZEd, then measured once. No issue
states a target for deletes: ``targets`` is empty; the figures back docs/architecture.md.
Human-readable lines first; the last line is one JSON object.

Usage::

    python bench/deletion.py [--images 100000] [--peer-images 30000] [--refusal-tasks 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.db import scratch_database
from bench.machine import run_context

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evalhub_bench_deletion"


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    os.environ.setdefault("DEBUG", "1")
    # The deletes send the blob clean-up's messages (blob ids of this scratch database): an
    # in-memory broker keeps them from any real worker.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build_run(images: int):
    """A run of ``images`` images of one prompt (blob rows without files: nothing here reads
    pixels), a CLIP-score row each."""
    from django.db import connection, transaction

    from evalhub.blobs.models import ImageBlob
    from evalhub.blobs.names import display_token
    from evalhub.evaluation.models import ImageMetric
    from evalhub.projects.models import Project
    from evalhub.prompts.models import Prompt, PromptSet
    from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, RunStatus

    tag = uuid.uuid4().hex[:8]
    with transaction.atomic():
        project = Project.objects.create(name=f"bench {tag}", slug=f"bench-{tag}")
        prompt_set = PromptSet.objects.create(project=project, name="prompts")
        prompt = Prompt.objects.create(prompt_set=prompt_set, position=0, text="a red cube")
        model = GenModel.objects.create(project=project, name="model")
        checkpoint = Checkpoint.objects.create(model=model, name="step-1000")
        run = GenerationRun.objects.create(
            project=project, checkpoint=checkpoint, prompt_set=prompt_set,
            name=f"run of {images}", source="imported", seeds=[0],
            status=RunStatus.COMPLETED, items_total=images, items_done=images)
        blobs = ImageBlob.objects.bulk_create([
            ImageBlob(sha256=f"{tag}{i:056x}", display_token=display_token(f"{tag}{i:056x}"),
                      file=f"blobs/{tag}-{i}.png", format="PNG", width=64, height=64,
                      mode="RGB", size_bytes=1000)
            for i in range(images)], batch_size=5000)
        made = Image.objects.bulk_create([
            Image(run=run, prompt=prompt, seed=seed, blob=blob)
            for seed, blob in enumerate(blobs)], batch_size=5000)
        ImageMetric.objects.bulk_create([
            ImageMetric(image=image, metric="clip_score", value=0.3, backbone_id="bench",
                        weights_sha256="random:0", calibrated=False) for image in made],
            batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return run


def measure_ours(images: int) -> dict[str, float]:
    from evalhub.runs.models import Image
    from evalhub.workspace.deletion import deletion_plan, object_delete

    run = build_run(images)
    start = time.perf_counter()
    plan = deletion_plan(kind="run", obj=run)
    previewed = time.perf_counter() - start
    assert dict(plan.removes)["images"] == images, plan.removes
    start = time.perf_counter()
    object_delete(kind="run", obj=run)
    deleted = time.perf_counter() - start
    assert not Image.objects.filter(run_id=run.pk).exists()
    return {"images": images, "preview_s": round(previewed, 2), "delete_s": round(deleted, 2)}


def measure_django(images: int) -> dict[str, float]:
    from django.db import DEFAULT_DB_ALIAS, transaction
    from django.db.models.deletion import Collector

    from evalhub.runs.models import Image

    run = build_run(images)
    start = time.perf_counter()
    collector = Collector(using=DEFAULT_DB_ALIAS)
    collector.collect([run])
    counted = sum(len(rows) for rows in collector.data.values()) + sum(
        qs.count() for qs in collector.fast_deletes)
    previewed = time.perf_counter() - start
    assert counted >= 2 * images, counted
    start = time.perf_counter()
    with transaction.atomic():
        run.delete()
    deleted = time.perf_counter() - start
    assert not Image.objects.filter(run_id=run.pk).exists()
    return {"images": images, "preview_s": round(previewed, 2), "delete_s": round(deleted, 2)}


def measure_refusal(tasks: int) -> dict[str, float]:
    """Refusing to delete a run that ``tasks`` comparison tasks of a closed campaign without
    votes show (its images are PROTECTed by the tasks): ``deletion_plan`` as the confirmation
    page and the API run it, beside the collector's refusal (collect until Django raises
    ProtectedError with every blocking task, then name their campaigns: ``_in_use``), the
    path every such refusal took before the campaigns' counts were read first."""
    from django.db import connection
    from django.db.models import ProtectedError

    from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask
    from evalhub.workspace.deletion import _collect, _in_use, deletion_plan

    run, other = build_run(tasks), build_run(tasks)
    campaign = Campaign.objects.create(project=run.project, name=f"closed {tasks}",
                                       status=CampaignStatus.CLOSED)
    campaign.runs.set([run, other])
    ComparisonTask.objects.bulk_create([
        ComparisonTask(campaign=campaign, prompt_id=a.prompt_id, image_a=a, image_b=b,
                       run_a=run, run_b=other, judgments_needed=1, shuffle_key=i / tasks)
        for i, (a, b) in enumerate(zip(run.images.order_by("seed"),
                                       other.images.order_by("seed"), strict=True))],
        batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    start = time.perf_counter()
    plan = deletion_plan(kind="run", obj=run)
    ours = time.perf_counter() - start
    assert f"{tasks:,} comparison tasks show its images" in plan.refused, plan.refused
    start = time.perf_counter()
    try:
        _collect(run)
    except ProtectedError as exc:
        words = _in_use("run", run, list(exc.protected_objects))
    collector = time.perf_counter() - start
    assert repr(campaign.name) in words, words
    return {"tasks": tasks, "ours_s": round(ours, 3), "collector_s": round(collector, 3),
            "ratio": round(collector / max(ours, 1e-9), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--peer-images", type=int, default=30_000)
    parser.add_argument("--refusal-tasks", type=int, default=100_000)
    args = parser.parse_args()
    if args.peer_images > 32_767:
        parser.error("--peer-images: Django's collector fails past 32,767 images here")
    load_before = os.getloadavg()
    scratch_database(DEFAULT_URL, reuse=False)
    _setup()

    big = measure_ours(args.images)
    print(f"EvalHub, {args.images:,} images: preview {big['preview_s']} s, "
          f"delete {big['delete_s']} s", flush=True)
    ours = measure_ours(args.peer_images)
    django_side = measure_django(args.peer_images)
    ratio = {key: round(django_side[key] / max(ours[key], 1e-9), 2)
             for key in ("preview_s", "delete_s")}
    for name, row in (("EvalHub", ours), ("Django's Collector", django_side)):
        print(f"{name}, {args.peer_images:,} images: preview {row['preview_s']} s, "
              f"delete {row['delete_s']} s", flush=True)
    print(f"Django / EvalHub: preview {ratio['preview_s']}x, delete {ratio['delete_s']}x")
    refusal = measure_refusal(args.refusal_tasks)
    print(f"Refusing a run {args.refusal_tasks:,} tasks show: {refusal['ours_s']} s, by the "
          f"collector {refusal['collector_s']} s ({refusal['ratio']}x)", flush=True)
    print(json.dumps({"bench": "deletion", "ours_big": big, "ours": ours,
                      "django": django_side, "ratio_django_over_ours": ratio,
                      "refusal": refusal, "targets": {}, **run_context(load_before)}))


if __name__ == "__main__":
    main()
