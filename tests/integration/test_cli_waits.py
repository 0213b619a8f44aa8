"""The commands' ``--wait`` with a real worker process: generate a run, then a campaign over it."""

import io

import pytest
from django.core.management import call_command

from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.runs.models import GenerationRun, RunStatus
from tests.factories import (
    CheckpointFactory,
    GenModelFactory,
    ImageFactory,
    PromptFactory,
    PromptSetFactory,
)

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
