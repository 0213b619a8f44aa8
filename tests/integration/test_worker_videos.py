"""Videos through a real worker process (PostgreSQL, Redis): an import's renditions and strips,
and a shapes-video run generated end to end."""

import av
import pytest
from django.core.files.storage import default_storage

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.sources import open_source
from evalhub.generation.services import generation_launch
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import MediaKind, RunSource, RunStatus
from evalhub.runs.services import run_create
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    PromptFactory,
    PromptSetFactory,
)
from tests.integration.workers import wait_until
from tests.runs.helpers import make_zip, manifest_csv
from tests.videos import video_bytes, webm_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _all_rendered() -> bool:
    return not VideoBlob.objects.filter(rendition="").exists() and \
        not VideoBlob.objects.filter(thumbnails="").exists()


def test_an_imports_renditions_are_written_by_a_real_worker(worker, tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="a red circle moving right")
    archive = make_zip(tmp_path / "v.zip", {
        "a.mp4": video_bytes(frames=14, seed=1), "b.webm": webm_bytes(frames=8, seed=2),
        "manifest.csv": manifest_csv([("a.mp4", "a red circle moving right", 0),
                                      ("b.webm", "a red circle moving right", 1)]),
    })
    with open_source(archive, max_total_bytes=10**9) as source:
        run_images_import(run=run, source=source)

    wait_until(_all_rendered, timeout=120, what="renditions by the worker", on_timeout=worker.log)
    assert "evalhub.blobs.make_video_renditions" in worker.log()
    for video in VideoBlob.objects.all():  # the worker wrote into the shared media folder
        assert video.rendition_token in video.rendition.name
        with av.open(default_storage.path(video.rendition.name)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "vp9"
            assert sum(1 for _ in container.decode(stream)) == video.frame_count
        assert default_storage.size(video.thumbnails.name) > 0
    wait_until(lambda: not ImageBlob.objects.filter(display="").exists(), timeout=60,
               what="poster displays", on_timeout=worker.log)


def test_a_shapes_video_run_is_generated_by_the_worker(worker):
    checkpoint = CheckpointFactory(generator="shapes-video", parameters={"quality": 0.6})
    prompt_set = PromptSetFactory(project=checkpoint.model.project)
    PromptFactory(prompt_set=prompt_set, text="a spinning red star", position=0)
    run = run_create(checkpoint=checkpoint, prompt_set=prompt_set, name="clips",
                     source=RunSource.GENERATED, seeds=[0, 1],
                     parameters={"frames": 6, "width": 64, "height": 64})
    generation_launch(run=run)

    def finished() -> bool:
        run.refresh_from_db()
        return run.status in (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)

    wait_until(finished, timeout=120, what="video run generated", on_timeout=worker.log)
    assert (run.status, run.items_done, run.media_kind) == (RunStatus.COMPLETED, 2,
                                                           MediaKind.VIDEO)
    assert VideoBlob.objects.filter(images__run=run, frame_count=6).count() == 2
    wait_until(_all_rendered, timeout=120, what="renditions by the worker", on_timeout=worker.log)
