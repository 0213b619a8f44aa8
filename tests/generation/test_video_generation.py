"""Generated videos are stored like imported ones: a VideoBlob, its poster as the Image's blob,
renditions queued; generation services run in-process here (tests/integration: real worker)."""

import pytest

from evalhub.blobs.models import VideoBlob
from evalhub.generation.services import generation_run_batch
from evalhub.runs.models import MediaKind, RunSource, RunStatus
from evalhub.runs.services import run_create
from tests.factories import CheckpointFactory, PromptFactory, PromptSetFactory
from tests.videos import decode_frames

pytestmark = pytest.mark.django_db


def _video_run(**params):
    checkpoint = CheckpointFactory(generator="shapes-video", parameters={"quality": 1.0})
    prompt_set = PromptSetFactory(project=checkpoint.model.project)
    for position, text in enumerate(["a red circle moving right", "a blue square falling"]):
        PromptFactory(prompt_set=prompt_set, text=text, position=position)
    run = run_create(checkpoint=checkpoint, prompt_set=prompt_set, name="clips",
                     source=RunSource.GENERATED, seeds=[0, 1], parameters=params)
    run.items_total, run.status = 4, RunStatus.QUEUED
    run.save()
    return run


def test_a_video_generators_run_is_a_video_run_from_its_creation():
    assert _video_run().media_kind == MediaKind.VIDEO


def test_each_item_becomes_a_video_with_its_middle_frame_as_the_image(
        sent_tasks, django_capture_on_commit_callbacks):
    run = _video_run(frames=6, fps=12, width=64, height=48)
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_run_batch(run=run, start=0, stop=4) == 4

    run.refresh_from_db()
    assert (run.status, run.items_done) == (RunStatus.COMPLETED, 4)
    images = list(run.images.select_related("video", "blob"))
    assert len(images) == 4 and all(image.video is not None for image in images)
    video = images[0].video
    assert (video.codec, video.container, video.frame_count, video.fps) == ("h264", "mp4", 6, 12)
    assert (video.width, video.height) == (64, 48) and images[0].blob == video.poster
    assert len(decode_frames(video.file.read())) == 6
    assert images[0].metadata["motions"]["expected"] in (["right"], ["down"])
    # One rendition per message, so that every worker takes a share of the batch.
    renditions = [ids for name, (ids,) in sent_tasks
                  if name == "evalhub.blobs.make_video_renditions"]
    assert all(len(ids) == 1 for ids in renditions)
    assert sorted(ids[0] for ids in renditions) == sorted(
        VideoBlob.objects.values_list("id", flat=True))


def test_regenerating_stores_nothing_twice():
    run = _video_run(frames=4, width=32, height=32)
    generation_run_batch(run=run, start=0, stop=4)
    assert generation_run_batch(run=run, start=0, stop=4) == 0
    assert VideoBlob.objects.count() == 4 and run.images.count() == 4
