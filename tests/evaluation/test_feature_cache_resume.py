"""The database feature cache (FeatureCache protocol) and resuming a job whose messages were
lost."""

from __future__ import annotations

import numpy as np
import pytest

from evalhub.core.errors import EvalHubError
from evalhub.evaluation.feature_cache import DatabaseFeatureCache
from evalhub.evaluation.models import FeatureCacheEntry, JobStatus
from evalhub.evaluation.services import metric_job_create, metric_job_resume, metric_shard_run
from metrics.feature_cache import FeatureCache
from tests.evaluation.helpers import FAST_OPTIONS, make_run

pytestmark = pytest.mark.django_db


def test_the_database_cache_implements_the_protocol_and_round_trips_float32():
    cache = DatabaseFeatureCache()
    assert isinstance(cache, FeatureCache)
    a, b = "a" * 64, "b" * 64
    vec = np.linspace(-1, 1, 7, dtype=np.float64)
    cache.put_many({a: vec}, "backbone/x")
    cache.put_many({a: vec + 1}, "backbone/x")  # a concurrent writer: the first row stays
    got = cache.get_many([a, b], "backbone/x")
    assert list(got) == [a] and got[a].dtype == np.float32
    np.testing.assert_array_equal(got[a], vec.astype(np.float32))
    assert cache.get_many([a], "backbone/y") == {}
    assert (cache.hits, cache.misses) == (1, 2)
    assert FeatureCacheEntry.objects.get().dim == 7


def test_resume_requeues_only_the_shards_that_are_not_done(django_capture_on_commit_callbacks):
    run = make_run(prompts=3, seeds=1)
    job = metric_job_create(run=run, metrics=["clip_score"],
                            options={**FAST_OPTIONS, "shard_size": 1}, enqueue=False)
    first = job.shards.order_by("index").first()
    metric_shard_run(shard_id=first.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert metric_job_resume(job=job) == 2
    assert len(callbacks) == 2
    for shard in job.shards.exclude(pk=first.pk):
        metric_shard_run(shard_id=shard.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    with pytest.raises(EvalHubError, match="already completed"):
        metric_job_resume(job=job)
