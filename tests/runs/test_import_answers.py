"""What an import answers: every problem of every file in one refusal, named as the user
knows the files, and the files it did not take listed (never dropped without a word).

One rule for run and reference-set imports (runs/importing/names.py): a file with an accepted
image or video extension is checked as one; a file with the extension of another image or
video format is refused by its name (an AVI gets the video message); a run takes what its
manifest lists, a reference set every image or video file; everything else is skipped and
listed in the answer."""

import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import reference_set_import, run_images_import
from evalhub.runs.models import GenerationRun, ReferenceSet
from tests.blobs.odd_videos import avi_bytes, live_webm_bytes
from tests.factories import CheckpointFactory, GenerationRunFactory, GenModelFactory, PromptFactory
from tests.runs.helpers import damage_zip_entry, distinct_pngs, make_zip, manifest_csv
from tests.videos import truncated, video_bytes

pytestmark = pytest.mark.django_db

LIMIT = 10**9
TOO_LONG = ("live_long.webm: 60.1 s or more exceeds the limit of 60 s "
            "(EVALHUB_MAX_VIDEO_SECONDS)")
PROMPTS = ["a red circle moving right", "two blue squares"]


@pytest.fixture
def run(project) -> GenerationRun:
    run = GenerationRunFactory(checkpoint=CheckpointFactory(
        model=GenModelFactory(project=project)))
    for position, text in enumerate(PROMPTS):
        PromptFactory(prompt_set=run.prompt_set, text=text, position=position)
    return run


@pytest.fixture
def reference_set(project) -> ReferenceSet:
    return ReferenceSet.objects.create(project=project, name="real-clips")


def _zip_bytes(tmp_path, files: dict[str, bytes]) -> io.BytesIO:
    handle = io.BytesIO(make_zip(tmp_path / "upload.zip", files).read_bytes())
    handle.name = "upload.zip"
    return handle


def _gif() -> bytes:
    frames = [PILImage.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return out.getvalue()


def _import_run(run, tmp_path, files: dict[str, bytes]):
    with open_source(make_zip(tmp_path / "run.zip", files), max_total_bytes=LIMIT) as source:
        return run_images_import(run=run, source=source)


def _import_reference(reference_set, tmp_path, files: dict[str, bytes]):
    with open_source(make_zip(tmp_path / "ref.zip", files), max_total_bytes=LIMIT) as source:
        return reference_set_import(reference_set=reference_set, source=source)


def _refused(call, *args) -> ImportRejected:
    with pytest.raises(ImportRejected) as refused:
        call(*args)
    return refused.value


# ------------------------------------------------------------------ a live WebM over the limit


def test_a_live_webm_over_the_duration_limit_is_a_400_listing_it_among_the_other_problems(
        api, scientist, run, tmp_path):
    api.force_authenticate(scientist)
    clip = video_bytes(frames=12, seed=1)
    archive = _zip_bytes(tmp_path, {
        "live_long.webm": live_webm_bytes(frames=700, fps=10), "cut.mp4": truncated(clip),
        "manifest.csv": manifest_csv([("live_long.webm", PROMPTS[0], 0),
                                      ("cut.mp4", PROMPTS[1], 0), ("gone.mp4", PROMPTS[1], 1)]),
    })

    response = api.post(f"/api/v1/runs/{run.pk}/import-images/", {"archive": archive},
                        format="multipart")

    assert response.status_code == 400, response.content
    problems = response.json()["errors"]
    assert TOO_LONG in problems
    assert any(p.startswith("cut.mp4: not a readable video container") for p in problems)
    assert "manifest line 4: file 'gone.mp4' not found" in problems
    assert len(problems) == 3 and not VideoBlob.objects.exists()


def test_a_live_webm_over_the_limit_is_a_400_for_a_reference_set_too(
        api, scientist, reference_set, tmp_path):
    api.force_authenticate(scientist)
    archive = _zip_bytes(tmp_path, {"live_long.webm": live_webm_bytes(frames=700, fps=10),
                                    "good.mp4": video_bytes(frames=12, seed=2)})

    response = api.post(f"/api/v1/reference-sets/{reference_set.pk}/import-images/",
                        {"archive": archive}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [TOO_LONG]
    assert not reference_set.videos.exists()


def test_import_images_says_a_live_webm_is_too_long_instead_of_a_traceback(
        run, project, tmp_path):
    archive = make_zip(tmp_path / "r.zip", {
        "live_long.webm": live_webm_bytes(frames=700, fps=10),
        "manifest.csv": manifest_csv([("live_long.webm", PROMPTS[0], 0)])})
    with pytest.raises(CommandError) as refused:
        call_command("import_images", str(archive), "--project", project.slug,
                     "--run", run.name)
    assert TOO_LONG in str(refused.value)


# ------------------------------------------------------------------ files of other formats


def test_a_reference_zip_with_avi_files_is_refused_naming_them(reference_set, tmp_path):
    refused = _refused(_import_reference, reference_set, tmp_path, {
        "good_a.mp4": video_bytes(frames=12, seed=1), "mjpeg.avi": avi_bytes("mjpeg"),
        "h264_in_avi.avi": avi_bytes("libx264"), "README.txt": b"clips from camera 2"})

    accepted = "(accepted: MP4, MOV, WebM, Matroska)"
    assert refused.details == [f"h264_in_avi.avi: container 'avi' is not accepted {accepted}",
                               f"mjpeg.avi: container 'avi' is not accepted {accepted}"]
    assert refused.message == ("Some reference files are invalid or of a format not "
                               "accepted. Nothing was imported.")
    assert not reference_set.videos.exists() and not VideoBlob.objects.exists()


def test_a_reference_zip_with_images_of_other_formats_is_refused_naming_them(
        reference_set, tmp_path):
    refused = _refused(_import_reference, reference_set, tmp_path, {
        "a.png": distinct_pngs(1)[0], "phone/IMG_0001.HEIC": b"\x00\x00\x00\x18ftypheic",
        "logo.svg": b"<svg/>"})

    assert [line.split(":")[0] for line in refused.details] == ["logo.svg",
                                                                "phone/IMG_0001.HEIC"]
    assert "image format '.heic' is not accepted (accepted: .bmp, .gif, .jpeg, .jpg, .png, " \
           ".tif, .tiff, .webp)" in refused.details[1]
    assert not reference_set.images.exists()


def test_a_reference_import_lists_the_files_it_skipped(reference_set, tmp_path):
    report = _import_reference(reference_set, tmp_path, {
        "clips/good_a.mp4": video_bytes(frames=12, seed=1), "README.txt": b"camera 2",
        "clips/.DS_Store": b"\x00\x00\x00\x01Bud1",
        # What macOS's Archive Utility adds: resource forks named like the videos themselves.
        "__MACOSX/clips/._good_a.mp4": b"\x00\x05\x16\x07resource fork"})

    assert report.images_created == 1 and reference_set.videos.count() == 1
    assert report.files_skipped == 3
    assert report.skipped_files == ("README.txt", "__MACOSX/clips/._good_a.mp4",
                                    "clips/.DS_Store")


def test_the_reference_api_answer_lists_the_skipped_files(api, scientist, reference_set,
                                                          tmp_path):
    api.force_authenticate(scientist)
    archive = _zip_bytes(tmp_path, {"a.png": distinct_pngs(1)[0], "notes.md": b"from COCO"})

    response = api.post(f"/api/v1/reference-sets/{reference_set.pk}/import-images/",
                        {"archive": archive}, format="multipart")

    assert response.status_code == 201, response.content
    assert response.json() == {"images_created": 1, "blobs_created": 1,
                               "duplicates_of_existing_blobs": 0, "files_skipped": 1,
                               "skipped_files": ["notes.md"]}


def test_a_run_import_lists_the_files_its_manifest_does_not_name(run, tmp_path):
    # The same rule as a reference set's: what the import did not take is said, by name.
    a, b = distinct_pngs(2)
    report = _import_run(run, tmp_path, {
        "a.png": a, "extra/b.png": b, "README.txt": b"seed 0 only",
        "manifest.csv": manifest_csv([("a.png", PROMPTS[0], 0)])})

    assert report.images_created == 1
    assert (report.files_skipped, report.skipped_files) == (2, ("README.txt", "extra/b.png"))


def test_a_listed_avi_gets_the_video_message_the_same_file_named_mp4_gets(run, tmp_path):
    mjpeg = avi_bytes("mjpeg")
    refused = _refused(_import_run, run, tmp_path, {
        "clips/mjpeg.avi": mjpeg, "clips/renamed.mp4": mjpeg,
        "manifest.csv": manifest_csv([("clips/mjpeg.avi", PROMPTS[0], 0),
                                      ("clips/renamed.mp4", PROMPTS[1], 0)])})

    accepted = "(accepted: MP4, MOV, WebM, Matroska)"
    assert refused.details == [f"clips/mjpeg.avi: container 'avi' is not accepted {accepted}",
                               f"clips/renamed.mp4: container 'avi' is not accepted {accepted}"]


# ------------------------------------------------------------------ mixed kinds, named


def test_a_video_manifest_listing_a_gif_names_the_gif(run, tmp_path):
    refused = _refused(_import_run, run, tmp_path, {
        **{f"{i}.mp4": video_bytes(frames=6, seed=i) for i in range(3)}, "anim.gif": _gif(),
        "manifest.csv": manifest_csv([*[(f"{i}.mp4", PROMPTS[0], i) for i in range(3)],
                                      ("anim.gif", PROMPTS[1], 0)])})

    assert refused.details == ["the manifest lists both images and videos; a run holds one "
                               "kind (3 videos, 1 image: anim.gif on line 5)"]


def test_the_mixed_kind_refusal_says_how_many_names_it_leaves_out(reference_set, tmp_path):
    pngs = distinct_pngs(8)
    refused = _refused(_import_reference, reference_set, tmp_path, {
        **{f"img/{i}.png": data for i, data in enumerate(pngs)},
        **{f"vid/{i}.mp4": video_bytes(frames=6, seed=i) for i in range(6)}})

    assert "both images and videos" in refused.message
    assert refused.details == [
        "images (8): img/0.png, img/1.png, img/2.png, img/3.png, img/4.png and 3 more",
        "videos (6): vid/0.mp4, vid/1.mp4, vid/2.mp4, vid/3.mp4, vid/4.mp4 and 1 more"]


def test_a_mixed_reference_zip_lists_every_other_problem_in_the_same_answer(
        reference_set, tmp_path):
    clip = video_bytes(frames=24, seed=3)
    refused = _refused(_import_reference, reference_set, tmp_path, {
        "a.png": distinct_pngs(1)[0], "broken.png": b"\x89PNG\r\n\x1a\n cut",
        "good.mp4": video_bytes(frames=6, seed=4), "cut.mp4": truncated(clip),
        "camera.avi": avi_bytes("mjpeg")})

    assert "both images and videos" in refused.message
    named = [line.split(":")[0] for line in refused.details]
    assert named == ["images (2)", "videos (2)", "broken.png", "camera.avi", "cut.mp4"]
    assert refused.details[0] == "images (2): a.png, broken.png"
    assert not VideoBlob.objects.exists()


# ------------------------------------------------------------------ the command line


def test_import_images_says_videos_and_lists_what_it_skipped(run, project, tmp_path):
    archive = make_zip(tmp_path / "r.zip", {
        **{f"clips/{i}.mp4": video_bytes(frames=6, seed=i) for i in range(3)},
        "clips/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "manifest.csv": manifest_csv([(f"clips/{i}.mp4", PROMPTS[i % 2], i) for i in range(3)])})
    out = StringIO()
    call_command("import_images", str(archive), "--project", project.slug, "--run", run.name,
                 stdout=out)
    text = out.getvalue()
    assert f"Run {run.name!r}: 3 videos imported, 3 new to this project" in text
    assert "1 file skipped (not in the manifest): clips/.DS_Store" in text


def test_import_reference_set_lists_what_it_skipped(project, tmp_path):
    archive = make_zip(tmp_path / "ref.zip", {
        **{f"real/{i}.png": data for i, data in enumerate(distinct_pngs(2))},
        "real/LICENSE": b"CC-BY", "__MACOSX/real/._0.png": b"\x00\x05\x16\x07"})
    out = StringIO()
    call_command("import_reference_set", str(archive), "--project", project.slug,
                 "--name", "coco", stdout=out)
    assert "Reference set 'coco': 2 images added" in out.getvalue()
    assert ("2 files skipped (not images or videos): __MACOSX/real/._0.png, real/LICENSE"
            in out.getvalue())


# ------------------------------------------------------------------ counted in the run's words


def test_one_video_and_one_image_are_counted_in_the_singular(project, tmp_path):
    one_clip = make_zip(tmp_path / "one.zip", {
        "a.mp4": video_bytes(frames=6, seed=1),
        "manifest.csv": manifest_csv([("a.mp4", PROMPTS[0], 0)])})
    one_png = make_zip(tmp_path / "png.zip", {
        "a.png": distinct_pngs(1)[0], "manifest.csv": manifest_csv([("a.png", PROMPTS[0], 0)])})
    for archive, name, said in ((one_clip, "onev", "1 video imported"),
                                (one_png, "onei", "1 image imported")):
        run = GenerationRunFactory(name=name, checkpoint=CheckpointFactory(
            model=GenModelFactory(project=project)))
        PromptFactory(prompt_set=run.prompt_set, text=PROMPTS[0], position=0)
        out = StringIO()
        call_command("import_images", str(archive), "--project", project.slug, "--run", name,
                     stdout=out)
        assert (f"Run {name!r}: {said}, 1 new to this project, 0 already in this project."
                in out.getvalue())


def test_a_reference_set_of_one_video_says_one_video_added(project, tmp_path):
    archive = make_zip(tmp_path / "ref.zip", {"real/a.webm": video_bytes(
        frames=6, seed=2, codec="libvpx-vp9", container="webm")})
    out = StringIO()
    call_command("import_reference_set", str(archive), "--project", project.slug,
                 "--name", "real clips", stdout=out)
    assert "Reference set 'real clips': 1 video added (1 new to this project)." in out.getvalue()


def test_importing_a_video_again_says_the_run_already_has_a_video(run, tmp_path):
    files = {"a.mp4": video_bytes(frames=6, seed=3),
             "manifest.csv": manifest_csv([("a.mp4", PROMPTS[0], 0)])}
    _import_run(run, tmp_path, files)
    refused = _refused(_import_run, run, tmp_path, files)
    assert refused.details == ["manifest line 2: run already has a video for this prompt and "
                               "seed 0"]


def test_an_empty_manifest_is_named_in_the_runs_words(run, tmp_path):
    empty = {"manifest.csv": b"file,prompt,seed\n"}
    # A run that holds nothing yet takes either kind.
    assert _refused(_import_run, run, tmp_path, empty).message == (
        "manifest.csv lists no images or videos.")
    _import_run(run, tmp_path, {"a.mp4": video_bytes(frames=6, seed=4),
                                "manifest.csv": manifest_csv([("a.mp4", PROMPTS[0], 0)])})
    assert _refused(_import_run, run, tmp_path, empty).message == "manifest.csv lists no videos."


# ------------------------------------------------------------------ a damaged zip entry

# A stored entry with a flipped byte fails its CRC-32; a deflated one with a broken stream
# cannot be inflated. Either is the file's problem, listed with every other one.
DAMAGED = [(False, "img0.png: damaged in the zip (bad CRC-32)"),
           (True, "img0.png: damaged in the zip (could not be decompressed)")]


def _damaged_zip(tmp_path, files: dict[str, bytes], *, deflate: bool, name: str = "img0.png"):
    return damage_zip_entry(make_zip(tmp_path / "damaged.zip", files, deflate=deflate), name)


def _upload(path) -> io.BytesIO:
    handle = io.BytesIO(path.read_bytes())
    handle.name = "upload.zip"
    return handle


@pytest.mark.parametrize(("deflate", "problem"), DAMAGED)
def test_a_damaged_entry_is_a_400_listing_it_among_the_other_problems(
        api, scientist, run, tmp_path, deflate, problem):
    api.force_authenticate(scientist)
    good, damaged = distinct_pngs(2)
    archive = _damaged_zip(tmp_path, {
        "img0.png": damaged, "img1.png": good,
        "manifest.csv": manifest_csv([("img0.png", PROMPTS[0], 0), ("img1.png", PROMPTS[1], 0),
                                      ("gone.png", PROMPTS[1], 1)]),
    }, deflate=deflate)

    response = api.post(f"/api/v1/runs/{run.pk}/import-images/", {"archive": _upload(archive)},
                        format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [problem, "manifest line 4: file 'gone.png' not found"]
    assert not run.images.exists() and not ImageBlob.objects.exists()


@pytest.mark.parametrize(("deflate", "problem"), DAMAGED)
def test_a_damaged_entry_is_a_400_for_a_reference_set_too(
        api, scientist, reference_set, tmp_path, deflate, problem):
    api.force_authenticate(scientist)
    good, damaged = distinct_pngs(2)
    archive = _damaged_zip(tmp_path, {"img0.png": damaged, "img1.png": good}, deflate=deflate)

    response = api.post(f"/api/v1/reference-sets/{reference_set.pk}/import-images/",
                        {"archive": _upload(archive)}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [problem]
    assert not reference_set.images.exists() and not ImageBlob.objects.exists()


def test_a_damaged_manifest_is_a_400_naming_it(api, scientist, run, tmp_path):
    api.force_authenticate(scientist)
    archive = _damaged_zip(tmp_path, {
        "img0.png": distinct_pngs(1)[0],
        "manifest.csv": manifest_csv([("img0.png", PROMPTS[0], 0)]),
    }, deflate=True, name="manifest.csv")

    response = api.post(f"/api/v1/runs/{run.pk}/import-images/", {"archive": _upload(archive)},
                        format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        "manifest.csv: damaged in the zip (could not be decompressed)"]
    assert not run.images.exists()


@pytest.mark.parametrize(("deflate", "problem"), DAMAGED)
def test_import_images_says_an_entry_is_damaged_instead_of_a_traceback(
        run, project, tmp_path, deflate, problem):
    archive = _damaged_zip(tmp_path, {
        "img0.png": distinct_pngs(1)[0],
        "manifest.csv": manifest_csv([("img0.png", PROMPTS[0], 0)])}, deflate=deflate)
    with pytest.raises(CommandError) as refused:
        call_command("import_images", str(archive), "--project", project.slug,
                     "--run", run.name)
    assert problem in str(refused.value)
    assert not run.images.exists()


@pytest.mark.parametrize(("deflate", "problem"), DAMAGED)
def test_import_reference_set_says_an_entry_is_damaged_instead_of_a_traceback(
        project, tmp_path, deflate, problem):
    archive = _damaged_zip(tmp_path, {"img0.png": distinct_pngs(1)[0]}, deflate=deflate)
    with pytest.raises(CommandError) as refused:
        call_command("import_reference_set", str(archive), "--project", project.slug,
                     "--name", "real")
    assert problem in str(refused.value)
    assert not ReferenceSet.objects.filter(name="real").exists()
