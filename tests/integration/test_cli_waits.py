"""The commands' ``--wait`` with a real worker process: generate a run, then a campaign over it;
metrics asked for while a run is generating, computed once it is made."""

import io

import pytest
from django.core.management import call_command
from django.db import transaction

from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.evaluation.models import JobStatus, MetricJob, RunMetric
from evalhub.generation.services import generation_launch
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from evalhub.runs.services import run_create
from tests.factories import (
    CheckpointFactory,
    GenModelFactory,
    ImageFactory,
    PromptFactory,
    PromptSetFactory,
)
from tests.integration.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_generate_and_create_campaign_wait_for_the_worker(worker, project):
    model = GenModelFactory(project=project, name="m")
    CheckpointFactory(model=model, name="c", generator="shapes")
    prompt_set = PromptSetFactory(project=project, name="p")
    prompts = [PromptFactory(prompt_set=prompt_set, position=i, text=f"{i + 1} red circles")
               for i in range(2)]
    imported = GenerationRun.objects.create(
        project=project, checkpoint=CheckpointFactory(model=model, name="disk"),
        prompt_set=prompt_set, name="imported")
    for prompt in prompts:
        ImageFactory(run=imported, prompt=prompt, seed=0)

    out = io.StringIO()
    call_command("generate", "--project", project.slug, "--run", "drawn", "--model", "m",
                 "--checkpoint", "c", "--prompt-set", "p", "--seeds", "0", "--wait",
                 "--timeout", "120", stdout=out)
    assert "completed: 2 done, 0 failed." in out.getvalue(), worker.log()
    assert GenerationRun.objects.get(name="drawn").status == RunStatus.COMPLETED

    out = io.StringIO()
    call_command("create_campaign", "--project", project.slug, "--name", "drawn vs disk",
                 "--runs", "drawn", "imported", "--wait", "--timeout", "120", stdout=out)
    campaign = Campaign.objects.get(name="drawn vs disk")
    assert campaign.status == CampaignStatus.ACTIVE, worker.log()
    assert campaign.tasks.count() == 2
    assert "2 tasks built; status active." in out.getvalue()


def test_metrics_asked_for_as_a_run_is_launched_are_computed_on_all_its_images(worker, project):
    model = GenModelFactory(project=project, name="m")
    checkpoint = CheckpointFactory(model=model, name="c", generator="shapes")
    prompt_set = PromptSetFactory(project=project, name="p")
    for i in range(2):
        PromptFactory(prompt_set=prompt_set, position=i, text=f"{i + 1} blue squares")
    out = io.StringIO()
    # The batches leave when this transaction commits: the job is asked for before any image
    # is made, as a scientist's command right after `generate` on a busy cluster.
    with transaction.atomic():
        run = run_create(checkpoint=checkpoint, prompt_set=prompt_set, name="drawn",
                         source=RunSource.GENERATED, seeds=[0, 1])
        generation_launch(run=run)
        call_command("compute_metrics", "--project", project.slug, "--run", "drawn",
                     "--metrics", "clip_score,lpips_diversity", "--option", "shard_size=2",
                     stdout=out)
    job = MetricJob.objects.get(run=run)
    assert "waits for the run to finish generating (0 of 4 items)" in out.getvalue()

    def computed() -> bool:
        job.refresh_from_db()
        return job.finished

    wait_until(computed, timeout=300, what="the metric job", on_timeout=worker.log)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.images_total == 4 and job.shards_done == job.shards_total == 2
    values = RunMetric.objects.filter(run=run)
    assert sorted(values.values_list("metric", flat=True)) == ["clip_score", "lpips_diversity"]
    assert not values.filter(calibrated=True).exists()  # random weights: uncalibrated
