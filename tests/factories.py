"""factory_boy factories for the domain model."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage

from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
    Outcome,
)
from evalhub.projects.models import Membership, Project, Role
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, RunSource


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32),
              mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, size, color if mode != "L" else color[0]).save(out, format="PNG")
    return out.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.SCIENTIST


class PromptSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptSet

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"prompts-{n}")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    prompt_set = factory.SubFactory(PromptSetFactory)
    position = factory.Sequence(lambda n: n)
    text = factory.Sequence(lambda n: f"a red circle number {n}")
    category = "colour"


class GenModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenModel

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"model-{n}")


class CheckpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Checkpoint

    model = factory.SubFactory(GenModelFactory)
    name = factory.Sequence(lambda n: f"step-{n}")
    training_step = factory.Sequence(lambda n: 1000 * n)


class GenerationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationRun

    checkpoint = factory.SubFactory(CheckpointFactory)
    project = factory.SelfAttribute("checkpoint.model.project")
    prompt_set = factory.SubFactory(PromptSetFactory, project=factory.SelfAttribute("..project"))
    name = factory.Sequence(lambda n: f"run-{n}")
    source = RunSource.IMPORTED


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Image

    run = factory.SubFactory(GenerationRunFactory)
    prompt = factory.SubFactory(PromptFactory, prompt_set=factory.SelfAttribute("..run.prompt_set"))
    seed = factory.Sequence(lambda n: n)
    blob = factory.Sequence(
        lambda n: blob_store_bytes(png_bytes(color=(n % 256, n // 256 % 256, 7)), name=f"{n}.png")
    )


# Campaigns. Votes written as rows (JudgmentFactory) follow the one counter rule of the voting
# service: a live human judgment on the campaign's first criterion counts once on its task.
# Tests that exercise the rules themselves vote through the service (tests.builders.cast_vote).


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"campaign-{n}")
    criteria = factory.LazyFunction(lambda: ["overall"])
    judgments_per_pair = 3
    status = CampaignStatus.ACTIVE


class ComparisonTaskFactory(factory.django.DjangoModelFactory):
    """Two images of one prompt from two runs of the campaign's project."""

    class Meta:
        model = ComparisonTask

    campaign = factory.SubFactory(CampaignFactory)
    image_a = factory.LazyAttribute(lambda o: ImageFactory(
        run=GenerationRunFactory(checkpoint__model__project=o.campaign.project)))
    image_b = factory.LazyAttribute(lambda o: ImageFactory(
        prompt=o.image_a.prompt, seed=o.image_a.seed,
        run=GenerationRunFactory(checkpoint__model=o.image_a.run.checkpoint.model,
                                 prompt_set=o.image_a.run.prompt_set)))
    prompt = factory.SelfAttribute("image_a.prompt")
    run_a = factory.SelfAttribute("image_a.run")
    run_b = factory.SelfAttribute("image_b.run")
    judgments_needed = factory.SelfAttribute("campaign.judgments_per_pair")
    shuffle_key = factory.Sequence(lambda n: (n * 0.618034) % 1.0)


class LeaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lease

    task = factory.SubFactory(ComparisonTaskFactory)
    campaign = factory.SelfAttribute("task.campaign")
    annotator = factory.SubFactory(UserFactory)
    a_side = "left"
    status = LeaseStatus.ACTIVE
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=3))


class JudgmentFactory(factory.django.DjangoModelFactory):
    """A human vote as the voting service stores it: with its completed lease and its count."""

    class Meta:
        model = Judgment

    task = factory.SubFactory(ComparisonTaskFactory)
    campaign = factory.SelfAttribute("task.campaign")
    annotator = factory.SubFactory(UserFactory)
    criterion = "overall"
    outcome = Outcome.A
    judge_kind = JudgeKind.HUMAN
    a_side = "left"
    latency_ms = 1500
    client_id = factory.LazyFunction(uuid.uuid4)
    lease = factory.LazyAttribute(lambda o: LeaseFactory(
        task=o.task, annotator=o.annotator, a_side=o.a_side, status=LeaseStatus.COMPLETED)
        if o.judge_kind == JudgeKind.HUMAN and o.annotator is not None else None)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        judgment = super()._create(model_class, *args, **kwargs)
        count_judgments([judgment])
        return judgment


def count_judgments(judgments) -> None:
    """Apply the voting service's counter rule to judgments written as rows."""
    judgments = list(judgments)
    criteria = dict(Campaign.objects.filter(pk__in={j.campaign_id for j in judgments})
                    .values_list("pk", "criteria"))
    counted: dict[int, int] = {}
    for judgment in judgments:
        first = (criteria[judgment.campaign_id] or ["overall"])[0]
        if (judgment.judge_kind == JudgeKind.HUMAN and judgment.retracted_at is None
                and judgment.criterion == first):
            counted[judgment.task_id] = counted.get(judgment.task_id, 0) + 1
    for task_id, n in counted.items():
        ComparisonTask.objects.filter(pk=task_id).update(
            judgments_count=F("judgments_count") + n)
