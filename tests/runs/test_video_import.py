"""Importing a run's videos: every file validated with PyAV, all or nothing, every problem named."""

from pathlib import Path

import av
import pytest
from django.core.files.storage import default_storage

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.sources import open_source
from evalhub.blobs.video_display import video_make_rendition
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.factories import GenerationRunFactory, PromptFactory, png_bytes
from tests.runs.helpers import make_zip, manifest_csv
from tests.videos import decode_frames, truncated, video_bytes, webm_bytes

LIMIT = 10**9


@pytest.fixture
def run(db) -> GenerationRun:
    run = GenerationRunFactory()
    for position, text in enumerate(["a red circle moving right", "two blue squares"]):
        PromptFactory(prompt_set=run.prompt_set, text=text, position=position)
    return run


def _import(run, archive: Path):
    with open_source(archive, max_total_bytes=LIMIT) as source:
        return run_images_import(run=run, source=source)


def _stored(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_zip_of_videos_becomes_the_runs_outputs_with_posters(
        run, tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    clip_a, clip_b = video_bytes(frames=12, seed=1), webm_bytes(frames=9, seed=2)
    archive = make_zip(tmp_path / "v.zip", {
        "a.mp4": clip_a, "clips/b.webm": clip_b,
        "manifest.csv": manifest_csv([("a.mp4", "a red circle moving right", 0),
                                      ("clips/b.webm", "two blue squares", 0),
                                      ("a.mp4", "two blue squares", 1)]),
    })

    with django_capture_on_commit_callbacks(execute=True):
        report = _import(run, archive)

    run.refresh_from_db()
    assert run.media_kind == MediaKind.VIDEO
    assert (report.images_created, report.blobs_created) == (3, 2)
    assert VideoBlob.objects.count() == 2  # a.mp4 listed twice, stored once
    image = run.images.get(seed=0, prompt__text="a red circle moving right")
    video = image.video
    assert (video.codec, video.container, video.frame_count, video.fps) == ("h264", "mp4", 12, 12)
    assert default_storage.open(video.file.name).read() == clip_a
    # The Image row's blob is the middle frame, an ordinary image (galleries, pairs, metrics).
    assert image.blob == video.poster and image.blob.format == "PNG"
    assert (image.blob.width, image.blob.height) == (64, 48)
    queued = dict(sent_tasks)
    # One rendition per message: every worker takes a share of a large import.
    assert sorted(args for name, args in sent_tasks
                  if name == "evalhub.blobs.make_video_renditions") == [
        [[pk]] for pk in sorted(VideoBlob.objects.values_list("id", flat=True))]
    (display_ids,) = queued["evalhub.blobs.make_displays"]
    assert set(display_ids) == set(VideoBlob.objects.values_list("poster_id", flat=True))


def _refused(run, tmp_path, files: dict[str, bytes], rows) -> ImportRejected:
    archive = make_zip(tmp_path / "bad.zip", {**files, "manifest.csv": manifest_csv(rows)})
    with pytest.raises(ImportRejected) as refused:
        _import(run, archive)
    return refused.value


def test_every_hostile_video_is_named_and_nothing_is_stored(run, tmp_path, settings):
    settings.EVALHUB_MAX_VIDEO_SECONDS = 2
    error = _refused(run, tmp_path, {
        "good.mp4": video_bytes(frames=6),
        "cut.mp4": truncated(video_bytes(frames=30, seed=3)),
        "old.mp4": video_bytes(codec="mpeg4", seed=4),
        "long.webm": webm_bytes(frames=40, fps=10, seed=5),
    }, [("good.mp4", "two blue squares", 0), ("cut.mp4", "two blue squares", 1),
        ("old.mp4", "two blue squares", 2), ("long.webm", "two blue squares", 3)])

    details = "\n".join(error.details)
    assert len(error.details) == 3, details
    assert "cut.mp4: " in details and "truncated" in details
    assert "old.mp4: video codec 'mpeg4' is not accepted" in details
    assert "long.webm: 4.0 s or more exceeds the limit of 2 s" in details
    assert "good.mp4" not in details
    assert not Image.objects.exists() and not VideoBlob.objects.exists()
    assert not ImageBlob.objects.exists()
    assert _stored(Path(settings.MEDIA_ROOT)) == []


def test_a_zip_slip_entry_refuses_the_whole_import(run, tmp_path, settings):
    archive = make_zip(tmp_path / "slip.zip", {
        "a.mp4": video_bytes(), "../../outside.mp4": video_bytes(seed=9),
        "manifest.csv": manifest_csv([("a.mp4", "two blue squares", 0)]),
    })
    with pytest.raises(ImportRejected) as refused:
        _import(run, archive)
    assert refused.value.details == ["unsafe entry: ../../outside.mp4"]
    assert not VideoBlob.objects.exists() and _stored(Path(settings.MEDIA_ROOT)) == []


def test_images_and_videos_do_not_mix_in_one_run(run, tmp_path):
    error = _refused(run, tmp_path, {"a.mp4": video_bytes(), "b.png": png_bytes()},
                     [("a.mp4", "two blue squares", 0), ("b.png", "two blue squares", 1)])
    # One of each: the image is named (the kind with fewer files, images on a tie).
    assert ("the manifest lists both images and videos; a run holds one kind (1 video, "
            "1 image: b.png on line 3)") in error.details


def test_the_rendition_is_vp9_pictures_only_and_the_strip_spans_the_clip(run, tmp_path):
    secret = "checkpoint-7b-internal"
    archive = make_zip(tmp_path / "v.zip", {
        "a.mp4": video_bytes(frames=20, size=(66, 50), metadata={"title": secret,
                                                                 "comment": secret},
                             audio=True),
        "manifest.csv": manifest_csv([("a.mp4", "two blue squares", 0)]),
    })
    _import(run, archive)
    video = VideoBlob.objects.get()

    assert video_make_rendition(video) is True
    assert video_make_rendition(video) is False  # idempotent

    video.refresh_from_db()
    rendition = default_storage.open(video.rendition.name).read()
    assert video.rendition_token in video.rendition.name
    assert video.sha256 not in video.rendition.name
    assert secret.encode() not in rendition
    with av.open(default_storage.path(video.rendition.name)) as container:
        assert container.format.name == "matroska,webm"
        assert [s.type for s in container.streams] == ["video"]  # the sound is gone
        assert container.streams.video[0].codec_context.name == "vp9"
        # What is left: the muxer's name without its version (bit-exact mode), nothing else.
        assert container.metadata in ({}, {"encoder": "Lavf"})
    frames = decode_frames(rendition)
    assert len(frames) == 20 and frames[0].shape == (50, 66, 3)
    with default_storage.open(video.thumbnails.name) as handle:
        from PIL import Image as PILImage

        strip = PILImage.open(handle)
        assert strip.format == "WEBP" and strip.height == 72
        assert strip.width == 8 * round(66 * 72 / 50)
