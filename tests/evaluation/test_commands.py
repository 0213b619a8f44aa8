"""manage.py compute_metrics and fetch_weights."""

from __future__ import annotations

import time
import urllib.request
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.evaluation.models import ImageMetric, MetricJob
from tests.evaluation.helpers import make_reference_set, make_run

pytestmark = pytest.mark.django_db


def test_compute_metrics_inline_prints_values_marked_uncalibrated():
    run = make_run(prompts=2, seeds=2)
    make_reference_set(run.project, n=5, name="real")
    out = StringIO()
    # 5 reference images: no full-rank FID, so the job ends partial, which is not a success:
    # exit status 3 (PARTIAL_EXIT_STATUS), so `compute_metrics ... --wait && next` stops.
    with pytest.raises(CommandError) as partial:
        call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                     "--metrics", "fid,kid,clip_score", "--reference-set", "real", "--inline",
                     "--option", "fid_feature=64", "--option", "kid_subset_size=4", stdout=out)
    job = MetricJob.objects.get(run=run)
    assert partial.value.returncode == 3
    assert str(partial.value).startswith(f"Job {job.pk} partial: 1 of 3 metrics not computed "
                                         "(fid: ")
    assert "at least 65" in str(partial.value) and "\n" not in str(partial.value)
    text = out.getvalue()  # the values computed are printed all the same
    assert "fid              not computed" in text and "at least 65" in text
    kid_line = next(line for line in text.splitlines() if line.startswith("kid"))
    assert "UNCALIBRATED" in kid_line and "±" in kid_line
    assert "UNCALIBRATED" in next(line for line in text.splitlines()
                                  if line.startswith("clip_score"))


def test_compute_metrics_queues_a_job_and_reports_bad_input():
    run = make_run(prompts=1, seeds=1)
    out = StringIO()
    call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                 stdout=out)
    job = MetricJob.objects.get(run=run)
    assert job.metrics == ["clip_score", "lpips_diversity"] and job.status == "queued"
    assert "queued on the gpu queue" in out.getvalue()
    with pytest.raises(CommandError, match=r"No run named 'nope' \(project '"):
        call_command("compute_metrics", "--project", run.project.slug, "--run", "nope")
    with pytest.raises(CommandError, match="choose a reference set"):
        call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                     "--metrics", "fid")
    with pytest.raises(CommandError, match="expected KEY=VALUE"):
        call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                     "--option", "antialias")


def test_compute_metrics_refuses_a_clip_tag_open_clip_does_not_know_before_computing():
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(CommandError, match="clip_pretrained 'no_such_tag' is not an open_clip "
                                           "pretrained tag of ViT-B-32"):
        call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                     "--metrics", "clip_score", "--option", 'clip_pretrained="no_such_tag"',
                     "--inline", stdout=StringIO())
    assert not MetricJob.objects.exists()


def test_compute_metrics_inline_reports_a_failed_job_in_one_line(monkeypatch):
    """An error that fails the job (here a bug outside any one metric) is said as the job's
    error, not printed as a traceback; the job records it."""
    from evalhub.evaluation import compute

    def broken(**kwargs):
        raise RuntimeError("no such tensor")

    monkeypatch.setattr(compute, "shard_compute", broken)
    run = make_run(prompts=1, seeds=1)
    with pytest.raises(CommandError, match=r"Job \d+ failed: shard 0 failed: "
                                           r"RuntimeError\('no such tensor'\)"):
        call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                     "--metrics", "clip_score", "--inline", stdout=StringIO())
    assert MetricJob.objects.get(run=run).status == "failed"


def test_fetch_weights_fetches_the_clip_model_a_job_names(monkeypatch, tmp_path):
    """``--clip-model``/``--clip-pretrained`` fetch that CLIP besides the standard weights
    (here offline, from caches already holding every file: open_clip's downloader answers
    with the cached ones)."""
    import huggingface_hub.constants
    import torch

    from metrics.weights import ALEXNET_FILENAME, I3D_FILENAME, INCEPTION_FILENAME
    from tests.metrics.conftest import hf_cache_put

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in (INCEPTION_FILENAME, ALEXNET_FILENAME, I3D_FILENAME):
        torch.save({}, checkpoints / name)
    default = hf_cache_put(tmp_path / "hf", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                           "open_clip_pytorch_model.bin", b"b32")
    large = hf_cache_put(tmp_path / "hf", "timm/vit_large_patch14_clip_224.openai",
                         "open_clip_pytorch_model.bin", b"l14")
    out = StringIO()
    call_command("fetch_weights", "--clip-model", "ViT-L-14", "--clip-pretrained", "openai",
                 stdout=out)
    lines = out.getvalue().splitlines()
    assert f"open_clip:ViT-L-14/openai: {large}" in lines
    assert f"open_clip:ViT-B-32/laion2b_s34b_b79k: {default}" in lines


@pytest.mark.parametrize(("arguments", "message"), [
    (["--clip-model", "ViT-L-14", "--clip-pretrained", "nope"],
     "'nope' is not an open_clip pretrained tag of ViT-L-14 \\(its tags: "),
    (["--clip-model", "hf-hub:laion/x", "--clip-pretrained", "openai"],
     "leave --clip-pretrained out"),
])
def test_fetch_weights_refuses_a_clip_it_could_not_fetch_before_downloading(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("fetch_weights", *arguments, stdout=StringIO())


def test_fetch_weights_without_network_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    # Nothing listens on port 9: every download fails at once, as on an offline machine.
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # urllib caches a global opener built from the proxy variables on first use; restore it
    # afterwards so the dead proxy does not outlive this test.
    monkeypatch.setattr(urllib.request, "_opener", None)
    started = time.monotonic()
    with pytest.raises(CommandError) as info:
        call_command("fetch_weights", "--timeout", "5", stdout=StringIO())
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "could not download" in message and "needs internet access" in message
    assert "EVALHUB_RANDOM_WEIGHTS=1" in message


def test_an_interrupted_inline_job_says_how_to_go_on_and_the_same_command_goes_on(monkeypatch):
    """Ctrl-C during --inline leaves the job running with the shards done kept (no worker holds
    it): the command says so in one line, exit status 130, and the same command again computes
    only the shards left, in the same job."""
    import evalhub.evaluation.services as services

    run = make_run(prompts=2, seeds=2)
    command = ["compute_metrics", "--project", run.project.slug, "--run", run.name,
               "--metrics", "clip_score", "--inline", "--option", "shard_size=2"]
    computed = []
    real_shard_run = services.metric_shard_run

    def interrupted_after_one(*, shard_id):
        if computed:
            raise KeyboardInterrupt
        computed.append(shard_id)
        real_shard_run(shard_id=shard_id)

    monkeypatch.setattr(services, "metric_shard_run", interrupted_after_one)
    with pytest.raises(CommandError) as stopped:
        call_command(*command, stdout=StringIO())
    job = MetricJob.objects.get(run=run)
    assert stopped.value.returncode == 130
    assert str(stopped.value) == (
        f"Interrupted: metric job {job.pk} keeps 1 of 2 shards done. Run the same command "
        f"again to go on here, or `manage.py resume_metric_job {job.pk}` to hand the rest to "
        "the workers.")
    assert (job.status, job.shards_done) == ("running", 1)
    kept = dict(ImageMetric.objects.values_list("image_id", "created_at"))
    assert len(kept) == 2

    monkeypatch.setattr(services, "metric_shard_run", real_shard_run)
    out = StringIO()
    call_command(*command, stdout=out)
    job.refresh_from_db()
    assert job.status == "completed" and MetricJob.objects.filter(run=run).count() == 1
    now = dict(ImageMetric.objects.values_list("image_id", "created_at"))
    assert len(now) == 4
    assert {pk: now[pk] for pk in kept} == kept  # the shard done before was not computed again
    assert "clip_score" in out.getvalue()
