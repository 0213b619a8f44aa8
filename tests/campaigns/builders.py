"""A small campaign with real runs, images and members, for campaign tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from evalhub.campaigns.models import Campaign, Lease
from evalhub.campaigns.services import campaign_create
from evalhub.campaigns.serving.leasing import NothingToRate
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.projects.models import Role
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)


@dataclass
class CampaignWorld:
    campaign: Campaign
    runs: list
    prompts: list
    annotators: list
    scientist: object


def build_campaign(*, runs: int = 2, prompts: int = 3, seeds: int = 1, annotators: int = 2,
                   run_names: list[str] | None = None, **campaign_kwargs) -> CampaignWorld:
    project = ProjectFactory()
    prompt_set = PromptSetFactory(project=project)
    prompt_rows = [PromptFactory(prompt_set=prompt_set, position=i,
                                 category="counting" if i % 2 else "colour")
                   for i in range(prompts)]
    model = GenModelFactory(project=project)
    run_rows = []
    for index in range(runs):
        name = run_names[index] if run_names else f"run-{index}"
        run = GenerationRunFactory(checkpoint=CheckpointFactory(model=model),
                                   prompt_set=prompt_set, name=name)
        for prompt in prompt_rows:
            for seed in range(seeds):
                ImageFactory(run=run, prompt=prompt, seed=seed)
        run_rows.append(run)
    members = [MembershipFactory(project=project, role=Role.ANNOTATOR).user
               for _ in range(annotators)]
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    campaign = campaign_create(project=project, name="campaign", runs=run_rows, build_now=True,
                               **campaign_kwargs)
    return CampaignWorld(campaign, run_rows, prompt_rows, members, scientist)


def cast_vote(campaign: Campaign, annotator, answer: str = "left") -> Lease:
    """Lease the annotator's next task and vote on it through the rating service, as the page
    does; every criterion gets ``answer`` (displayed terms). Returns the voted lease."""
    payload = rate_next(annotator=annotator, campaign_id=campaign.pk)
    if payload.get("done"):
        raise NothingToRate(payload["detail"])
    rate_vote(annotator=annotator, campaign_id=campaign.pk,
              vote=Vote(uuid.uuid4(), uuid.UUID(payload["lease"]),
                        {criterion: answer for criterion in campaign.criteria}))
    return Lease.objects.select_related("task").get(pk=payload["lease"])
