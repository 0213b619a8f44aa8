"""The run commands, through call_command like a person at a terminal."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, RunStatus
from tests.factories import CheckpointFactory, GenModelFactory, PromptFactory, PromptSetFactory
from tests.runs.helpers import distinct_pngs, make_zip, make_zip_entries, manifest_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(project):
    model = GenModelFactory(project=project, name="sdxl")
    checkpoint = CheckpointFactory(model=model, name="step-5000", generator="shapes")
    prompt_set = PromptSetFactory(project=project, name="shapes")
    PromptFactory(prompt_set=prompt_set, position=0, text="a red circle")
    return project, checkpoint, prompt_set


def test_import_images_creates_the_run_from_model_checkpoint_and_prompt_set(catalog, tmp_path):
    project, _, _ = catalog
    archive = make_zip(tmp_path / "r.zip", {"a.png": distinct_pngs(1)[0],
                                             "manifest.csv": manifest_csv([("a.png",
                                                                            "a red circle", 0)])})
    out = StringIO()
    call_command("import_images", str(archive), "--project", project.slug, "--run", "r1",
                 "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set", "shapes",
                 stdout=out)
    run = GenerationRun.objects.get(name="r1")
    assert run.images.count() == 1 and "1 image imported" in out.getvalue()


def test_a_rejected_import_leaves_no_new_run_behind(catalog, tmp_path):
    project, _, _ = catalog
    archive = make_zip(tmp_path / "bad.zip", {
        "a.png": b"not a png at all",
        "manifest.csv": manifest_csv([("a.png", "a red circle", 0)])})
    with pytest.raises(CommandError, match=r"a\.png"):
        call_command("import_images", str(archive), "--project", project.slug, "--run", "r2",
                     "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set", "shapes")
    assert not GenerationRun.objects.filter(name="r2").exists()


def test_import_images_lists_the_zips_problems_with_the_manifests_in_one_answer(catalog,
                                                                                 tmp_path):
    # A zip holding dup.png twice, and a manifest naming missing.png: both said at once.
    project, _, _ = catalog
    archive = make_zip_entries(tmp_path / "dup.zip", [("dup.png", distinct_pngs(2)[0]),
                                                      ("dup.png", distinct_pngs(2)[1])])
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(manifest_csv([("dup.png", "a red circle", 0),
                                       ("missing.png", "a red circle", 1)]))
    with pytest.raises(CommandError) as refused:
        call_command("import_images", str(archive), "--project", project.slug, "--run", "imp1",
                     "--manifest", str(manifest), "--model", "sdxl", "--checkpoint",
                     "step-5000", "--prompt-set", "shapes")
    said = str(refused.value)
    assert "has 2 problems; nothing was imported." in said
    assert "dup.png: 2 entries ('dup.png', 'dup.png')" in said
    assert "manifest line 3: file 'missing.png' not found" in said
    assert not GenerationRun.objects.filter(name="imp1").exists()


def test_a_missing_run_without_what_creates_it_is_a_clear_error(catalog, tmp_path):
    project, _, _ = catalog
    with pytest.raises(CommandError, match="pass --model, --checkpoint and --prompt-set"):
        call_command("import_images", str(tmp_path), "--project", project.slug, "--run", "nope")
    with pytest.raises(CommandError,
                       match=r"No checkpoint named 'step-9' \(project '.*', model 'sdxl'\)"):
        call_command("generate", "--project", project.slug, "--run", "g", "--model", "sdxl",
                     "--checkpoint", "step-9", "--prompt-set", "shapes")


def test_generate_creates_a_generated_run_and_queues_it(catalog,
                                                        django_capture_on_commit_callbacks):
    project, _, _ = catalog
    with django_capture_on_commit_callbacks() as queued:
        call_command("generate", "--project", project.slug, "--run", "g", "--model", "sdxl",
                     "--checkpoint", "step-5000", "--prompt-set", "shapes", "--seeds", "0-2,7",
                     "--param", "quality=0.5", stdout=StringIO())
    run = GenerationRun.objects.get(name="g")
    assert (run.seeds, run.parameters, run.status) == ([0, 1, 2, 7], {"quality": 0.5},
                                                       RunStatus.QUEUED)
    assert len(queued) == 1


def test_generate_asks_for_metrics_computed_once_the_run_has_finished(
        catalog, django_capture_on_commit_callbacks):
    from evalhub.evaluation.models import JobStatus, MetricJob

    project, _, _ = catalog
    out = StringIO()
    with django_capture_on_commit_callbacks() as queued:
        call_command("generate", "--project", project.slug, "--run", "g", "--model", "sdxl",
                     "--checkpoint", "step-5000", "--prompt-set", "shapes", "--seeds", "0-1",
                     "--metrics", "clip_score,lpips_diversity", "--option", "shard_size=2",
                     stdout=out)
    run = GenerationRun.objects.get(name="g")
    job = MetricJob.objects.get(run=run)
    assert (job.status, job.metrics, job.options["shard_size"], job.shards_total) == (
        JobStatus.WAITING, ["clip_score", "lpips_diversity"], 2, 0)
    assert len(queued) == 1  # the run's batches; the job's shards wait for the run
    assert (f"Metric job {job.pk} for run 'g': clip_score, lpips_diversity; waits for the run "
            "to finish generating (0 of 2 items)") in out.getvalue()


@pytest.mark.parametrize(("extra", "message"), [
    (["--metrics", "fid"], "fid compares the run with real images: choose a reference set"),
    (["--metrics", "nope"], "nope"),
    (["--metrics", "fid", "--reference-set", "coco"], "No reference set named 'coco'"),
    (["--reference-set", "coco"], "--reference-set and --option are for --metrics"),
    (["--option", "shard_size=2"], "--reference-set and --option are for --metrics"),
])
def test_generate_with_refused_metrics_leaves_neither_run_nor_job(catalog, extra, message):
    from evalhub.evaluation.models import MetricJob

    project, _, _ = catalog
    with pytest.raises(CommandError, match=message):
        call_command("generate", "--project", project.slug, "--run", "g", "--model", "sdxl",
                     "--checkpoint", "step-5000", "--prompt-set", "shapes", *extra)
    assert not GenerationRun.objects.filter(name="g").exists()
    assert not MetricJob.objects.exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--param", "qualty=0.5"], "unknown run parameter"),
    (["--param", "quality=7"], "quality"),
    (["--seeds", "3-0"], "--seeds: the range '3-0' is empty"),
    (["--seeds=-3,0"], "Seeds are 0 to 9223372036854775807; out of range: -3"),
    (["--seeds", "99999999999999999999"], "out of range: 99999999999999999999"),
])
def test_a_refused_generate_leaves_no_run_behind_so_it_can_be_run_again(catalog, extra,
                                                                         message):
    project, _, _ = catalog
    command = ["generate", "--project", project.slug, "--run", "g", "--model", "sdxl",
               "--checkpoint", "step-5000", "--prompt-set", "shapes"]
    with pytest.raises(CommandError, match=message):
        call_command(*command, *extra)
    assert not GenerationRun.objects.filter(name="g").exists()
    call_command(*command, "--param", "quality=0.5", stdout=StringIO())
    assert GenerationRun.objects.get(name="g").parameters == {"quality": 0.5}


def test_a_run_with_nothing_to_draw_is_not_left_behind(project):
    model = GenModelFactory(project=project, name="m")
    CheckpointFactory(model=model, name="c", generator="shapes")
    PromptSetFactory(project=project, name="empty")
    with pytest.raises(CommandError, match="has no items"):
        call_command("generate", "--project", project.slug, "--run", "g", "--model", "m",
                     "--checkpoint", "c", "--prompt-set", "empty")
    assert not GenerationRun.objects.filter(name="g").exists()


def test_register_checkpoint_creates_the_model_if_new_then_adds_checkpoints(project):
    out = StringIO()
    call_command("register_checkpoint", "--project", project.slug, "--model", "sdxl-ft",
                 "--checkpoint", "step-1000", "--training-step", "1000", "--generator",
                 "shapes", "--param", "quality=0.3", "--model-description", "fine-tune",
                 stdout=out)
    checkpoint = Checkpoint.objects.get(model__project=project, name="step-1000")
    assert (checkpoint.model.name, checkpoint.model.description) == ("sdxl-ft", "fine-tune")
    assert (checkpoint.generator, checkpoint.training_step, checkpoint.parameters) == (
        "shapes", 1000, {"quality": 0.3})
    assert "Model 'sdxl-ft' (new): checkpoint 'step-1000'" in out.getvalue()
    out = StringIO()
    call_command("register_checkpoint", "--project", project.slug, "--model", "sdxl-ft",
                 "--checkpoint", "step-2000", stdout=out)
    assert out.getvalue().startswith("Model 'sdxl-ft': checkpoint 'step-2000'")
    assert Checkpoint.objects.get(name="step-2000").generator == "imported"
    assert GenModel.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(("extra", "message"), [
    (["--generator", "shaps"], "unknown generator 'shaps'; known generators: .*shapes"),
    (["--generator", "shapes", "--param", "qualty=1"], "unknown checkpoint parameter"),
])
def test_a_checkpoint_no_generation_could_use_creates_nothing(project, extra, message):
    with pytest.raises(CommandError, match=message):
        call_command("register_checkpoint", "--project", project.slug, "--model", "new-model",
                     "--checkpoint", "c", *extra)
    assert not GenModel.objects.filter(project=project).exists()


@pytest.mark.parametrize(("model", "checkpoint"), [("", "c"), ("  ", "c"), ("m", " ")])
def test_a_model_or_checkpoint_without_a_name_is_refused(project, model, checkpoint):
    with pytest.raises(CommandError, match=r"argument --(model|checkpoint): a name cannot be "
                                           r"empty"):
        call_command("register_checkpoint", "--project", project.slug, "--model", model,
                     "--checkpoint", checkpoint)
    assert not GenModel.objects.filter(project=project).exists()


@pytest.mark.parametrize(("step", "message"), [
    ("-5", "Training step -5 is negative"),
    ("99999999999999999999", "Training step 99999999999999999999 is over 9223372036854775807"),
])
def test_a_training_step_out_of_range_is_refused_and_creates_nothing(project, step, message):
    with pytest.raises(CommandError, match=message):
        call_command("register_checkpoint", "--project", project.slug, "--model", "new-model",
                     "--checkpoint", "c", "--training-step", step)
    assert not GenModel.objects.filter(project=project).exists()


def test_a_checkpoint_name_the_model_already_uses_is_refused(catalog):
    project, checkpoint, _ = catalog
    with pytest.raises(CommandError, match="already has a checkpoint named 'step-5000'"):
        call_command("register_checkpoint", "--project", project.slug, "--model", "sdxl",
                     "--checkpoint", "step-5000")
    assert Checkpoint.objects.filter(model=checkpoint.model).count() == 1


def _generate(project, run: str, *options: str) -> str:
    out = StringIO()
    call_command("generate", "--project", project.slug, "--run", run, *options, stdout=out)
    return out.getvalue()


def test_generate_on_an_existing_run_refuses_options_that_differ_from_it(catalog):
    project, checkpoint, _ = catalog
    CheckpointFactory(model=checkpoint.model, name="step-9000", generator="shapes")
    PromptSetFactory(project=project, name="other")
    _generate(project, "g", "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set",
              "shapes", "--seeds", "0-1")
    with pytest.raises(CommandError) as refused:
        _generate(project, "g", "--checkpoint", "step-9000", "--prompt-set", "other",
                  "--seeds", "0-9", "--param", "quality=0.5")
    message = str(refused.value)
    assert "\n" not in message
    assert "Run 'g' exists" in message
    assert "--checkpoint 'step-9000' (the run has 'step-5000')" in message
    assert "--prompt-set 'other' (the run has 'shapes')" in message
    assert "--seeds 0\N{EN DASH}9 (the run has 0, 1)" in message
    assert "--param quality=0.5 (the run has no parameters)" in message
    assert "--model" not in message  # not given
    run = GenerationRun.objects.get(name="g")
    assert (run.checkpoint, run.prompt_set.name, run.seeds, run.parameters) == (
        checkpoint, "shapes", [0, 1], {})


@pytest.mark.parametrize(("options", "names"), [
    (["--model", "other-model"], "--model 'other-model' (the run has 'sdxl')"),
    (["--param", "quality=0.4"], "--param quality=0.4 (the run has quality=0.5)"),
    (["--param", "quality=0.5", "--param", "width=128"],
     "--param quality=0.5 width=128 (the run has quality=0.5)"),
    (["--seeds", "0"], "--seeds 0 (the run has 0\N{EN DASH}2)"),
])
def test_each_option_that_differs_from_the_existing_run_is_named(catalog, options, names):
    project, _, _ = catalog
    _generate(project, "g", "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set",
              "shapes", "--seeds", "0-2", "--param", "quality=0.5")
    with pytest.raises(CommandError, match=f"^Run 'g' exists .*{re.escape(names)}"):
        _generate(project, "g", *options)


def test_generate_on_an_existing_run_takes_options_that_agree_or_are_left_out(
        catalog, django_capture_on_commit_callbacks):
    project, _, _ = catalog
    create = ["--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set", "shapes",
              "--seeds", "0-2", "--param", "quality=0.5"]
    _generate(project, "g", *create)
    with django_capture_on_commit_callbacks():
        assert "3 items queued" in _generate(project, "g", *create[:-4], "--seeds", "2,0-1",
                                             "--param", "quality=0.5")
        assert "3 items queued" in _generate(project, "g")
    run = GenerationRun.objects.get(name="g")
    assert (run.seeds, run.parameters) == ([0, 1, 2], {"quality": 0.5})


def test_a_param_that_draws_as_the_run_already_does_is_no_difference(
        catalog, django_capture_on_commit_callbacks):
    project, _, _ = catalog
    _generate(project, "g", "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set",
              "shapes", "--seeds", "0-1")
    with django_capture_on_commit_callbacks():  # quality 1.0 is the generator's default
        assert "2 items queued" in _generate(project, "g", "--param", "quality=1.0")
    with pytest.raises(CommandError, match=r"--param quality=0\.9 \(the run has no param"):
        _generate(project, "g", "--param", "quality=0.9")


def test_a_new_generated_run_without_seeds_has_seeds_0_to_3(catalog):
    project, _, _ = catalog
    _generate(project, "g", "--model", "sdxl", "--checkpoint", "step-5000",
              "--prompt-set", "shapes")
    assert GenerationRun.objects.get(name="g").seeds == [0, 1, 2, 3]


def test_import_images_into_an_existing_run_refuses_another_checkpoint_or_prompt_set(
        catalog, tmp_path):
    project, checkpoint, _ = catalog
    CheckpointFactory(model=checkpoint.model, name="step-9000")
    PromptSetFactory(project=project, name="other")
    archive = make_zip(tmp_path / "r.zip", {"a.png": distinct_pngs(1)[0],
                                             "manifest.csv": manifest_csv([("a.png",
                                                                            "a red circle", 0)])})
    command = ["import_images", str(archive), "--project", project.slug, "--run", "r1"]
    call_command(*command, "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set",
                 "shapes", stdout=StringIO())
    with pytest.raises(CommandError, match=r"^Run 'r1' exists .*--checkpoint 'step-9000' "
                                           r"\(the run has 'step-5000'\).*--prompt-set 'other' "
                                           r"\(the run has 'shapes'\)"):
        call_command(*command, "--model", "sdxl", "--checkpoint", "step-9000",
                     "--prompt-set", "other", "--skip-existing")
    run = GenerationRun.objects.get(name="r1")
    assert (run.checkpoint, run.images.count()) == (checkpoint, 1)
    out = StringIO()  # the same names, or none, import into it
    call_command(*command, "--model", "sdxl", "--checkpoint", "step-5000", "--skip-existing",
                 stdout=out)
    assert run.images.count() == 1
