"""Files of deleted objects do not stay on disk: once a delete has committed, the blobs its rows
referred to and that nothing refers to any more are deleted with every file made from them
(original, preview, display derivative, tiles; a video's rendition and thumbnail strip, and its
poster). Blobs are content-addressed and shared, so one still used by another run, a prompt or
a reference set stays, file and all. Metric jobs are deleted like the other objects."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from evalhub.blobs.display import blob_make_display
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.blobs.services import blob_store_bytes, blobs_delete_unreferenced
from evalhub.blobs.tiles import dzi_path
from evalhub.config.celery import app
from evalhub.evaluation.models import JobStatus, MetricJob, MetricShard
from evalhub.runs.models import Image, ReferenceSet
from evalhub.workspace.deletion import StillInUse, object_delete
from tests.builders import build_campaign, logged_in
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    PromptFactory,
    png_bytes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks_run_inline(monkeypatch):
    """Tasks sent by name run at once in this process, as a worker would; returns their
    names."""
    import evalhub.blobs.tasks  # noqa: F401  (registers the task, as the worker's autodiscovery)

    sent = []

    def run(name, args=None, countdown=None, **kwargs):
        sent.append(name)
        return app.tasks[name](*(args or []))

    monkeypatch.setattr(app, "send_task", run)
    return sent


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=2, name="study")


def _url(kind: str, pk: int) -> str:
    return reverse("workspace-delete", kwargs={"kind": kind, "object_id": pk})


def _spare_run(world):
    """A run of the world's model nobody compared (deletable), on its prompts."""
    return GenerationRunFactory(checkpoint=CheckpointFactory(model=world.runs[0].checkpoint.model),
                                prompt_set=world.runs[0].prompt_set)


def _with_derivatives(blob: ImageBlob) -> list[str]:
    """Make the blob's preview, display derivative and (a stand-in) tile pyramid; returns the
    storage names of all its files."""
    blob_make_preview(blob)
    blob_make_display(blob)
    blob.refresh_from_db()
    default_storage.save(dzi_path(blob.sha256), ContentFile(b"<Image/>"))
    names = [blob.file.name, blob.preview.name, blob.display.name, dzi_path(blob.sha256)]
    assert all(default_storage.exists(name) for name in names)
    return names


def test_a_deleted_runs_own_files_go_and_shared_ones_stay(world, tasks_run_inline,
                                                         django_capture_on_commit_callbacks):
    run = _spare_run(world)
    own = ImageFactory(run=run, prompt=world.prompts[0], seed=0,
                       blob=blob_store_bytes(png_bytes(color=(1, 2, 3)), name="own.png")).blob
    shared = Image.objects.filter(run=world.runs[0]).first().blob  # the campaign's run's too
    ImageFactory(run=run, prompt=world.prompts[1], seed=0, blob=shared)
    own_files = _with_derivatives(own)

    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(world.scientist).post(_url("run", run.pk))

    assert response.status_code == 302
    assert tasks_run_inline == ["evalhub.blobs.delete_unreferenced"]
    assert not ImageBlob.objects.filter(pk=own.pk).exists()
    assert not any(default_storage.exists(name) for name in own_files)
    assert ImageBlob.objects.filter(pk=shared.pk).exists()
    assert default_storage.exists(shared.file.name)


def test_a_refused_delete_queues_nothing_and_keeps_every_file(world, tasks_run_inline,
                                                             django_capture_on_commit_callbacks):
    compared = world.runs[0]  # its images are in the campaign's tasks (PROTECT)
    blob = Image.objects.filter(run=compared).first().blob
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(StillInUse):
        object_delete(kind="run", obj=compared)
    assert tasks_run_inline == []
    assert default_storage.exists(blob.file.name)


def test_blobs_a_prompt_or_a_reference_set_still_uses_stay(world):
    source = blob_store_bytes(png_bytes(color=(9, 9, 9)), name="source.png")
    PromptFactory(prompt_set=world.runs[0].prompt_set, source_image=source)
    member = blob_store_bytes(png_bytes(color=(8, 8, 8)), name="member.png")
    ReferenceSet.objects.create(project=world.campaign.project, name="refs").images.add(member)
    loose = blob_store_bytes(png_bytes(color=(7, 7, 7)), name="loose.png")

    deleted = blobs_delete_unreferenced(image_ids=[source.pk, member.pk, loose.pk])

    assert (deleted.images, deleted.videos, deleted.files) == (1, 0, 1)
    assert set(ImageBlob.objects.filter(pk__in=[source.pk, member.pk, loose.pk])
               .values_list("pk", flat=True)) == {source.pk, member.pk}
    assert not default_storage.exists(loose.file.name)


def test_a_deleted_video_run_takes_its_videos_renditions_and_posters(
        world, tasks_run_inline, django_capture_on_commit_callbacks):
    run = _spare_run(world)
    poster = blob_store_bytes(png_bytes(color=(5, 6, 7)), name="poster.png")
    names = {suffix: default_storage.save(f"video/test/clip{suffix}", ContentFile(b"bytes"))
             for suffix in (".mp4", ".webm", ".webp")}
    video = VideoBlob.objects.create(
        sha256="f" * 64, file=names[".mp4"], container="mp4", codec="h264", width=32,
        height=32, fps=8.0, frame_count=16, duration_s=2.0, size_bytes=5, poster=poster,
        rendition=names[".webm"], thumbnails=names[".webp"])
    ImageFactory(run=run, prompt=world.prompts[0], seed=0, blob=poster, video=video)

    with django_capture_on_commit_callbacks(execute=True):
        object_delete(kind="run", obj=run)

    assert not VideoBlob.objects.filter(pk=video.pk).exists()
    assert not ImageBlob.objects.filter(pk=poster.pk).exists()
    assert not any(default_storage.exists(name) for name in names.values())
    assert not default_storage.exists(poster.file.name)


def test_a_finished_metric_job_is_deleted_with_its_shards(world):
    job = MetricJob.objects.create(project=world.campaign.project, run=world.runs[0],
                                   metrics=["clip_score"], status=JobStatus.COMPLETED)
    MetricShard.objects.create(job=job, index=0, kind="run", item_ids=[])
    client = logged_in(world.scientist)

    listing = client.get(reverse("workspace-metrics", kwargs={"project_id": job.project_id}))
    assert f'data-delete="metric-job-{job.pk}"' in listing.content.decode()
    page = client.get(reverse("workspace-metric-job", kwargs={"job_id": job.pk}))
    assert f'href="{_url("metric-job", job.pk)}"' in page.content.decode()
    confirm = client.get(_url("metric-job", job.pk))
    assert confirm.status_code == 200 and "metric shard" in confirm.content.decode()
    assert client.post(_url("metric-job", job.pk)).status_code == 302
    assert not MetricJob.objects.filter(pk=job.pk).exists()
    assert not MetricShard.objects.filter(job_id=job.pk).exists()


def test_a_running_metric_job_is_refused_with_409(world):
    job = MetricJob.objects.create(project=world.campaign.project, run=world.runs[0],
                                   metrics=["clip_score"], status=JobStatus.RUNNING)
    refused = logged_in(world.scientist).post(_url("metric-job", job.pk))
    assert refused.status_code == 409
    assert "once it is over" in refused.content.decode()
    assert MetricJob.objects.filter(pk=job.pk).exists()
    # Annotators 403 and outsiders 404, as for every other delete.
    assert logged_in(world.annotator).get(_url("metric-job", job.pk)).status_code == 403
