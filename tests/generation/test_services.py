"""Generation services run in-process here; tests/integration runs them in real workers."""

import pytest
from django.db import IntegrityError

from evalhub.core.errors import EvalHubError
from evalhub.generation import services
from evalhub.generation.plan import batch_bounds
from evalhub.generation.services import generation_run_batch, generation_validate
from evalhub.runs.models import GenerationFailure, RunSource, RunStatus
from evalhub.runs.previews import PREVIEWS_TASK
from tests.factories import CheckpointFactory, GenerationRunFactory, PromptFactory
from tests.generation.plugins import PLUGINS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _test_plugins(settings):
    settings.EVALHUB_GENERATORS = PLUGINS


def _generated_run(generator: str, prompts: list[str], seeds: list[int], **params):
    run = GenerationRunFactory(
        checkpoint=CheckpointFactory(generator=generator, parameters={"quality": 1.0}
                                     if generator == "shapes" else {}),
        source=RunSource.GENERATED, seeds=seeds, parameters=params,
    )
    for position, text in enumerate(prompts):
        PromptFactory(prompt_set=run.prompt_set, text=text, position=position)
    run.items_total = len(prompts) * len(seeds)
    run.status = RunStatus.QUEUED
    run.save()
    return run


def test_batches_cover_every_item_once():
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(3, 16) == [(0, 3)]


def test_a_batch_stores_one_image_per_item_and_closes_the_run():
    run = _generated_run("shapes", ["two red circles", "a blue square"], [0, 1])
    assert generation_run_batch(run=run, start=0, stop=4) == 4
    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_failed) == (RunStatus.COMPLETED, 4, 0)
    assert {(i.prompt.text, i.seed) for i in run.images.all()} == {
        ("two red circles", 0), ("two red circles", 1), ("a blue square", 0), ("a blue square", 1)
    }
    assert run.started_at is not None and run.finished_at is not None


def test_rerunning_a_batch_skips_finished_items():
    run = _generated_run("shapes", ["two red circles"], [0, 1, 2])
    generation_run_batch(run=run, start=0, stop=2)
    assert generation_run_batch(run=run, start=0, stop=3) == 1
    assert run.images.count() == 3


def test_the_same_checkpoint_prompt_seed_and_parameters_give_the_same_bytes():
    first = _generated_run("shapes", ["three green triangles above a red star"], [5])
    second = GenerationRunFactory(checkpoint=first.checkpoint, prompt_set=first.prompt_set,
                                  source=RunSource.GENERATED, seeds=[5], items_total=1)
    generation_run_batch(run=first, start=0, stop=1)
    generation_run_batch(run=second, start=0, stop=1)
    assert first.images.get().blob_id == second.images.get().blob_id


def test_a_failing_item_is_recorded_with_its_error_and_the_rest_succeed():
    run = _generated_run("test-flaky", ["a red circle", "please fail", "a blue square"], [0])
    generation_run_batch(run=run, start=0, stop=3)
    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_failed) == (RunStatus.PARTIAL, 2, 1)
    failure = GenerationFailure.objects.get(run=run)
    assert failure.prompt.text == "please fail"
    assert "cannot draw 'please fail'" in failure.error
    generation_run_batch(run=run, start=0, stop=3)
    failure.refresh_from_db()
    assert failure.attempts == 2


def test_an_item_another_delivery_stored_meanwhile_is_skipped_quietly(monkeypatch):
    """Two deliveries of one batch race: the second's insert of an item the first stored
    between its check and its insert is refused by the unique (run, prompt, seed)."""
    run = _generated_run("shapes", ["two red circles"], [0, 1])
    generation_run_batch(run=run, start=0, stop=1)
    monkeypatch.setattr(services, "_pending", lambda run, items: list(items))  # checked early

    assert generation_run_batch(run=run, start=0, stop=2) == 1
    assert run.images.count() == 2


def test_a_row_refused_for_another_reason_is_an_error_not_a_duplicate(
        sent_tasks, django_capture_on_commit_callbacks):
    """A result the image row cannot hold (here a plugin's metadata of None: NOT NULL) is not
    "already stored": the batch stops with the error instead of losing the item, and the
    items stored before it still get their follow-up work."""
    run = _generated_run("test-no-metadata", ["a red circle", "no metadata, please"], [0])

    with pytest.raises(IntegrityError), django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=run, start=0, stop=2)

    assert [image.prompt.text for image in run.images.all()] == ["a red circle"]
    assert not GenerationFailure.objects.filter(run=run).exists()
    assert [args for name, args in sent_tasks if name == PREVIEWS_TASK] == [
        [[run.images.get().pk]]]


def test_an_unknown_generator_or_bad_parameters_are_refused_before_queueing():
    run = _generated_run("no-such-generator", ["a red circle"], [0])
    with pytest.raises(EvalHubError, match="unknown generator 'no-such-generator'"):
        generation_validate(run)
    run = _generated_run("shapes", ["a red circle"], [0], colour_depth=3)
    with pytest.raises(EvalHubError, match="unknown run parameter"):
        generation_validate(run)


def test_a_campaign_over_generating_runs_is_built_when_the_last_run_finishes(
        django_capture_on_commit_callbacks, monkeypatch):
    from evalhub.campaigns.models import CampaignStatus
    from evalhub.campaigns.services import campaign_create
    from evalhub.campaigns.tasks import build_campaign_tasks
    from evalhub.config.celery import app

    queued_builds: list[int] = []  # tasks are sent by name: record the campaign builds

    def send_task(name, args=None, **options):
        if name == "evalhub.campaigns.build_tasks":
            queued_builds.extend(args)

    monkeypatch.setattr(app, "send_task", send_task)
    first = _generated_run("shapes", ["two red circles"], [0])
    second = GenerationRunFactory(project=first.project, prompt_set=first.prompt_set,
                                  checkpoint=CheckpointFactory(
                                      model=first.checkpoint.model, generator="shapes",
                                      parameters={"quality": 0.3}),
                                  source=RunSource.GENERATED, seeds=[0], items_total=1,
                                  status=RunStatus.QUEUED)
    campaign = campaign_create(project=first.project, name="c", runs=[first, second],
                               build_now=True)
    assert campaign.status == CampaignStatus.BUILDING
    assert sorted(campaign.build_report["waiting_for_runs"]) == [first.pk, second.pk]

    with django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=first, start=0, stop=1)
    assert queued_builds == [campaign.pk]
    assert build_campaign_tasks(campaign.pk) == 0  # the worker finds it still waiting
    campaign.refresh_from_db()
    assert campaign.build_report["waiting_for_runs"] == [second.pk]

    with django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=second, start=0, stop=1)
    assert queued_builds == [campaign.pk, campaign.pk]
    assert build_campaign_tasks(campaign.pk) == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert build_campaign_tasks(campaign.pk) == 0  # a redelivered build adds nothing


def test_a_campaign_waiting_for_a_run_that_fails_outright_is_built_on_the_others(
        django_capture_on_commit_callbacks, sent_tasks):
    from evalhub.campaigns.models import CampaignStatus
    from evalhub.campaigns.services import campaign_create
    from evalhub.campaigns.tasks import build_campaign_tasks
    from evalhub.generation.tasks import generate_batch

    first = _generated_run("shapes", ["two red circles"], [0])
    second, broken = (GenerationRunFactory(
        project=first.project, prompt_set=first.prompt_set, source=RunSource.GENERATED,
        seeds=[0], items_total=1, status=RunStatus.QUEUED,
        checkpoint=CheckpointFactory(model=first.checkpoint.model, generator=generator,
                                     parameters={"quality": 0.3}))
        for generator in ("shapes", "no-such-generator"))
    campaign = campaign_create(project=first.project, name="c", runs=[first, second, broken],
                               build_now=True)
    for run in (first, second):
        with django_capture_on_commit_callbacks(execute=True):
            generation_run_batch(run=run, start=0, stop=1)
    assert build_campaign_tasks(campaign.pk) == 0  # still waiting for the broken run
    sent_tasks.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert generate_batch(broken.pk, 0, 1) == 0  # its generator cannot load: run failed
    assert ("evalhub.campaigns.build_tasks", [campaign.pk]) in sent_tasks
    assert build_campaign_tasks(campaign.pk) == 1  # the pair of the two runs with images
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert campaign.build_report["runs_without_tasks"] == [broken.pk]


def test_a_run_that_fails_outright_is_logged_as_an_error_with_its_id_and_reason(caplog):
    # A generator that cannot load (here: not installed; on a GPU host, weights missing) fails
    # the run; the task itself returns normally, so this line is what an operator sees.
    from evalhub.generation.tasks import generate_batch

    run = _generated_run("shapes", ["a red circle"], [1])
    run.checkpoint.generator = "no-such-generator"
    run.checkpoint.save()
    with caplog.at_level("ERROR", logger="evalhub.generation.services"):
        assert generate_batch(run.pk, 0, 1) == 0
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error
    (record,) = [r for r in caplog.records if r.name == "evalhub.generation.services"]
    assert record.levelname == "ERROR" and record.exc_info is None
    assert str(run.pk) in record.getMessage() and run.error in record.getMessage()
    assert record.run == run.pk
