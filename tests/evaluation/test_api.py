"""Metric job and metric value endpoints: creation, progress, uncalibrated marker, access."""

from __future__ import annotations

import pytest

from evalhub.evaluation.models import ImageMetric, MetricJob, PromptMetric, RunMetric
from evalhub.evaluation.services import metric_job_process_inline
from tests.evaluation.helpers import FAST_OPTIONS, make_reference_set, make_run
from tests.factories import GenerationRunFactory

pytestmark = pytest.mark.django_db

PROV = {"backbone_id": "inception-v3-fid/pool3+random:0", "weights_sha256": "random:0",
        "calibrated": False, "library_versions": {"torch": "2"}}


@pytest.fixture
def run(project):
    return make_run(prompts=2, seeds=2, checkpoint__model__project=project)


def test_a_scientist_creates_a_job_and_follows_its_progress(api, scientist, run):
    ref = make_reference_set(run.project, n=4)
    api.force_authenticate(scientist)
    response = api.post("/api/v1/metric-jobs/", {
        "run": run.id, "metrics": ["kid", "clip_score"], "reference_set": ref.id,
        "options": FAST_OPTIONS}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["shards_total"], body["shards_done"], body["progress"]) == (
        "queued", 2, 0, 0.0)
    assert body["project"] == run.project_id and body["images_total"] == 4

    metric_job_process_inline(job=MetricJob.objects.get(pk=body["id"]))
    detail = api.get(f"/api/v1/metric-jobs/{body['id']}/").json()
    assert (detail["status"], detail["shards_done"], detail["progress"]) == ("completed", 2, 1.0)
    assert detail["results"]["kid"]["uncalibrated"] is True

    listed = api.get("/api/v1/run-metrics/", {"run": run.id}).json()["results"]
    assert {m["metric"] for m in listed} == {"kid", "clip_score"}
    assert all(m["calibrated"] is False and m["uncalibrated"] is True for m in listed)
    images = api.get("/api/v1/image-metrics/", {"run": run.id, "metric": "clip_score"}).json()
    assert images["count"] == 4 and images["results"][0]["uncalibrated"] is True
    prompts = api.get("/api/v1/prompt-metrics/", {"run": run.id}).json()
    assert prompts["count"] == 2


def test_a_job_over_a_run_still_generating_is_accepted_waiting_and_resume_keeps_it_so(
        api, scientist, run):
    from evalhub.runs.models import GenerationRun, RunStatus

    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, items_total=8)
    api.force_authenticate(scientist)
    response = api.post("/api/v1/metric-jobs/", {"run": run.id, "metrics": ["clip_score"]},
                        format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["shards_total"], body["images_total"]) == ("waiting", 0, 0)
    waiting = api.get("/api/v1/metric-jobs/", {"status": "waiting"}).json()["results"]
    assert [job["id"] for job in waiting] == [body["id"]]
    resumed = api.post(f"/api/v1/metric-jobs/{body['id']}/resume/")
    assert resumed.status_code == 202 and resumed.json()["status"] == "waiting"


def test_a_job_names_only_its_runs_project(api, scientist, run):
    # project is read-only: its run's is accepted, another is refused, not ignored.
    api.force_authenticate(scientist)
    payload = {"run": run.id, "metrics": ["clip_score"], "options": FAST_OPTIONS}
    refused = api.post("/api/v1/metric-jobs/", {**payload, "project": run.project_id + 1},
                       format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["project"]
    assert not MetricJob.objects.exists()
    accepted = api.post("/api/v1/metric-jobs/", {**payload, "project": run.project_id},
                        format="json")
    assert accepted.status_code == 201, accepted.json()


def test_bad_job_input_gets_a_400_with_the_reason(api, owner, project):
    empty = GenerationRunFactory(checkpoint__model__project=project, name="nothing-here")
    api.force_authenticate(owner)
    response = api.post("/api/v1/metric-jobs/", {"run": empty.id, "metrics": ["clip_score"]},
                        format="json")
    assert response.status_code == 400
    assert "Run 'nothing-here' has no images" in response.json()["detail"]
    response = api.post("/api/v1/metric-jobs/", {"run": empty.id, "metrics": ["bleu"]},
                        format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(("metrics", "options", "problem"), [
    (["clip_score"], {"clip_pretrained": "no_such_tag"},
     "clip_pretrained 'no_such_tag' is not an open_clip pretrained tag of ViT-B-32"),
    (["lpips_diversity"], {"flicker_short_side": 16}, "flicker_short_side must be between 31"),
])
def test_options_a_worker_could_not_use_get_a_400_naming_the_option(
        api, owner, run, metrics, options, problem):
    api.force_authenticate(owner)
    response = api.post("/api/v1/metric-jobs/", {"run": run.id, "metrics": metrics,
                                                 "options": options}, format="json")
    assert response.status_code == 400
    assert problem in str(response.json()), response.json()
    assert not MetricJob.objects.exists()


def test_fid_without_reference_set_is_refused(api, owner, run):
    api.force_authenticate(owner)
    response = api.post("/api/v1/metric-jobs/", {"run": run.id, "metrics": ["fid"]},
                        format="json")
    assert response.status_code == 400
    assert "choose a reference set" in response.json()["detail"]


def test_annotators_and_outsiders_cannot_create_or_see_jobs_and_metrics(
        api, annotator, outsider, scientist, run):
    job = MetricJob.objects.create(project=run.project, run=run, metrics=["clip_score"])
    RunMetric.objects.create(run=run, metric="clip_score", value=30.0, **PROV)
    image = run.images.first()
    ImageMetric.objects.create(image=image, metric="clip_score", value=30.0, **PROV)
    PromptMetric.objects.create(run=run, prompt=image.prompt, metric="clip_score", value=1,
                                **PROV)
    payload = {"run": run.id, "metrics": ["clip_score"]}
    # Annotators never see runs (they stay blind) and outsiders see nothing: for both the run
    # does not exist.
    for user, create_status in ((annotator, 400), (outsider, 400)):
        api.force_authenticate(user)
        assert api.post("/api/v1/metric-jobs/", payload, format="json").status_code == \
            create_status
        assert api.get(f"/api/v1/metric-jobs/{job.id}/").status_code == 404
        for url in ("metric-jobs", "run-metrics", "image-metrics", "prompt-metrics"):
            assert api.get(f"/api/v1/{url}/", {"run": run.id}).json()["count"] == 0, url
    api.force_authenticate(scientist)
    for url in ("metric-jobs", "run-metrics", "image-metrics", "prompt-metrics"):
        assert api.get(f"/api/v1/{url}/", {"run": run.id}).json()["count"] == 1, url


def test_a_reference_set_of_another_project_is_not_accepted(api, owner, run):
    other = make_reference_set(GenerationRunFactory().project, n=1)
    api.force_authenticate(owner)
    response = api.post("/api/v1/metric-jobs/", {"run": run.id, "metrics": ["kid"],
                                                 "reference_set": other.id}, format="json")
    assert response.status_code == 400
    assert "reference_set" in response.json()


def test_calibrated_values_carry_no_uncalibrated_marker(api, scientist, run):
    RunMetric.objects.create(run=run, metric="clip_score", value=31.0,
                             **{**PROV, "calibrated": True, "weights_sha256": "ab" * 32})
    api.force_authenticate(scientist)
    [row] = api.get("/api/v1/run-metrics/", {"run": run.id}).json()["results"]
    assert (row["calibrated"], row["uncalibrated"]) == (True, False)
    assert api.get("/api/v1/run-metrics/", {"calibrated": "false"}).json()["count"] == 0


def test_options_sent_as_a_form_field_are_read_as_json(api, scientist, run):
    # A DictField wanted "options.shard_size" fields in a form body and dropped "options".
    api.force_authenticate(scientist)
    response = api.post("/api/v1/metric-jobs/", {
        "run": run.id, "metrics": ["clip_score"], "options": '{"shard_size": 3}'},
        format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["options"]["shard_size"] == 3
    refused = api.post("/api/v1/metric-jobs/", {
        "run": run.id, "metrics": ["clip_score"], "options": "[1, 2]"}, format="multipart")
    assert refused.status_code == 400 and "JSON object" in str(refused.json()["options"])


def test_the_api_root_lists_the_metric_endpoints(api, scientist):
    api.force_authenticate(scientist)
    listed = api.get("/api/v1/").json()
    for name in ("metric-jobs", "run-metrics", "prompt-metrics", "image-metrics"):
        assert listed[name].endswith(f"/api/v1/{name}/"), name
