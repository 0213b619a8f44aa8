"""Computing metric jobs on gpu-queue workers: shards, then one finalize step.

Life of a job:

1. :func:`metric_job_create` checks the input (images exist, reference set given when needed,
   options valid), splits the run's images (and the reference set's, for FID/KID/CMMD) into
   shards and queues one task per shard.
2. :func:`metric_shard_run` (any worker, in parallel) gets each image's features through the
   database feature cache (only cache misses are computed), stores the shard's partial FID
   statistics (``GaussianStats`` sums, which merge exactly), writes per-image CLIP-scores as
   ImageMetric rows and per-prompt LPIPS diversities into the shard. A redelivered shard redoes
   only itself; every write is an upsert, so doing a shard twice changes nothing.
3. The shard that completes the job's last missing shard claims the finalize step under a row
   lock on the job (status ``running`` -> ``finalizing``, once) and runs
   :func:`metric_job_finalize`: it merges the partial statistics, reads KID/CMMD features back
   from the cache and writes RunMetric and PromptMetric rows. A metric that cannot be computed
   (e.g. too few reference images for FID) is reported in ``metric_errors`` while the others
   are still written (status ``partial``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from django.core.files.storage import default_storage
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F as DbF
from django.utils import timezone

from evalhub.blobs.models import ImageBlob
from evalhub.core.errors import EvalHubError
from evalhub.evaluation import backbones
from evalhub.evaluation.feature_cache import DatabaseFeatureCache
from evalhub.evaluation.jobs import (
    DEFAULT_OPTIONS,
    INCEPTION_METRICS,
    metric_job_fail,
)
from evalhub.evaluation.models import (
    ImageMetric,
    JobStatus,
    MetricJob,
    MetricName,
    MetricShard,
    PromptMetric,
    ReferenceStats,
    RunMetric,
    ShardKind,
    ShardStatus,
)
from evalhub.runs.models import Image
from metrics.clip_score import clip_scores
from metrics.cmmd import cmmd
from metrics.feature_cache import features_for
from metrics.gaussian import GaussianStats, InsufficientSamplesError, frechet_distance
from metrics.imageio import ImageDecodeError, decode_image
from metrics.kid import kernel_inception_distance
from metrics.weights import WeightsMissingError

logger = logging.getLogger(__name__)


# --- one shard ---------------------------------------------------------------------------------


def _read_blob(blob: ImageBlob) -> bytes:
    with default_storage.open(blob.file.name, "rb") as handle:
        return handle.read()


def _loader(blob: ImageBlob) -> Callable[[], torch.Tensor]:
    # Raw stored bytes go to the metrics decoder, which handles grey, alpha, 16-bit and EXIF.
    return lambda: decode_image(_read_blob(blob), name=f"{blob.file.name} (sha256 {blob.sha256})")


def _info_dict(backbone: Any) -> dict[str, Any]:
    return dataclasses.asdict(backbone.info)


def _reference_stats_valid(job: MetricJob, backbone_id: str) -> ReferenceStats | None:
    return ReferenceStats.objects.filter(
        reference_set_id=job.reference_set_id, backbone_id=backbone_id,
        images_digest=job.reference_digest).first()


def _lpips_group(scorer: Any, images: list[torch.Tensor]) -> float:
    """Diversity of one prompt's images; all are resized (bilinear, antialiased) to the size
    of the first (lowest seed) image, since LPIPS compares same-sized images."""
    size = tuple(images[0].shape[-2:])
    same = [img if tuple(img.shape[-2:]) == size else
            F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            for img in images]
    return scorer.diversity(torch.stack(same))


def _compute_shard(job: MetricJob, shard: MetricShard) -> tuple[bytes | None, dict, int]:
    """Features, partial statistics and per-image values of one shard.

    Returns (fid partial stats bytes, payload, number of feature vectors computed).
    """
    opts = {**DEFAULT_OPTIONS, **job.options}
    metrics = set(job.metrics)
    cache = DatabaseFeatureCache()
    payload: dict[str, Any] = {"backbones": {}}
    fid_bytes: bytes | None = None

    if shard.kind == ShardKind.RUN:
        images = list(Image.objects.filter(pk__in=shard.item_ids).select_related("blob", "prompt")
                      .order_by("prompt_id", "seed", "id"))
        blobs = [img.blob for img in images]
    else:
        images = []
        blobs = list(ImageBlob.objects.filter(pk__in=shard.item_ids).order_by("id"))
    payload["n"] = len(blobs)
    if not blobs:
        return None, payload, 0
    items = [(blob.sha256, _loader(blob)) for blob in blobs]

    if metrics & INCEPTION_METRICS:
        extractor = backbones.inception(opts)
        payload["backbones"]["inception"] = _info_dict(extractor)
        skip = (shard.kind == ShardKind.REFERENCE and "kid" not in metrics
                and _reference_stats_valid(job, extractor.backbone_id) is not None)
        if not skip:  # reference FID statistics already cached: nothing to do here
            feats = features_for(items, extractor, cache)
            if "fid" in metrics:
                fid_bytes = GaussianStats.from_features(feats).to_bytes()

    wants_clip = ("clip_score" in metrics and shard.kind == ShardKind.RUN) or "cmmd" in metrics
    if wants_clip:
        embedder = backbones.clip(opts)
        info = _info_dict(embedder)
        payload["backbones"]["clip"] = info
        emb = features_for(items, embedder, cache)
        if "clip_score" in metrics and shard.kind == ShardKind.RUN:
            texts = sorted({img.prompt.text for img in images})
            text_emb = dict(zip(texts, embedder.text_embeddings(texts), strict=True))
            scores = clip_scores(emb, np.stack([text_emb[img.prompt.text] for img in images]))
            rows = [ImageMetric(image_id=img.id, metric=MetricName.CLIP_SCORE, value=float(s),
                                **info) for img, s in zip(images, scores, strict=True)]
            ImageMetric.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["image", "metric", "backbone_id"],
                update_fields=["value", "weights_sha256", "calibrated", "library_versions",
                               "created_at"])

    if "lpips_diversity" in metrics and shard.kind == ShardKind.RUN:
        scorer = backbones.lpips(opts)
        payload["backbones"]["lpips"] = _info_dict(scorer)
        by_prompt: dict[int, list[Image]] = defaultdict(list)
        for img in images:
            by_prompt[img.prompt_id].append(img)
        diversity = {}
        for prompt_id, group in by_prompt.items():
            if len(group) >= 2:
                decoded = [_loader(img.blob)() for img in group]
                diversity[str(prompt_id)] = {"value": _lpips_group(scorer, decoded),
                                             "n": len(group)}
        payload["lpips"] = diversity
    return fid_bytes, payload, cache.stored


def metric_shard_run(*, shard_id: int) -> None:
    """Compute one shard (idempotent) and, if it completes the job, finalize the job."""
    shard = MetricShard.objects.select_related("job").filter(pk=shard_id).first()
    if shard is None:
        return
    job = shard.job
    if job.finished:
        return
    if shard.status == ShardStatus.DONE:  # a redelivery after the shard was stored
        _claim_and_finalize(job.pk)
        return
    MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.RUNNING,
                                                   attempts=DbF("attempts") + 1)
    now = timezone.now()
    MetricJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
    MetricJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    try:
        fid_bytes, payload, computed = _compute_shard(job, shard)
    except (WeightsMissingError, ImageDecodeError, EvalHubError) as exc:
        # Missing weights or an unreadable image will not heal by retrying: fail fast.
        MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.FAILED,
                                                       error=str(exc)[:5000])
        metric_job_fail(job=job, error=str(exc))
        return
    except DatabaseError:
        raise  # the task retries these
    except Exception as exc:
        logger.exception("metric job %s shard %s failed", job.pk, shard.index)
        MetricShard.objects.filter(pk=shard.pk).update(status=ShardStatus.FAILED,
                                                       error=repr(exc)[:5000])
        metric_job_fail(job=job, error=f"shard {shard.index} failed: {exc!r}")
        raise

    with transaction.atomic():
        locked = MetricJob.objects.select_for_update().get(pk=job.pk)
        if locked.finished:
            return
        MetricShard.objects.filter(pk=shard.pk).update(
            status=ShardStatus.DONE, fid_stats=fid_bytes, payload=payload,
            features_computed=computed, error="")
        done = MetricShard.objects.filter(job_id=job.pk, status=ShardStatus.DONE).count()
        fields: dict[str, Any] = {"shards_done": done}
        claimed = done >= locked.shards_total and locked.status in (JobStatus.QUEUED,
                                                                    JobStatus.RUNNING)
        if claimed:
            fields["status"] = JobStatus.FINALIZING
        MetricJob.objects.filter(pk=job.pk).update(**fields)
    if claimed:
        _finalize_or_fail(job.pk)


def _claim_and_finalize(job_id: int) -> None:
    """For redeliveries: finalize if every shard is done and nobody finished the job yet."""
    with transaction.atomic():
        job = MetricJob.objects.select_for_update().get(pk=job_id)
        done = MetricShard.objects.filter(job_id=job_id, status=ShardStatus.DONE).count()
        if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and done >= job.shards_total:
            MetricJob.objects.filter(pk=job_id).update(status=JobStatus.FINALIZING,
                                                       shards_done=done)
        elif job.status != JobStatus.FINALIZING:
            return
    _finalize_or_fail(job_id)


def _finalize_or_fail(job_id: int) -> None:
    """Finalize; a bug in it fails the job (with the error) instead of leaving it stuck."""
    try:
        metric_job_finalize(job_id=job_id)
    except OperationalError:
        raise  # transient: the task retries, the redelivered shard finalizes
    except Exception as exc:
        logger.exception("metric job %s: finalize failed", job_id)
        MetricJob.objects.filter(pk=job_id, status=JobStatus.FINALIZING).update(
            status=JobStatus.FAILED, error=f"finalize failed: {exc!r}"[:5000],
            finished_at=timezone.now())
        raise


# --- finalize ----------------------------------------------------------------------------------


class _MetricFailed(Exception):
    pass


def _one_backbone(shards: Sequence[MetricShard], name: str) -> dict[str, Any]:
    infos = {tuple(sorted((k, str(v)) for k, v in s.payload["backbones"][name].items()))
             for s in shards if name in s.payload.get("backbones", {})}
    if len(infos) != 1:
        ids = sorted({s.payload["backbones"][name]["backbone_id"] for s in shards
                      if name in s.payload.get("backbones", {})})
        raise _MetricFailed(
            f"shards were computed with different {name} backbones ({', '.join(ids)}): the "
            "workers disagree on weights (check EVALHUB_RANDOM_WEIGHTS and the weights files "
            "on every gpu worker), run the job again" if ids else f"no {name} features")
    for s in shards:
        if name in s.payload.get("backbones", {}):
            return s.payload["backbones"][name]
    raise AssertionError  # unreachable


def _features(shas: Sequence[str], backbone_id: str, what: str) -> np.ndarray:
    found = DatabaseFeatureCache().get_many(shas, backbone_id)
    missing = [s for s in dict.fromkeys(shas) if s not in found]
    if missing:
        raise _MetricFailed(f"{len(missing)} {what} feature vector(s) for {backbone_id} are "
                            "missing from the feature cache; run the job again")
    return np.stack([found[s] for s in shas])


def _provenance(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("backbone_id", "weights_sha256", "calibrated",
                                 "library_versions")}


def metric_job_finalize(*, job_id: int) -> None:
    """Merge shard results into RunMetric/PromptMetric rows; runs once per job (row lock)."""
    with transaction.atomic():
        job = (MetricJob.objects.select_for_update(of=("self",))
               .select_related("run", "reference_set").get(pk=job_id))
        if job.status != JobStatus.FINALIZING:
            return  # another delivery finalized it already
        shards = list(job.shards.order_by("index"))
        if any(s.status != ShardStatus.DONE for s in shards):
            MetricJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
            return
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for metric in job.metrics:
            try:
                with transaction.atomic():
                    results[metric] = _FINALIZERS[metric](job, shards)
            except (_MetricFailed, InsufficientSamplesError, ValueError) as exc:
                errors[metric] = str(exc)
            except DatabaseError:
                raise
            except Exception as exc:  # a bug: report it on the job, keep the other metrics
                logger.exception("metric job %s: %s failed", job.pk, metric)
                errors[metric] = f"internal error: {exc!r}"
        if errors and results:
            status = JobStatus.PARTIAL
        elif errors:
            status = JobStatus.FAILED
        else:
            status = JobStatus.COMPLETED
        MetricJob.objects.filter(pk=job.pk).update(
            status=status, results=results, metric_errors=errors,
            error="; ".join(f"{m}: {e}" for m, e in errors.items())[:5000],
            shards_done=len(shards), finished_at=timezone.now())


def _run_images(shards: Sequence[MetricShard]) -> list[Image]:
    ids = [i for s in shards if s.kind == ShardKind.RUN for i in s.item_ids]
    return list(Image.objects.filter(pk__in=ids).select_related("blob")
                .order_by("prompt_id", "seed", "id"))


def _reference_shas(shards: Sequence[MetricShard]) -> list[str]:
    ids = [i for s in shards if s.kind == ShardKind.REFERENCE for i in s.item_ids]
    return list(ImageBlob.objects.filter(pk__in=ids).order_by("id").values_list("sha256",
                                                                                 flat=True))


def _save_run_metric(job: MetricJob, metric: str, info: dict[str, Any], value: float, *,
                     n_images: int, std: float | None = None, details: dict | None = None,
                     with_reference: bool) -> dict[str, Any]:
    prov = _provenance(info)
    RunMetric.objects.update_or_create(
        run=job.run, metric=metric, backbone_id=prov["backbone_id"],
        reference_set=job.reference_set if with_reference else None,
        defaults={**prov, "value": value, "std": std, "n_images": n_images,
                  "details": {**(details or {}), "job": job.pk}},
    )
    return {"value": value, "std": std, "n_images": n_images, **prov,
            "uncalibrated": not prov["calibrated"], **({"details": details} if details else {})}


def _finalize_fid(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    info = _one_backbone(shards, "inception")
    opts = {**DEFAULT_OPTIONS, **job.options}
    run_parts = [GaussianStats.from_bytes(bytes(s.fid_stats)) for s in shards
                 if s.kind == ShardKind.RUN and s.fid_stats]
    if not run_parts:
        raise _MetricFailed("no FID statistics were stored for the run's images")
    run_stats = run_parts[0]
    for part in run_parts[1:]:
        run_stats = run_stats.merge(part)
    ref_stats = _reference_stats(job, shards, info)
    ref_name = job.reference_set.name if job.reference_set else "?"
    try:
        value = frechet_distance(ref_stats, run_stats,
                                 allow_rank_deficient=opts["fid_allow_rank_deficient"],
                                 names=("reference", "generated"))
    except InsufficientSamplesError as exc:
        raise _MetricFailed(
            f"FID not computed (reference set {ref_name!r}, run {job.run.name!r}): {exc} "
            "In a metric job that is the option fid_allow_rank_deficient=true; the option "
            "fid_feature=64/192/768 uses lower-dimensional features instead.") from exc
    details = {"n_reference": ref_stats.n, "dim": run_stats.dim,
               "resize": "antialias" if opts["antialias"] else "tf1-bilinear"}
    if run_stats.n <= run_stats.dim or ref_stats.n <= ref_stats.dim:
        details["rank_deficient"] = True
    return _save_run_metric(job, "fid", info, value, n_images=run_stats.n, details=details,
                            with_reference=True)


def _reference_stats(job: MetricJob, shards: Sequence[MetricShard],
                     info: dict[str, Any]) -> GaussianStats:
    """The reference set's FID statistics: cached per (reference set, backbone), recomputed
    (by merging the reference shards' partials, or from cached features) when stale."""
    cached = _reference_stats_valid(job, info["backbone_id"])
    if cached is not None:
        return GaussianStats.from_bytes(bytes(cached.stats))
    ref_shards = [s for s in shards if s.kind == ShardKind.REFERENCE]
    if ref_shards and all(s.fid_stats for s in ref_shards):
        parts = [GaussianStats.from_bytes(bytes(s.fid_stats)) for s in ref_shards]
        stats = parts[0]
        for part in parts[1:]:
            stats = stats.merge(part)
    else:
        stats = GaussianStats.from_features(
            _features(_reference_shas(shards), info["backbone_id"], "reference"))
    ReferenceStats.objects.update_or_create(
        reference_set=job.reference_set, backbone_id=info["backbone_id"],
        defaults={**_provenance(info), "images_digest": job.reference_digest, "n": stats.n,
                  "dim": stats.dim, "stats": stats.to_bytes()})
    return stats


def _finalize_kid(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    info = _one_backbone(shards, "inception")
    opts = {**DEFAULT_OPTIONS, **job.options}
    run_feats = _features([img.blob.sha256 for img in _run_images(shards)],
                          info["backbone_id"], "run image")
    ref_feats = _features(_reference_shas(shards), info["backbone_id"], "reference")
    result = kernel_inception_distance(ref_feats, run_feats, subsets=opts["kid_subsets"],
                                       subset_size=opts["kid_subset_size"], seed=0)
    return _save_run_metric(
        job, "kid", info, result.mean, std=result.std, n_images=len(run_feats),
        details={"subsets": result.subsets, "subset_size": result.subset_size,
                 "n_reference": len(ref_feats)}, with_reference=True)


def _finalize_cmmd(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    info = _one_backbone(shards, "clip")
    opts = {**DEFAULT_OPTIONS, **job.options}
    run_emb = _features([img.blob.sha256 for img in _run_images(shards)],
                        info["backbone_id"], "run image")
    ref_emb = _features(_reference_shas(shards), info["backbone_id"], "reference")
    value = cmmd(ref_emb, run_emb, estimator=opts["cmmd_estimator"])
    return _save_run_metric(job, "cmmd", info, value, n_images=len(run_emb),
                            details={"estimator": opts["cmmd_estimator"],
                                     "n_reference": len(ref_emb)}, with_reference=True)


def _save_prompt_metrics(job: MetricJob, metric: str, info: dict[str, Any],
                         values: dict[int, float]) -> None:
    prov = _provenance(info)
    for prompt_id, value in values.items():
        PromptMetric.objects.update_or_create(
            run=job.run, prompt_id=prompt_id, metric=metric, backbone_id=prov["backbone_id"],
            defaults={**prov, "value": value})


def _finalize_clip_score(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    info = _one_backbone([s for s in shards if s.kind == ShardKind.RUN], "clip")
    images = _run_images(shards)
    rows = dict(ImageMetric.objects.filter(
        image__in=[img.id for img in images], metric=MetricName.CLIP_SCORE,
        backbone_id=info["backbone_id"]).values_list("image_id", "value"))
    if len(rows) != len(images):
        raise _MetricFailed(f"{len(images) - len(rows)} image CLIP-scores are missing; run the "
                            "job again")
    per_prompt: dict[int, list[float]] = defaultdict(list)
    for img in images:
        per_prompt[img.prompt_id].append(rows[img.id])
    _save_prompt_metrics(job, "clip_score", info,
                         {p: float(np.mean(v)) for p, v in per_prompt.items()})
    value = float(np.mean([rows[img.id] for img in images]))
    return _save_run_metric(job, "clip_score", info, value, n_images=len(images),
                            details={"prompts": len(per_prompt)}, with_reference=False)


def _finalize_lpips(job: MetricJob, shards: Sequence[MetricShard]) -> dict[str, Any]:
    run_shards = [s for s in shards if s.kind == ShardKind.RUN]
    info = _one_backbone(run_shards, "lpips")
    per_prompt = {int(p): v for s in run_shards for p, v in s.payload.get("lpips", {}).items()}
    if not per_prompt:
        raise _MetricFailed("LPIPS diversity needs at least 2 images (seeds) of one prompt; "
                            "every prompt of this run has a single image")
    _save_prompt_metrics(job, "lpips_diversity", info,
                         {p: v["value"] for p, v in per_prompt.items()})
    value = float(np.mean([v["value"] for v in per_prompt.values()]))
    n_images = sum(v["n"] for v in per_prompt.values())
    return _save_run_metric(job, "lpips_diversity", info, value, n_images=n_images,
                            details={"prompts": len(per_prompt)}, with_reference=False)


_FINALIZERS: dict[str, Callable[[MetricJob, Sequence[MetricShard]], dict[str, Any]]] = {
    "fid": _finalize_fid,
    "kid": _finalize_kid,
    "clip_score": _finalize_clip_score,
    "cmmd": _finalize_cmmd,
    "lpips_diversity": _finalize_lpips,
}
