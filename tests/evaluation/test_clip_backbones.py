"""Metric jobs with a CLIP other than the default: missing weights name the exact command that
fetches them, and a model named by its Hugging Face hub repository runs from the cache."""

from __future__ import annotations

import json

import pytest

from evalhub.evaluation import backbones
from evalhub.evaluation.models import JobStatus, RunMetric
from evalhub.evaluation.services import metric_job_create, metric_job_process_inline
from tests.evaluation.helpers import make_run
from tests.metrics.conftest import TINY_CLIP_CONFIG, hf_cache_put

pytestmark = pytest.mark.django_db


@pytest.fixture
def hf_cache(monkeypatch, tmp_path):
    """Empty torch hub and Hugging Face caches, the hub offline; backbones built afresh."""
    import huggingface_hub.constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(tmp_path / "evalhub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    backbones.clear()
    yield tmp_path / "hf"
    backbones.clear()


def test_a_job_whose_clip_weights_are_missing_names_the_command_that_fetches_them(
        hf_cache, monkeypatch):
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "0")
    run = make_run(prompts=1, seeds=1)
    job = metric_job_create(run=run, metrics=["clip_score"], enqueue=False,
                            options={"clip_model": "ViT-L-14", "clip_pretrained": "openai"})
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.FAILED
    assert ("run `python manage.py fetch_weights --clip-model ViT-L-14 --clip-pretrained "
            "openai`") in job.error


def test_a_job_with_an_hf_hub_clip_runs_on_random_weights_from_its_cached_architecture(
        hf_cache):
    hf_cache_put(hf_cache, "evalhub-test/tiny-clip", "open_clip_config.json",
                 json.dumps(TINY_CLIP_CONFIG).encode())
    run = make_run(prompts=2, seeds=1)
    job = metric_job_create(run=run, metrics=["clip_score"], enqueue=False,
                            options={"clip_model": "hf-hub:evalhub-test/tiny-clip"})
    job = metric_job_process_inline(job=job)
    assert job.status == JobStatus.COMPLETED, job.error
    row = RunMetric.objects.get(run=run, metric="clip_score")
    assert row.backbone_id == ("open_clip:hf-hub:evalhub-test/tiny-clip/"
                               "random:0+aligned+uncalibrated")
    assert not row.calibrated and 0 <= row.value <= 100
