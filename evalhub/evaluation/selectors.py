"""Reading metric values (for leaderboards, metric judges, exports, campaigns) and the rows a
metric job's steps read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import F, QuerySet

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.core.bounded import in_chunks
from evalhub.evaluation.models import (
    ImageMetric,
    MetricJob,
    MetricShard,
    PairMetric,
    ReferenceStats,
    RunMetric,
    ShardKind,
    computed_with,
)
from evalhub.runs.models import Image


@dataclass(frozen=True)
class MetricValue:
    """A stored metric value with what makes it comparable.

    ``reference_set`` (its name), ``reference_set_id`` and ``computed_as`` are set for run-level
    values (:func:`run_metric_values`); per-image and pair values have neither.
    """

    value: float
    calibrated: bool
    backbone_id: str
    std: float | None = None
    reference_set_id: int | None = None
    reference_set: str | None = None
    computed_as: str = ""

    @property
    def computed_with(self) -> str:
        """How the value was computed, in words (:func:`evaluation.models.computed_with`)."""
        return computed_with(reference_set=self.reference_set, backbone_id=self.backbone_id,
                             computed_as=self.computed_as)


@dataclass(frozen=True)
class MetricColumn:
    """How one metric's values in a table of runs were computed: every value of the column
    the same way (:func:`run_metric_table`). ``runs`` have a value computed this way;
    ``runs_other_way`` have values of the metric computed only other ways, and show none."""

    metric: str
    reference_set_id: int | None
    reference_set: str | None
    backbone_id: str
    computed_as: str
    runs: int
    runs_other_way: int

    @property
    def computed_with(self) -> str:
        """The column's way of computing, in words (:func:`evaluation.models.computed_with`)."""
        return computed_with(reference_set=self.reference_set, backbone_id=self.backbone_id,
                             computed_as=self.computed_as)


@dataclass(frozen=True)
class RunMetricTable:
    """``values``: ``{run_id: {metric: value}}``; ``columns``: ``{metric: how its values were
    computed}`` (only metrics some run has)."""

    values: dict[int, dict[str, MetricValue]]
    columns: dict[str, MetricColumn]


def _computed_like(row: RunMetric) -> tuple:
    return (row.reference_set_id, row.backbone_id, row.computed_as)


def run_metric_table(*, run_ids: Iterable[int]) -> RunMetricTable:
    """Every metric's values of the runs, comparable across them, and how each metric's were
    computed (one query).

    A run may hold several values of one metric (against other reference sets, with another
    backbone or feature layer, other KID/CMMD settings: ``RunMetric.computed_as``). Per
    metric, the way of computing it that most of the runs share is chosen (ties: the one with
    the most recent value), and each run's most recent value computed that way is returned; a
    run without one gets none for that metric rather than a value that cannot be compared
    (it is counted in the column's ``runs_other_way``).
    """
    by_way: dict[tuple[str, tuple], dict[int, RunMetric]] = {}
    rows = (RunMetric.objects.filter(run_id__in=list(run_ids))
            .annotate(reference_set_name=F("reference_set__name")).order_by("created_at"))
    for row in rows:
        by_way.setdefault((row.metric, _computed_like(row)), {})[row.run_id] = row
    chosen: dict[str, tuple[tuple, dict[int, RunMetric]]] = {}
    measured: dict[str, set[int]] = {}
    for (metric, _), rows_of_way in by_way.items():
        measured.setdefault(metric, set()).update(rows_of_way)
        rank = (len(rows_of_way), max(row.created_at for row in rows_of_way.values()))
        if metric not in chosen or rank > chosen[metric][0]:
            chosen[metric] = (rank, rows_of_way)
    values: dict[int, dict[str, MetricValue]] = {}
    columns: dict[str, MetricColumn] = {}
    for metric, (_, rows_of_way) in chosen.items():
        for run_id, row in rows_of_way.items():
            values.setdefault(run_id, {})[metric] = MetricValue(
                row.value, row.calibrated, row.backbone_id, row.std,
                reference_set_id=row.reference_set_id, reference_set=row.reference_set_name,
                computed_as=row.computed_as)
        some = next(iter(rows_of_way.values()))
        columns[metric] = MetricColumn(
            metric=metric, reference_set_id=some.reference_set_id,
            reference_set=some.reference_set_name, backbone_id=some.backbone_id,
            computed_as=some.computed_as, runs=len(rows_of_way),
            runs_other_way=len(measured[metric]) - len(rows_of_way))
    return RunMetricTable(values=values, columns=columns)


def run_metric_values(*, run_ids: Iterable[int]) -> dict[int, dict[str, MetricValue]]:
    """``{run_id: {metric: value}}``, every metric's values comparable across the runs: the
    values of :func:`run_metric_table`."""
    return run_metric_table(run_ids=run_ids).values


def image_metric_values(*, image_ids: Iterable[int] | QuerySet, metric: str,
                        backbone_id: str | None = None) -> dict[int, MetricValue]:
    """``{image_id: value}``; the most recent value when several backbones exist, unless
    ``backbone_id`` picks one.

    ``image_ids`` is a list of ids or, where they come from the database, a one-column
    queryset of them (``.values("image_a_id")``, a union...): read as a subquery, it binds no
    ids however many there are. A list is read :data:`~evalhub.core.bounded.IN_CHUNK` ids at
    a time: a finalize step or a campaign of 100,000 images would pass the database's
    bound-parameter limit. Every value of one image is in one chunk, so the most recent wins
    as in a single query.
    """
    rows = ImageMetric.objects.filter(metric=metric)
    if backbone_id is not None:
        rows = rows.filter(backbone_id=backbone_id)
    if isinstance(image_ids, QuerySet):
        parts: Iterable[QuerySet[ImageMetric]] = [rows.filter(image_id__in=image_ids)]
    else:
        parts = in_chunks(rows, "image_id", dict.fromkeys(image_ids))
    return {row.image_id: MetricValue(row.value, row.calibrated, row.backbone_id)
            for part in parts for row in part.order_by("created_at", "pk")}


def pair_metric_values(*, pairs: Iterable[tuple[int, int]], metric: str
                       ) -> dict[tuple[int, int], MetricValue]:
    pairs = list(pairs)
    ids = {i for pair in pairs for i in pair}
    rows = PairMetric.objects.filter(image_a_id__in=ids, image_b_id__in=ids, metric=metric)
    wanted = set(pairs)
    return {(r.image_a_id, r.image_b_id): MetricValue(r.value, r.calibrated, r.backbone_id)
            for r in rows if (r.image_a_id, r.image_b_id) in wanted}


# --- what a metric job's steps read ------------------------------------------------------------


def shard_images(*, shard: MetricShard) -> list[Image]:
    """A run shard's images with their blob and prompt, by prompt, seed (empty for a
    reference shard)."""
    if shard.kind != ShardKind.RUN:
        return []
    return list(Image.objects.filter(pk__in=shard.item_ids)
                .select_related("blob", "prompt", "video")
                .order_by("prompt_id", "seed", "id"))


def shard_blobs(*, shard: MetricShard) -> list[ImageBlob]:
    """A reference shard's image files, by id (use :func:`shard_images` for run shards)."""
    return list(ImageBlob.objects.filter(pk__in=shard.item_ids).order_by("id"))


def shard_videos(*, shard: MetricShard) -> list[VideoBlob]:
    """A reference shard's videos (a video reference set's: FVD), by id."""
    return list(VideoBlob.objects.filter(pk__in=shard.item_ids).order_by("id"))


def _shard_item_ids(shards: Sequence[MetricShard], kind: str) -> list[int]:
    """The item ids of the job's shards of ``kind``, each once, in ascending order.

    They are a JSON list per shard, read here rather than unnested in SQL (which differs
    between PostgreSQL and SQLite)."""
    return sorted({i for s in shards if s.kind == kind for i in s.item_ids})


def job_run_images(*, shards: Sequence[MetricShard]) -> list[Image]:
    """The run images of a job's shards with their blob, by prompt, seed.

    Read :data:`~evalhub.core.bounded.IN_CHUNK` ids at a time (a run of 100,000 images would
    pass the database's bound-parameter limit and fail the finalize step after every shard's
    work was done), then ordered here as one query would have."""
    images = [img for part in in_chunks(Image.objects.select_related("blob"), "pk",
                                        _shard_item_ids(shards, ShardKind.RUN))
              for img in part]
    return sorted(images, key=lambda img: (img.prompt_id, img.seed, img.pk))


def job_reference_shas(*, shards: Sequence[MetricShard], videos: bool = False) -> list[str]:
    """The sha256 of the reference images (``videos``: videos) of a job's shards, by id.

    Read :data:`~evalhub.core.bounded.IN_CHUNK` ids at a time, like :func:`job_run_images`;
    the ids are in ascending order, so chunks ordered by id concatenate in id order."""
    model = VideoBlob if videos else ImageBlob
    return [sha for part in in_chunks(model.objects.order_by("id"), "pk",
                                      _shard_item_ids(shards, ShardKind.REFERENCE))
            for sha in part.values_list("sha256", flat=True)]


def reference_stats_current(*, job: MetricJob, backbone_id: str) -> ReferenceStats | None:
    """The job's reference set's stored FID statistics for ``backbone_id``, if they were
    computed from exactly the images the job uses (same digest)."""
    return ReferenceStats.objects.filter(
        reference_set_id=job.reference_set_id, backbone_id=backbone_id,
        images_digest=job.reference_digest).first()
