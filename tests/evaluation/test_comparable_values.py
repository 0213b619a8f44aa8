"""The run-level values a leaderboard or dashboard puts in one column were computed the same
way: a 64-d FID, an FID against another reference set or a KID over other subset sizes is not
shown beside the others (evaluation.selectors.run_metric_values), and each column says how its
values were computed (run_metric_table, evaluation.models.computed_with)."""

from __future__ import annotations

import pytest

from evalhub.evaluation.models import RunMetric, computed_with
from evalhub.evaluation.selectors import run_metric_table, run_metric_values
from evalhub.runs.models import ReferenceSet
from tests.factories import GenerationRunFactory

pytestmark = pytest.mark.django_db


def _value(run, metric, value, *, reference_set=None, backbone="inception-2048", **details):
    return RunMetric.objects.create(
        run=run, metric=metric, value=value, reference_set=reference_set, backbone_id=backbone,
        weights_sha256="0" * 64, calibrated=True, n_images=10, details=details)


def test_each_column_holds_values_computed_the_way_most_runs_were():
    first = GenerationRunFactory()
    runs = [first, *(GenerationRunFactory(project=first.project, checkpoint=first.checkpoint,
                                          prompt_set=first.prompt_set) for _ in range(3))]
    coco = ReferenceSet.objects.create(project=first.project, name="coco")
    small = ReferenceSet.objects.create(project=first.project, name="ten images")
    for run, value in zip(runs[:3], (2488.0, 3100.0, 6537.0), strict=True):
        _value(run, "fid", value, reference_set=coco, dim=2048)
    _value(runs[3], "fid", 54.26, reference_set=coco, backbone="inception-64", dim=64,
           rank_deficient=True)
    _value(runs[0], "kid", 0.02, reference_set=coco, subset_size_asked=1000)
    _value(runs[1], "kid", 0.05, reference_set=small, subset_size_asked=5)
    _value(runs[2], "kid", 0.03, reference_set=coco, subset_size_asked=1000)

    values = run_metric_values(run_ids=[run.pk for run in runs])
    assert [values.get(run.pk, {}).get("fid") and values[run.pk]["fid"].value
            for run in runs] == [2488.0, 3100.0, 6537.0, None]
    assert {run_id: v["kid"].value for run_id, v in values.items() if "kid" in v} == {
        runs[0].pk: 0.02, runs[2].pk: 0.03}


def test_a_run_alone_gets_its_most_recent_value():
    run = GenerationRunFactory()
    _value(run, "clip_score", 25.0, backbone="ViT-B-32")
    _value(run, "clip_score", 31.0, backbone="ViT-L-14")
    assert run_metric_values(run_ids=[run.pk])[run.pk]["clip_score"].value == 31.0



def test_values_stored_before_get_their_way_from_their_details_and_job():
    """Migration 0007: a KID stored before ``subset_size_asked`` existed takes it from its
    job's options (the default, 1000, when the job set none)."""
    from importlib import import_module

    from django.apps import apps

    from evalhub.evaluation.models import MetricJob

    run = GenerationRunFactory()
    coco = ReferenceSet.objects.create(project=run.project, name="coco")
    job = MetricJob.objects.create(project=run.project, run=run, metrics=["kid"],
                                   reference_set=coco, options={"kid_subset_size": 50})
    asked = _value(run, "kid", 0.02, reference_set=coco, subset_size=20, job=job.pk)
    default = _value(run, "kid", 0.03, reference_set=coco, backbone="inception-192",
                     subset_size=20, job=None)
    fid = _value(run, "fid", 9.0, reference_set=coco, dim=2048)
    RunMetric.objects.update(computed_as="")  # as the field's default left them

    import_module("evalhub.evaluation.migrations.0007_fill_run_metric_computed_as"
                  ).fill_computed_as(apps, None)
    for row in (asked, default, fid):
        row.refresh_from_db()
    assert (asked.computed_as, default.computed_as, fid.computed_as) == (
        "subset_size_asked=50", "subset_size_asked=1000", "dim=2048")


def test_video_values_stored_before_get_their_options_from_their_job():
    """Migration 0010: a video CLIP score, temporal consistency or flicker stored before its
    options were part of its way of computing takes them from its job (the default when the
    job set none or is gone), so that it shares a column with values computed the same way
    since and not with others."""
    from importlib import import_module

    from django.apps import apps

    from evalhub.evaluation.models import MetricJob

    run = GenerationRunFactory()
    two = MetricJob.objects.create(project=run.project, run=run, metrics=["video_clip_score"],
                                   options={"video_frames": 2, "flicker_short_side": 31})
    plain = MetricJob.objects.create(project=run.project, run=run, metrics=["flicker"],
                                     options={})
    clip = _value(run, "video_clip_score", 20.0, backbone="clip", prompts=1, job=two.pk)
    steady = _value(run, "temporal_consistency", 0.9, backbone="clip", prompts=1, job=None)
    flicker = _value(run, "flicker", 0.1, backbone="lpips", prompts=1, job=plain.pk)
    small = _value(run, "flicker", 0.2, backbone="lpips-other", prompts=1, job=two.pk)
    fid = _value(run, "fid", 9.0, dim=2048)
    RunMetric.objects.update(computed_as="")  # as stored before

    import_module("evalhub.evaluation.migrations.0010_video_metric_computed_as"
                  ).fill_video_options(apps, None)
    for row in (clip, steady, flicker, small, fid):
        row.refresh_from_db()
    assert [row.computed_as for row in (clip, steady, flicker, small, fid)] == [
        "video_frames=2", "video_frames=16", "flicker_short_side=256", "flicker_short_side=31",
        ""]
    assert clip.details == {"prompts": 1, "job": two.pk, "video_frames": 2}


def test_each_column_says_how_its_values_were_computed_and_who_was_left_out():
    first = GenerationRunFactory()
    runs = [first, *(GenerationRunFactory(project=first.project, checkpoint=first.checkpoint,
                                          prompt_set=first.prompt_set) for _ in range(2))]
    coco = ReferenceSet.objects.create(project=first.project, name="coco val")
    for run in runs[:2]:
        _value(run, "fid", 12.0, reference_set=coco, dim=2048, resize="antialias")
    _value(runs[2], "fid", 54.0, reference_set=coco, backbone="inception-64", dim=64)
    _value(runs[0], "clip_score", 30.0, backbone="open_clip:ViT-B-32/openai")

    table = run_metric_table(run_ids=[run.pk for run in runs])
    fid = table.columns["fid"]
    assert (fid.reference_set, fid.reference_set_id, fid.backbone_id, fid.computed_as) == (
        "coco val", coco.pk, "inception-2048", 'dim=2048;resize="antialias"')
    assert (fid.runs, fid.runs_other_way) == (2, 1)
    assert fid.computed_with == ("reference set “coco val” · backbone inception-2048 · "
                                 "2048-d features, antialias resize")
    value = table.values[runs[0].pk]["fid"]
    assert (value.reference_set, value.computed_as) == ("coco val", fid.computed_as)
    assert value.computed_with == fid.computed_with
    assert table.columns["clip_score"].computed_with == "backbone open_clip:ViT-B-32/openai"
    assert run_metric_values(run_ids=[run.pk for run in runs]) == table.values


@pytest.mark.parametrize(("way", "words"), [
    ("subset_size_asked=1000", "KID subsets of 1000"),
    ('estimator="reference"', "reference (V-statistic) estimator"),
    ("clip_frames=16;rank_deficient=true",
     "clips of 16 frames, rank-deficient (fewer images than feature dimensions)"),
    ("dim=64;new_setting=3", "64-d features, new_setting=3"),
    ("video_frames=16", "16 sampled frames"),
    ("flicker_short_side=256", "frames at 256 px on the shorter side"),
])
def test_a_way_of_computing_reads_in_words(way, words):
    assert computed_with(reference_set=None, backbone_id="b", computed_as=way) == (
        f"backbone b · {words}")
