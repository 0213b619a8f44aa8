"""The one campaign builder of the suite: real runs, images, members and a built campaign.

Campaign, export, leaderboard and browser tests build their worlds here; votes go through the
rating service (:func:`cast_vote`) or, where a test needs exact outcomes and sides, as rows with
``tests.factories.JudgmentFactory`` (the same counter rule as the service).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.test import Client

from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.models import Campaign, ComparisonTask, Lease
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


def logged_in(user) -> Client:
    """A test client signed in as ``user`` (``force_login``: no password, no login page)."""
    client = Client()
    client.force_login(user)
    return client


@dataclass
class CampaignWorld:
    campaign: Campaign
    runs: list
    prompts: list
    annotators: list
    scientist: object
    owner: object

    @property
    def annotator(self):
        return self.annotators[0]

    @property
    def tasks(self) -> list[ComparisonTask]:
        return list(self.campaign.tasks.filter(is_gold=False).order_by("prompt__position",
                                                                         "pk"))


def build_campaign(*, runs: int = 2, prompts: int = 3, seeds: int = 1, annotators: int = 2,
                   run_names: Sequence[str] | None = None, model_name: str | None = None,
                   checkpoint_names: Sequence[str] | None = None,
                   prompt_text: Callable[[int], str] | None = None,
                   source_image: Callable[[int], bytes] | None = None,
                   image_bytes: Callable[[int, int], bytes] | None = None,
                   name: str = "campaign", **campaign_kwargs) -> CampaignWorld:
    """``runs`` runs of one model answering ``prompts`` prompts (categories alternate colour /
    counting) with ``seeds`` seeds each; annotators, a scientist and an owner; the campaign built.

    ``image_bytes(prompt_index, run_index)`` gives the image files (default: small PNGs),
    ``source_image(prompt_index)`` makes editing prompts.
    """
    project = ProjectFactory()
    prompt_set = PromptSetFactory(project=project)
    prompt_rows = [
        PromptFactory(prompt_set=prompt_set, position=i,
                      category="counting" if i % 2 else "colour",
                      **({"text": prompt_text(i)} if prompt_text else {}),
                      **({"source_image": blob_store_bytes(source_image(i), name=f"src{i}.png")}
                         if source_image else {}))
        for i in range(prompts)]
    model = GenModelFactory(project=project, **({"name": model_name} if model_name else {}))
    run_rows = []
    for index in range(runs):
        checkpoint = CheckpointFactory(model=model, **(
            {"name": checkpoint_names[index]} if checkpoint_names else {}))
        run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set,
                                   name=run_names[index] if run_names else f"run-{index}")
        for p_index, prompt in enumerate(prompt_rows):
            for seed in range(seeds):
                extra = {}
                if image_bytes is not None:
                    extra["blob"] = blob_store_bytes(image_bytes(p_index, index),
                                                     name=f"{p_index}-{index}-{seed}.png")
                ImageFactory(run=run, prompt=prompt, seed=seed, **extra)
        run_rows.append(run)
    members = [MembershipFactory(project=project, role=Role.ANNOTATOR).user
               for _ in range(annotators)]
    scientist = MembershipFactory(project=project, role=Role.SCIENTIST).user
    owner = MembershipFactory(project=project, role=Role.OWNER).user
    campaign = campaign_create(project=project, name=name, runs=run_rows, build_now=True,
                               **campaign_kwargs)
    return CampaignWorld(campaign, run_rows, prompt_rows, members, scientist, owner)


def build_campaign_with_stray_run(*, runs: int = 2, name: str = "all prompts",
                                  **campaign_kwargs) -> tuple[CampaignWorld, Campaign, object]:
    """(world, campaign, stray): ``build_campaign``'s world, and a campaign "colour study" of
    its project asking only about the "colour" prompts, over its runs and one more run
    "stray" whose images are all on the "counting" prompts, so that no task shows it."""
    world = build_campaign(runs=runs, prompts=4, name=name)
    project = world.campaign.project
    stray = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=project),
                                 prompt_set=world.runs[0].prompt_set, name="stray")
    for prompt in world.prompts:
        if prompt.category == "counting":
            ImageFactory(run=stray, prompt=prompt, seed=0)
    campaign = campaign_create(project=project, name="colour study",
                               runs=[*world.runs, stray], prompt_category="colour",
                               build_now=True, **campaign_kwargs)
    campaign.refresh_from_db()
    return world, campaign, stray


def rank_every_set(world: CampaignWorld, ranking: Sequence[int] = (0, 1, 2, 3)) -> None:
    """Every annotator of a best-of-K ``world`` ranks every set it is served, slots in the
    order ``ranking`` (shown positions, best first), through the rating service."""
    for annotator in world.annotators:
        while not (task := rate_next(annotator=annotator,
                                     campaign_id=world.campaign.pk)).get("done"):
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), uuid.UUID(task["lease"]), {},
                                rankings={"overall": list(ranking)}))


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
