"""Video-editing prompts: a prompt's source may be a video, imported with the prompt file
through the same validation as a run's videos. Its poster is the prompt's still source (so
image code keeps showing a picture), the video itself is what the annotator page plays beside
the pair, served to the project's members like a run's videos."""

from __future__ import annotations

import io

import pytest

from evalhub.blobs.access import video_access
from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.projects.models import Membership, Role
from evalhub.prompts.models import Prompt
from evalhub.prompts.parsers import parse_prompts
from evalhub.prompts.selectors import source_media
from evalhub.prompts.services import prompt_set_import
from tests.factories import ProjectFactory, UserFactory, png_bytes
from tests.runs.helpers import make_zip
from tests.videos import truncated, webm_bytes

pytestmark = pytest.mark.django_db

PROMPTS = (b'{"text": "make the square red", "source_video": "in/clip.webm"}\n'
           b'{"text": "make the cat blue", "source_image": "in/cat.png"}\n'
           b'{"text": "a plain prompt"}\n')


def _import(tmp_path, files: dict[str, bytes], prompts: bytes = PROMPTS, project=None):
    archive = make_zip(tmp_path / "sources.zip", files)
    with open_source(archive, max_total_bytes=10**9) as source:
        return prompt_set_import(project=project or ProjectFactory(), name="edits",
                                 data=prompts, fmt="jsonl", images=source)


def test_a_source_video_is_stored_with_its_poster_as_the_still_source(tmp_path):
    clip = webm_bytes(frames=10, fps=5)
    prompt_set = _import(tmp_path, {"in/clip.webm": clip, "in/cat.png": png_bytes()})
    video_prompt, image_prompt, plain = Prompt.objects.filter(
        prompt_set=prompt_set).order_by("position")

    video = video_prompt.source_video
    assert (video.codec, video.frame_count, video.duration_s) == ("vp9", 10, 2.0)
    assert video_prompt.source_image == video.poster
    media = source_media(video_prompt)
    assert (media.kind, media.still, media.video) == ("video", video.poster, video)

    media = source_media(image_prompt)
    assert (media.kind, media.video) == ("image", None)
    assert media.still == image_prompt.source_image and image_prompt.source_video is None
    assert source_media(plain) is None


def test_a_truncated_source_video_rejects_the_whole_prompt_set(tmp_path):
    clip = webm_bytes(frames=30, fps=5)
    project = ProjectFactory()
    with pytest.raises(ImportRejected, match="missing or invalid") as refused:
        _import(tmp_path, {"in/clip.webm": truncated(clip), "in/cat.png": png_bytes()},
                project=project)
    assert refused.value.details[0].startswith("in/clip.webm: truncated or damaged")
    assert not project.prompt_sets.exists()


def test_a_prompt_naming_two_different_sources_is_refused():
    bad = b'{"text": "edit", "source_image": "a.png", "source_video": "b.mp4"}\n'
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(bad, fmt="jsonl")
    assert refused.value.details == [
        "line 1: source_image and source_video name different files; a prompt has one source"]


def test_the_source_video_is_served_to_the_projects_members_only(tmp_path):
    project = ProjectFactory()
    _import(tmp_path, {"in/clip.webm": webm_bytes(frames=10, fps=5), "in/cat.png": png_bytes()},
            project=project)
    video = Prompt.objects.get(text="make the square red").source_video
    annotator, scientist, outsider = UserFactory(), UserFactory(), UserFactory()
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    Membership.objects.create(project=project, user=scientist, role=Role.SCIENTIST)
    assert video_access(annotator, video.id).display
    assert not video_access(annotator, video.id).original  # pixels only, as for run videos
    assert video_access(scientist, video.id).original
    assert not video_access(outsider, video.id).display


def test_the_prompts_api_names_the_source_video(tmp_path, api):
    project = ProjectFactory()
    prompt_set = _import(tmp_path, {"in/clip.webm": webm_bytes(frames=10, fps=5),
                                    "in/cat.png": png_bytes()}, project=project)
    scientist = UserFactory()
    Membership.objects.create(project=project, user=scientist, role=Role.SCIENTIST)
    api.force_authenticate(scientist)
    rows = api.get("/api/v1/prompts/", {"prompt_set": prompt_set.id}).json()["results"]
    video = Prompt.objects.get(text="make the square red").source_video
    assert rows[0]["source_video_sha256"] == video.sha256
    assert rows[0]["source_image_sha256"] == video.poster.sha256
    assert rows[1]["source_video_sha256"] is None and rows[2]["source_image_sha256"] is None


def test_the_import_api_takes_source_videos_in_its_zip(tmp_path, api):
    project = ProjectFactory()
    scientist = UserFactory()
    Membership.objects.create(project=project, user=scientist, role=Role.SCIENTIST)
    api.force_authenticate(scientist)
    archive = make_zip(tmp_path / "src.zip", {"in/clip.webm": webm_bytes(frames=10, fps=5),
                                              "in/cat.png": png_bytes()})
    prompts, zipped = io.BytesIO(PROMPTS), io.BytesIO(archive.read_bytes())
    prompts.name, zipped.name = "p.jsonl", "src.zip"
    response = api.post("/api/v1/prompt-sets/import/", {
        "project": project.id, "name": "edits", "file": prompts, "images": zipped,
    }, format="multipart")
    assert response.status_code == 201, response.json()
    assert Prompt.objects.filter(prompt_set_id=response.json()["id"],
                                 source_video__isnull=False).count() == 1
