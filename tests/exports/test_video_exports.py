"""Exports of a video campaign: rows point to the video files, bundles carry them.

A run's video output is an Image row whose blob is the poster frame and whose ``video`` is the
file. DPO rows name the videos (not the posters); Pick-a-Pic keeps its image columns for the
posters and adds ``video_0`` / ``video_1``; bundles hold exactly the files the rows reference.
"""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.exports import sources
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.exports.conftest import build_world
from tests.exports.helpers import export, read
from tests.videos import video_bytes


@pytest.fixture
def video_world(db):
    """The export world with every output a video (an H.264 MP4), as an import stores it."""
    world = build_world()
    GenerationRun.objects.filter(pk__in=[run.pk for run in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        data = video_bytes(frames=6, seed=number)
        name = f"clip-{number}.mp4"
        video = video_store(data=data, info=video_inspect(data, name=name), name=name)
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    for task in world.tasks:
        task.image_a.refresh_from_db()
        task.image_b.refresh_from_db()
    return world


def _video(image):
    return Image.objects.select_related("video", "blob").get(pk=image.pk)


@pytest.mark.parametrize("use_copy", [True, False])
def test_dpo_rows_of_a_video_campaign_point_to_the_video_files(video_world, tmp_path,
                                                               monkeypatch, use_copy):
    monkeypatch.setattr(sources, "USE_COPY", use_copy)  # both row sources
    task = video_world.tasks[0]
    video_world.vote(task, video_world.annotators[0], "a", a_side="right")
    video_world.vote(video_world.tasks[1], video_world.annotators[0], "b")

    path, _ = export(video_world, tmp_path, "dpo-jsonl", criteria=("overall",))
    frame = read(path, "dpo-jsonl").set_index("task_id")

    a, b = _video(task.image_a), _video(task.image_b)
    row = frame.loc[task.pk]
    assert row["media"] == "video"
    assert row["chosen_sha256"] == a.video.sha256 != a.blob.sha256
    assert row["rejected_sha256"] == b.video.sha256
    assert row["chosen"] == f"videos/{a.video.sha256}.mp4"
    assert row["rejected"] == f"videos/{b.video.sha256}.mp4"
    assert row["chosen_side"] == "right"
    other = video_world.tasks[1]
    assert frame.loc[other.pk, "chosen_sha256"] == _video(other.image_b).video.sha256


def test_dpo_zip_bundle_holds_the_referenced_videos_and_no_posters(video_world, tmp_path):
    video_world.vote(video_world.tasks[0], video_world.annotators[0], "a")
    video_world.vote(video_world.tasks[1], video_world.annotators[0], "b", a_side="right")

    path, summary = export(video_world, tmp_path, "dpo-jsonl", criteria=("overall",),
                           bundle="zip")
    with zipfile.ZipFile(path) as archive:
        rows = [json.loads(line) for line in
                archive.read("preferences.jsonl").decode().splitlines()]
        referenced = {row[key] for row in rows for key in ("chosen", "rejected")}
        media = {name for name in archive.namelist() if "/" in name}
        assert media == referenced and all(name.startswith("videos/") for name in media)
        for row in rows:
            image = Image.objects.select_related("video").get(video__sha256=row["chosen_sha256"])
            assert archive.read(row["chosen"]) == image.video.file.open("rb").read()
        card = archive.read("README.md").decode()
    assert (summary.videos, summary.images) == (len(referenced), 0)
    assert f"`videos/`: {len(referenced)} video files" in card


def test_pickapic_keeps_posters_as_images_and_adds_the_videos(video_world, tmp_path):
    task = video_world.tasks[0]
    video_world.vote(task, video_world.annotators[0], "b")

    path, _ = export(video_world, tmp_path, "pickapic-parquet")
    row = read(path, "pickapic-parquet").set_index("task_id").loc[task.pk]

    a, b = _video(task.image_a), _video(task.image_b)
    assert row["jpg_0"] == a.blob.file.open("rb").read()  # the poster frame (PNG)
    assert row["image_0_uid"] == a.blob.sha256 and row["image_1_uid"] == b.blob.sha256
    assert row["video_0"] == f"videos/{a.video.sha256}.mp4"
    assert row["video_1"] == f"videos/{b.video.sha256}.mp4"
    assert (row["video_0_uid"], row["video_1_uid"]) == (a.video.sha256, b.video.sha256)


def test_pickapic_folder_bundle_has_posters_and_videos(video_world, tmp_path):
    video_world.vote(video_world.tasks[0], video_world.annotators[0], "a")
    folder = tmp_path / "bundle"
    export(video_world, tmp_path, "pickapic-parquet", name="bundle", bundle="folder",
           image_bytes=False, base_url="https://data.example/v")
    frame = pd.read_parquet(folder / "preferences.parquet")
    row = frame.iloc[0]
    assert row["video_0"].startswith("https://data.example/v/videos/")
    for column in ("jpg_0", "jpg_1", "video_0", "video_1"):
        relative = row[column].removeprefix("https://data.example/v/")
        assert (folder / relative).is_file()
    a = _video(video_world.tasks[0].image_a)
    assert (folder / f"videos/{a.video.sha256}.mp4").read_bytes() == \
        a.video.file.open("rb").read()


def test_raw_rows_carry_the_video_hashes(video_world, tmp_path):
    task = video_world.tasks[0]
    video_world.vote(task, video_world.annotators[0], "a")
    path, _ = export(video_world, tmp_path, "raw-parquet")
    row = read(path, "raw-parquet").iloc[0]
    assert row["video_a_sha256"] == _video(task.image_a).video.sha256
    assert row["video_b_sha256"] == _video(task.image_b).video.sha256


def test_image_campaign_rows_have_no_videos(world, tmp_path):
    world.vote(world.tasks[0], world.annotators[0], "a")
    path, _ = export(world, tmp_path, "dpo-jsonl", criteria=("overall",))
    assert read(path, "dpo-jsonl").iloc[0]["media"] == "image"
    path, summary = export(world, tmp_path, "pickapic-parquet", name="p.parquet")
    row = read(path, "pickapic-parquet").iloc[0]
    assert pd.isna(row["video_0"]) and pd.isna(row["video_1_uid"])
    assert summary.videos == 0


def test_a_video_folder_bundle_holds_videos_and_no_empty_images_folder(video_world, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    video_world.vote(video_world.tasks[0], video_world.annotators[0], "a")
    video_world.vote(video_world.tasks[1], video_world.annotators[0], "b")
    out, printed = tmp_path / "bundle", StringIO()

    call_command("export_preferences", video_world.campaign.pk, "--format", "dpo-jsonl",
                 "--criterion", "overall", "--output", str(out), "--bundle", "folder",
                 stdout=printed)

    assert sorted(p.name for p in out.iterdir()) == ["README.md", "preferences.jsonl",
                                                     "videos"]
    assert len(list((out / "videos").iterdir())) == 4
    assert "(2 votes, 1 annotator, 4 videos)" in printed.getvalue()
    card = (out / "README.md").read_text()
    assert "`videos/`: 4 video files" in card and "`images/`" not in card


def test_a_pickapic_video_bundle_counts_its_posters_and_its_videos(video_world, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    video_world.vote(video_world.tasks[0], video_world.annotators[0], "a")
    out, printed = tmp_path / "bundle", StringIO()

    call_command("export_preferences", video_world.campaign.pk, "--format", "pickapic-parquet",
                 "--no-image-bytes", "--output", str(out), "--bundle", "folder",
                 stdout=printed)

    assert len(list((out / "images").iterdir())) == 2  # the posters of the image columns
    assert len(list((out / "videos").iterdir())) == 2
    assert "annotator, 2 images, 2 videos)" in printed.getvalue()


def test_an_empty_image_bundle_has_no_empty_images_folder(db, tmp_path):
    from tests.exports.conftest import build_world

    world = build_world()  # no votes: no rows, no files
    path, summary = export(world, tmp_path, "dpo-jsonl", name="bundle", bundle="folder")
    assert summary.rows == 0
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "preferences.jsonl"]
    assert "`images/`" not in (path / "README.md").read_text()  # the card lists what is there
