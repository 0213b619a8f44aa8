"""manage.py compute_metrics and fetch_weights."""

from __future__ import annotations

import time
import urllib.request
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.evaluation.models import MetricJob
from tests.evaluation.helpers import make_reference_set, make_run

pytestmark = pytest.mark.django_db


def test_compute_metrics_inline_prints_values_marked_uncalibrated():
    run = make_run(prompts=2, seeds=2)
    make_reference_set(run.project, n=5, name="real")
    out = StringIO()
    call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                 "--metrics", "fid,kid,clip_score", "--reference-set", "real", "--inline",
                 "--option", "fid_feature=64", "--option", "kid_subset_size=4", stdout=out)
    text = out.getvalue()
    assert "Job" in text and "partial" in text  # 5 reference images: no full-rank FID
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
