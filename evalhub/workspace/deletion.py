"""Deleting a workspace object (model, checkpoint, prompt set, run, reference set, campaign,
metric job).

What a delete removes is the database's rule: Django's deletion collector follows the
``on_delete`` of every foreign key, so a model takes its checkpoints, a run its images and
metric values, a campaign its tasks. What refuses a delete is also the database's rule: a
``PROTECT`` reference (a run still made from a checkpoint or a prompt set, a comparison task
still showing a run's images) refuses it, and the refusal names how many of which objects
still refer to it. On top of that, rules that no foreign key states:

- a campaign that holds human votes is never deleted (votes are the data the project exists
  for; close the campaign instead), nor one whose tasks a worker is building;
- a run a worker is generating (queued or running), or that a metric job is computing on, is
  deleted only once that work is over (the worker would store images of a missing run);
- a metric job still queued, running or finalizing is deleted only once it is over (its
  shards would store values for a missing job).

``deletion_plan`` says, without writing, what a delete would remove or why it is refused (the
confirmation page); ``object_delete`` deletes or raises :class:`StillInUse` (HTTP 409), in one
transaction. The API's DELETE calls the same (``DeletionRules`` on its viewsets).

Image and video files are content-addressed and may be shared with other runs, prompts or
reference sets: a delete notes the blobs its rows referred to and, once its transaction has
committed, queues ``evalhub.blobs.delete_unreferenced``, which deletes those that nothing
refers to any more, rows and files (original, derivatives, previews, tiles, renditions:
``blobs/services.py`` ``blobs_delete_unreferenced``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.deletion import Collector
from django.db.models.options import Options

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.services import DELETE_UNREFERENCED_TASK
from evalhub.campaigns.models import Campaign, CampaignStatus, JudgeKind, Judgment
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, ReferenceSet, RunStatus

# URL kind -> (model, label, the lookup from the object to its project's id).
KINDS: dict[str, tuple[type[models.Model], str, str]] = {
    "model": (GenModel, "model", "project_id"),
    "checkpoint": (Checkpoint, "checkpoint", "model__project_id"),
    "prompt-set": (PromptSet, "prompt set", "project_id"),
    "run": (GenerationRun, "run", "project_id"),
    "reference-set": (ReferenceSet, "reference set", "project_id"),
    "campaign": (Campaign, "campaign", "project_id"),
    "metric-job": (MetricJob, "metric job", "project_id"),
}
WORKING = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FINALIZING)


class StillInUse(EvalHubError):
    """The object is still referred to or still being worked on (409); nothing was deleted."""

    http_status = 409


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting ``obj`` removes besides ``obj`` itself: (kind of object, how many) for
    every other object deleted with it, the kind named for the number ("1 metric job",
    "3 images"), empty when nothing goes with it; the links of many-to-many fields are left out
    (the objects they link stay). ``refused``: why it
    cannot be deleted now (then nothing is removed)."""

    kind: str
    label: str
    obj: models.Model
    removes: list[tuple[str, int]]
    refused: str | None


def _kind(meta: Options, n: int) -> str:
    """'comparison task' for one, 'comparison tasks' for any other number."""
    return str(meta.verbose_name if n == 1 else meta.verbose_name_plural)


def _counted(objects: list[models.Model]) -> str:
    """'3 comparison tasks, 1 generation run': how many objects of each kind."""
    by_kind = Counter(obj._meta for obj in objects)
    return ", ".join(
        f"{n} {_kind(meta, n)}"
        for meta, n in sorted(by_kind.items(), key=lambda item: str(item[0].verbose_name)))


def _rule_refusal(obj: models.Model) -> str | None:
    """The refusals no foreign key states (module docstring), or None."""
    if isinstance(obj, Campaign):
        votes = Judgment.objects.filter(campaign=obj, judge_kind=JudgeKind.HUMAN).count()
        if votes:
            return (f"Campaign {obj.name!r} holds {votes} human vote{'s' if votes != 1 else ''}; "
                    "votes are never deleted. Close the campaign instead.")
        if obj.status == CampaignStatus.BUILDING:
            return (f"Campaign {obj.name!r} is being built by a worker; delete it once it is "
                    "built (or close it).")
    if isinstance(obj, GenerationRun):
        if obj.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            return (f"Run {obj.name!r} is {obj.status}: a worker is generating its images. "
                    "Delete it once generation is over.")
        if MetricJob.objects.filter(run=obj, status__in=WORKING).exists():
            return (f"A metric job is computing on run {obj.name!r}; delete the run once the "
                    "job is over.")
    if isinstance(obj, ReferenceSet) and MetricJob.objects.filter(
            reference_set=obj, status__in=WORKING).exists():
        # Its job would finish and store values against no reference set at all.
        return (f"A metric job is comparing a run with reference set {obj.name!r}; delete the "
                "set once the job is over.")
    if isinstance(obj, MetricJob) and obj.status in WORKING:
        return (f"Metric job #{obj.pk} is {obj.status}: a worker is computing it. Delete it "
                "once it is over (a job stuck this way can be resumed: its page, or "
                "POST .../resume/).")
    return None


def _collect(obj: models.Model) -> Collector:
    """Django's deletion collector over ``obj`` (raises ProtectedError / RestrictedError)."""
    collector = Collector(using=DEFAULT_DB_ALIAS)
    collector.collect([obj])
    return collector


def _blob_ids(collector: Collector) -> tuple[list[int], list[int]]:
    """The image and video blobs the collected rows refer to (any foreign key to a blob, on
    rows collected one by one or deleted in bulk): the blobs a delete may leave unreferenced."""
    found: dict[type[models.Model], set[int]] = {ImageBlob: set(), VideoBlob: set()}
    # The collector loads its instances with only their keys: read the blob columns in SQL.
    sources: list[models.QuerySet] = list(collector.fast_deletes)
    for model, instances in collector.data.items():
        pks = [row.pk for row in instances]
        sources += [model._base_manager.filter(pk__in=pks[k:k + 5000])
                    for k in range(0, len(pks), 5000)]
    for qs in sources:
        fields = [f for f in qs.model._meta.concrete_fields
                  if f.many_to_one and f.related_model in found]
        if not fields:
            continue
        for values in qs.values_list(*(f.attname for f in fields)):
            for field, value in zip(fields, values, strict=True):
                if value is not None:
                    found[field.related_model].add(value)
    return sorted(found[ImageBlob]), sorted(found[VideoBlob])


def deletion_plan(*, kind: str, obj: models.Model) -> DeletionPlan:
    """What deleting ``obj`` (of URL kind ``kind``) would remove, or why it is refused.

    Reads only (the deletion collector's queries)."""
    label = KINDS[kind][1]
    refused = _rule_refusal(obj)
    removes: list[tuple[str, int]] = []
    if refused is None:
        try:
            collector = _collect(obj)
        except (ProtectedError, RestrictedError) as exc:
            blockers = exc.protected_objects if isinstance(exc, ProtectedError) \
                else exc.restricted_objects
            refused = (f"The {label} {str(obj)!r} is still in use ({_counted(list(blockers))} "
                       "refer to it); delete or change those first. Nothing was deleted.")
        else:
            counts: Counter[Options] = Counter()
            for model, instances in collector.data.items():
                counts[model._meta] += len(instances)
            for qs in collector.fast_deletes:
                # The rows of a many-to-many link ("referenceset-imageblob relationships")
                # are no object anyone deletes: the images stay, only the link goes.
                if not qs.model._meta.auto_created:
                    counts[qs.model._meta] += qs.count()
            # The page names the object in its title and lists what *also* goes: the object
            # is not one of those (a run is not "1 generation run" deleted with itself).
            counts[obj._meta] -= 1
            removes = sorted((_kind(meta, n), n) for meta, n in counts.items()
                             if n and not meta.auto_created)
    return DeletionPlan(kind=kind, label=label, obj=obj, removes=removes, refused=refused)


def object_delete(*, kind: str, obj: models.Model) -> DeletionPlan:
    """Delete ``obj`` and what cascades from it, or raise StillInUse (nothing deleted).

    The rules are checked again under the object's row lock, in the delete's transaction, so a
    vote or a launch that arrives between the confirmation page and the delete is seen."""
    model = type(obj)
    with transaction.atomic():
        locked = model.objects.select_for_update().filter(pk=obj.pk).first()
        if locked is None:
            raise StillInUse(f"The {KINDS[kind][1]} was already deleted.")
        plan = deletion_plan(kind=kind, obj=locked)
        if plan.refused:
            raise StillInUse(plan.refused)
        try:
            collector = _collect(locked)
            image_ids, video_ids = _blob_ids(collector)
            collector.delete()
        except (ProtectedError, RestrictedError) as exc:  # a reference added meanwhile
            raise StillInUse(f"The {plan.label} {str(locked)!r} is still in use; nothing was "
                             "deleted.") from exc
        if image_ids or video_ids:
            # After the commit: a rolled-back delete must leave every file where it was.
            enqueue_on_commit(DELETE_UNREFERENCED_TASK, image_ids, video_ids)
    return plan


class DeletionRules:
    """For the API's viewsets: ``DELETE`` deletes through :func:`object_delete`, so the API and
    the workspace's delete page refuse the same things with the same message (409)."""

    deletion_kind: str

    def perform_destroy(self, instance: models.Model) -> None:
        object_delete(kind=self.deletion_kind, obj=instance)
