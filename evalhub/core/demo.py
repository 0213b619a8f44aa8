"""The demo project that `make run` seeds: shapes models whose checkpoints visibly differ, and a
small video campaign between two checkpoints of the shapes-video generator. Each run's metrics
(prompt alignment and diversity; for videos, prompt alignment and flicker) are asked for as it
is launched: the jobs wait for their runs, and the gpu worker computes them once the runs are
made (with the embedded default's random weights: marked uncalibrated), so the scientist's
pages show metrics beside the ratings the annotators add."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from evalhub.campaigns.services import campaign_create
from evalhub.evaluation.services import metric_job_create
from evalhub.generation.services import generation_launch
from evalhub.projects.models import Project, Role
from evalhub.projects.services import membership_set, project_create
from evalhub.prompts.services import prompt_set_import
from evalhub.runs.models import (
    GENERATING_RUN_STATUSES,
    Checkpoint,
    GenerationRun,
    GenModel,
    RunSource,
)
from evalhub.runs.services import run_create

DEMO_SLUG = "demo"
DEMO_PASSWORD = "evalhub-demo"
DEMO_USERS = {
    "admin": None,  # superuser
    "scientist": Role.OWNER,
    "annotator": Role.ANNOTATOR,
    "annotator2": Role.ANNOTATOR,
}
# (model, checkpoint, training step, quality): quality drives the shapes generator's mistakes.
DEMO_CHECKPOINTS = [
    ("shapes-base", "step-10k", 10_000, 0.35),
    ("shapes-base", "step-20k", 20_000, 0.55),
    ("shapes-base", "step-30k", 30_000, 0.70),
    ("shapes-large", "step-10k", 10_000, 0.50),
    ("shapes-large", "step-20k", 20_000, 0.75),
    ("shapes-large", "step-30k", 30_000, 0.95),
]
DEMO_SEEDS = [0, 1]
DEMO_CAMPAIGN = "Which checkpoint draws the prompt?"
PROMPTS_FILE = Path(settings.BASE_DIR) / "fixtures" / "prompts" / "shapes.jsonl"
# The video campaign: two shapes-video checkpoints on six motion prompts, one seed each, short
# small clips (16 frames of 128 px at 8 frames/s) so the worker makes them in seconds.
VIDEO_MODEL = "shapes-video"
VIDEO_CHECKPOINTS = [(VIDEO_MODEL, "step-5k", 5_000, 0.35), (VIDEO_MODEL, "step-50k", 50_000, 0.9)]
VIDEO_SEEDS = [0]
VIDEO_CAMPAIGN = "Which clip follows the prompt?"
VIDEO_PROMPTS_FILE = Path(settings.BASE_DIR) / "fixtures" / "prompts" / "shapes_video.jsonl"


@dataclass(frozen=True)
class DemoCampaign:
    """One demo campaign: its prompt set, the checkpoints whose runs it compares (all made by
    ``generator``, each run rendering every prompt once per seed), and the campaign itself."""

    prompt_set: str
    prompts_file: Path
    prompts_description: str
    generator: str
    checkpoints: list[tuple[str, str, int, float]]  # (model, checkpoint, step, quality)
    seeds: list[int]
    name: str
    instructions: str
    metrics: list[str]  # computed for each run once it is made


IMAGE_DEMO = DemoCampaign(
    prompt_set="shapes", prompts_file=PROMPTS_FILE,
    prompts_description="Compositional prompts: counts, colours, positions, sizes, backgrounds.",
    generator="shapes", checkpoints=DEMO_CHECKPOINTS, seeds=DEMO_SEEDS, name=DEMO_CAMPAIGN,
    instructions=("Read the prompt, then pick the image that shows it better: the "
                  "right number of shapes, the right colours, the right positions. "
                  "Use tie when both are equally good, both bad when neither is."),
    metrics=["clip_score", "lpips_diversity"],
)
VIDEO_DEMO = DemoCampaign(
    prompt_set=VIDEO_MODEL, prompts_file=VIDEO_PROMPTS_FILE,
    prompts_description="Motion prompts: shapes moving, falling, rising, spinning, bouncing.",
    generator="shapes-video", checkpoints=VIDEO_CHECKPOINTS, seeds=VIDEO_SEEDS,
    name=VIDEO_CAMPAIGN,
    instructions=("Watch both clips (they play in step), then pick the one that shows "
                  "the prompt better: the right shapes, moving the right way, steadily, "
                  "without flicker. Use tie when both are equally good, both bad when "
                  "neither is."),
    metrics=["video_clip_score", "flicker"],
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


def _demo_users() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for username, role in DEMO_USERS.items():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = role is None
            user.save()
        users[username] = user
    return users


@transaction.atomic
def demo_seed(*, generate: bool = True) -> Project:
    """Create the demo project (idempotent) and queue its runs' images for the worker."""
    users = _demo_users()
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        project = project_create(
            name="Demo: shapes", slug=DEMO_SLUG, owner=users["scientist"],
            description="Two image models with three checkpoints each, and a video model with two.")
    for username, role in DEMO_USERS.items():
        if role is not None:
            membership_set(project=project, user=users[username], role=role)
    _seed_campaign(project, IMAGE_DEMO, generate=generate)
    _seed_campaign(project, VIDEO_DEMO, generate=generate)
    return project


def _seed_campaign(project: Project, demo: DemoCampaign, *, generate: bool) -> None:
    """The demo campaign's prompt set, runs and campaign (idempotent). Runs missing images are
    queued for the worker when ``generate``, with their metric jobs (module doc); the campaign
    is built by the worker once the runs' outputs exist, and the annotators can rate right
    after."""
    prompt_set = project.prompt_sets.filter(name=demo.prompt_set).first() or prompt_set_import(
        project=project, name=demo.prompt_set, data=demo.prompts_file.read_bytes(),
        fmt="jsonl", description=demo.prompts_description,
    )
    runs = []
    for model_name, checkpoint_name, step, quality in demo.checkpoints:
        model, _ = GenModel.objects.get_or_create(project=project, name=model_name)
        checkpoint, _ = Checkpoint.objects.get_or_create(
            model=model, name=checkpoint_name,
            defaults={"training_step": step, "generator": demo.generator,
                      "parameters": {"quality": quality}},
        )
        run_name = f"{model_name}@{checkpoint_name}"
        run = GenerationRun.objects.filter(project=project, name=run_name).first()
        if run is None:
            run = run_create(checkpoint=checkpoint, prompt_set=prompt_set, name=run_name,
                             source=RunSource.GENERATED, seeds=demo.seeds)
        # A run already queued or running is being made (or was resumed at start,
        # run_embedded): launching it again would queue its batches twice.
        if generate and run.status not in GENERATING_RUN_STATUSES \
                and run.items_done < len(demo.seeds) * prompt_set.prompts.count():
            generation_launch(run=run)
        # Asked for once: a job finished at an earlier start is not computed again.
        if generate and not run.metric_jobs.exists():
            metric_job_create(run=run, metrics=demo.metrics)  # waits while the run generates
        runs.append(run)
    if not project.campaigns.filter(name=demo.name).exists():
        campaign_create(project=project, name=demo.name, runs=runs,
                        criteria=["overall", "alignment"], judgments_per_pair=2, gold_rate=0.0,
                        instructions=demo.instructions)


def demo_logins() -> list[DemoLogin]:
    return [
        DemoLogin(name, DEMO_PASSWORD, role or "superuser") for name, role in DEMO_USERS.items()
    ]
