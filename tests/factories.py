"""factory_boy factories for the domain model."""

from __future__ import annotations

import io

import factory
from django.contrib.auth import get_user_model
from PIL import Image as PILImage

from evalhub.blobs.services import blob_store_bytes
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
