"""FVD as a metric job: a video run against a reference set of real videos (imported through
the same validated video path as a run's), in shards whose partial I3D statistics merge
exactly, agreeing with cd-fvd 0.1.1 (its InceptionI3d, preprocess_i3d and frechet_distance on
the same weights; tests/metrics/test_i3d_fvd.py compares the parts); stored with the I3D
backbone, its weights' sha256 and the calibrated flag. FVD on
image runs, with image reference sets, or with FID in the same job is refused with a reason
(400 from the API and the workspace form)."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
import torch
from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d
from cdfvd.third_party.i3d.utils import frechet_distance as cdfvd_frechet_distance
from cdfvd.third_party.i3d.utils import preprocess_i3d
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evalhub.blobs.sources import open_source
from evalhub.core.errors import EvalHubError, ImportRejected
from evalhub.evaluation import backbones
from evalhub.evaluation.feature_cache import DatabaseFeatureCache
from evalhub.evaluation.models import (
    FeatureCacheEntry,
    JobStatus,
    MetricJob,
    ReferenceStats,
    RunMetric,
)
from evalhub.evaluation.services import metric_job_create, metric_job_process_inline
from evalhub.projects.models import Membership, Role
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import MediaKind, ReferenceSet
from metrics.gaussian import GaussianStats
from metrics.video_frames import FrameSampling, read_frames
from metrics.video_metrics import fvd_from_stats
from tests.evaluation.helpers import (
    FVD_OPTIONS,
    clip_bytes,
    make_reference_set,
    make_run,
    make_video_reference_set,
    make_video_run,
)
from tests.factories import GenerationRunFactory, UserFactory
from tests.runs.helpers import make_zip

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------ reference sets


def test_a_folder_of_videos_becomes_a_video_reference_set(tmp_path):
    project = GenerationRunFactory().project
    reference_set = make_video_reference_set(tmp_path, project)
    reference_set.refresh_from_db()
    assert reference_set.media_kind == MediaKind.VIDEO
    assert reference_set.videos.count() == 3 and reference_set.images.count() == 0
    assert {v.codec for v in reference_set.videos.all()} == {"h264"}


def test_a_reference_import_keeps_one_kind_per_set(tmp_path):
    project = GenerationRunFactory().project
    videos = make_video_reference_set(tmp_path, project)
    images = make_reference_set(project, n=2)
    mixed = make_zip(tmp_path / "mixed.zip", {"a.mp4": clip_bytes(tmp_path, "m", seed=7),
                                              "b.png": images.images.first().file.read()})
    with open_source(mixed, max_total_bytes=10**9) as source, pytest.raises(
            ImportRejected, match="both images and videos"):
        reference_set_import(reference_set=ReferenceSet.objects.create(
            project=project, name="mixed"), source=source)
    more_videos = make_zip(tmp_path / "v.zip", {"c.mp4": clip_bytes(tmp_path, "c", seed=8)})
    with open_source(more_videos, max_total_bytes=10**9) as source, pytest.raises(
            ImportRejected, match="holds images; this folder or zip holds videos"):
        reference_set_import(reference_set=images, source=source)
    assert videos.videos.count() == 3 and images.images.count() == 2


def test_a_truncated_reference_video_rejects_the_whole_import(tmp_path):
    project = GenerationRunFactory().project
    good = clip_bytes(tmp_path, "good", seed=1)
    archive = make_zip(tmp_path / "bad.zip", {"good.mp4": good,
                                              "cut.mp4": good[: len(good) // 2]})
    reference_set = ReferenceSet.objects.create(project=project, name="bad")
    with open_source(archive, max_total_bytes=10**9) as source, pytest.raises(
            ImportRejected, match="invalid") as refused:
        reference_set_import(reference_set=reference_set, source=source)
    assert any("cut.mp4" in line for line in refused.value.details)
    assert reference_set.videos.count() == 0


# ------------------------------------------------------------------------------ the job


def test_fvd_from_shards_is_the_single_pass_fvd_and_cd_fvds(tmp_path):
    backbones.clear()
    run, run_files = make_video_run(tmp_path)
    reference_set = make_video_reference_set(tmp_path, run.project)
    job = metric_job_create(run=run, metrics=["fvd"], reference_set=reference_set,
                            options=FVD_OPTIONS, enqueue=False)
    assert job.shards_total == 2 + 2
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.COMPLETED, job.metric_errors
    row = RunMetric.objects.get(run=run, metric="fvd")
    extractor = backbones.i3d(FVD_OPTIONS)
    reference_files = [v.file.path for v in reference_set.videos.order_by("id")]

    # Exact merge: the shards' partial statistics give the FVD of all features in one pass.
    def stats(shas: list[str]) -> GaussianStats:  # one fit of the job's cached features
        found = DatabaseFeatureCache().get_many(shas, extractor.backbone_id)
        return GaussianStats.from_features(np.stack([found[sha] for sha in shas]))

    single = fvd_from_stats(
        stats(list(reference_set.videos.values_list("sha256", flat=True))),
        stats([img.video.sha256 for img in run.images.select_related("video")]),
        extractor.info, allow_rank_deficient=True)
    assert row.value == pytest.approx(single.fvd, rel=1e-9)

    # And the value is cd-fvd's: its InceptionI3d holding the same weights, its preprocessing
    # of the same decoded frames, its frechet_distance (float64).
    net = InceptionI3d(400, in_channels=3)
    net.load_state_dict(extractor.net.state_dict())
    frames = FVD_OPTIONS["fvd_clip_frames"]

    def theirs(files) -> torch.Tensor:
        clips = np.stack([read_frames(f, sampling=FrameSampling(every=1, limit=frames))
                          .frames.permute(0, 2, 3, 1).numpy() for f in files])
        with torch.no_grad():
            return net.eval()(preprocess_i3d(clips)).double()

    expected = float(cdfvd_frechet_distance(theirs(reference_files), theirs(run_files)))
    assert expected > 1.0
    assert row.value == pytest.approx(expected, rel=1e-3)

    assert row.value > 0 and row.reference_set == reference_set and row.n_images == 3
    assert row.backbone_id == "i3d-kinetics400/logits/9f+random:0"
    assert (row.weights_sha256, row.calibrated) == ("random:0", False)
    assert row.details["n_reference"] == 3 and row.details["clip_frames"] == 9
    assert row.details["rank_deficient"] is True
    assert job.results["fvd"]["uncalibrated"] is True
    stats = ReferenceStats.objects.get(reference_set=reference_set, backbone_id=row.backbone_id)
    assert (stats.n, stats.dim) == (3, 400)

    # A second job reads every feature from the cache and the reference statistics as stored.
    entries = FeatureCacheEntry.objects.count()
    assert entries == 6
    RunMetric.objects.all().delete()
    again = metric_job_process_inline(job=metric_job_create(
        run=run, metrics=["fvd"], reference_set=reference_set,
        options={**FVD_OPTIONS, "shard_size": 3}, enqueue=False))
    assert again.status == JobStatus.COMPLETED, again.metric_errors
    assert sum(again.shards.values_list("features_computed", flat=True)) == 0
    assert FeatureCacheEntry.objects.count() == entries
    assert RunMetric.objects.get(run=run, metric="fvd").value == pytest.approx(row.value,
                                                                              rel=1e-9)


def test_fvd_of_few_videos_needs_the_rank_deficient_option(tmp_path):
    run, _ = make_video_run(tmp_path, n=2)
    reference_set = make_video_reference_set(tmp_path, run.project, n=2)
    job = metric_job_process_inline(job=metric_job_create(
        run=run, metrics=["fvd"], reference_set=reference_set,
        options={**FVD_OPTIONS, "fvd_allow_rank_deficient": False}, enqueue=False))
    assert job.status == JobStatus.FAILED
    assert "fvd_allow_rank_deficient=true" in job.metric_errors["fvd"]
    assert not RunMetric.objects.filter(run=run).exists()


def _video_set_without_import(project) -> ReferenceSet:
    return ReferenceSet.objects.create(project=project, name="videos",
                                       media_kind=MediaKind.VIDEO)


@pytest.mark.parametrize(("case", "message"), [
    ("image run", r"fvd measures videos: run .* has images"),
    ("image reference set", r"fvd compare the run's videos with real videos: reference set "
                            r"'images' holds images"),
    ("fid with videos", r"fid compare the run's images with real images: reference set "
                        r"'videos' holds videos"),
    ("fid and fvd", r"fid compare with a reference set of images and fvd with a reference set "
                    r"of videos"),
    ("no reference set", r"fvd compares the run with real videos: choose a reference set"),
])
def test_fvd_jobs_that_cannot_be_computed_are_refused(tmp_path, case, message):
    run, _ = make_video_run(tmp_path, n=1)
    images = make_reference_set(run.project, n=2, name="images")
    videos = _video_set_without_import(run.project)
    metrics, reference_set = {
        "image run": (["fvd"], videos),
        "image reference set": (["fvd"], images),
        "fid with videos": (["fid"], videos),
        "fid and fvd": (["fid", "fvd"], videos),
        "no reference set": (["fvd"], None),
    }[case]
    if case == "image run":
        run = make_run(prompts=1, seeds=1, project=run.project)
    with pytest.raises(EvalHubError, match=message):
        metric_job_create(run=run, metrics=metrics, reference_set=reference_set,
                          options=FVD_OPTIONS, enqueue=False)
    assert not MetricJob.objects.exists()


def test_fvd_refuses_videos_shorter_than_its_clip(tmp_path):
    run, _ = make_video_run(tmp_path, n=1, frames=8)
    reference_set = make_video_reference_set(tmp_path, run.project, n=1, frames=8)
    with pytest.raises(EvalHubError, match="first 16 frames") as refused:
        metric_job_create(run=run, metrics=["fvd"], reference_set=reference_set,
                          options={"fvd_allow_rank_deficient": True}, enqueue=False)
    assert refused.value.details == [
        f"run {run.name!r}: 1 video(s) shorter than 16 frames",
        "reference set 'real-100': 1 video(s) shorter than 16 frames"]


@pytest.mark.parametrize("options", [{"fvd_clip_frames": 8}, {"fvd_clip_frames": "16"},
                                     {"fvd_allow_rank_deficient": 1}])
def test_bad_fvd_options_are_refused(tmp_path, options):
    run, _ = make_video_run(tmp_path, n=1)
    with pytest.raises(EvalHubError, match="options"):
        metric_job_create(run=run, metrics=["fvd"], reference_set=_video_set_without_import(
            run.project), options=options, enqueue=False)


# ------------------------------------------------------------------------------ API, workspace


def _scientist(project):
    user = UserFactory()
    Membership.objects.create(project=project, user=user, role=Role.SCIENTIST)
    return user


def test_the_api_creates_an_fvd_job_and_answers_400_for_image_runs_and_sets(tmp_path, api):
    run, _ = make_video_run(tmp_path, n=1)
    images = make_reference_set(run.project, n=2, name="images")
    videos = make_video_reference_set(tmp_path, run.project, n=1)
    image_run = make_run(prompts=1, seeds=1, project=run.project)
    api.force_authenticate(_scientist(run.project))
    url = "/api/v1/metric-jobs/"
    refused = api.post(url, {"run": run.pk, "metrics": ["fvd"], "reference_set": images.pk,
                             "options": FVD_OPTIONS}, format="json")
    assert refused.status_code == 400
    assert "reference set 'images' holds images" in str(refused.json())
    refused = api.post(url, {"run": image_run.pk, "metrics": ["fvd"],
                             "reference_set": videos.pk, "options": FVD_OPTIONS}, format="json")
    assert refused.status_code == 400 and "measures videos" in str(refused.json())
    created = api.post(url, {"run": run.pk, "metrics": ["fvd"], "reference_set": videos.pk,
                             "options": FVD_OPTIONS}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["metrics"] == ["fvd"] and created.json()["shards_total"] == 2
    listed = api.get(f"/api/v1/reference-sets/{videos.pk}/").json()
    assert (listed["media_kind"], listed["video_count"], listed["image_count"]) == (
        "video", 1, 0)


def test_the_workspace_form_offers_fvd_and_shows_why_an_image_set_is_refused(
        tmp_path, django_capture_on_commit_callbacks):
    run, _ = make_video_run(tmp_path, n=1)
    images = make_reference_set(run.project, n=2, name="images")
    videos = make_video_reference_set(tmp_path, run.project, n=1)
    client = Client()
    client.force_login(_scientist(run.project))
    url = reverse("workspace-metrics", kwargs={"project_id": run.project.pk})
    assert 'value="fvd"' in client.get(url).content.decode()
    response = client.post(url, {"run": run.pk, "metrics": ["fvd"],
                                 "reference_set": images.pk})
    assert response.status_code == 400
    assert "holds images. Choose a reference set of videos" in response.content.decode()
    with django_capture_on_commit_callbacks():
        response = client.post(url, {"run": run.pk, "metrics": ["fvd"],
                                     "reference_set": videos.pk})
    job = MetricJob.objects.get()
    assert response.status_code == 302 and job.metrics == ["fvd"]
    assert job.reference_set == videos


def test_the_cli_imports_a_video_reference_set_and_defaults_to_fvd_with_it(tmp_path):
    run, _ = make_video_run(tmp_path, n=1)
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "a.webm").write_bytes(clip_bytes(tmp_path, "cli", seed=3))
    out = StringIO()
    call_command("import_reference_set", str(folder), "--project", run.project.slug,
                 "--name", "real clips", stdout=out)
    assert "1 video added" in out.getvalue()
    call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                 "--reference-set", "real clips", stdout=StringIO())
    job = MetricJob.objects.get(run=run)
    assert job.metrics == ["clip_score", "lpips_diversity", "fvd"]
    assert job.reference_set.media_kind == MediaKind.VIDEO
