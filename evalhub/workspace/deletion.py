"""Deleting a workspace object (model, checkpoint, prompt set, run, reference set, campaign,
metric job).

What a delete removes is the database's rule: Django's deletion collector follows the
``on_delete`` of every foreign key, so a model takes its checkpoints, a run its images and
metric values, a campaign its tasks. What refuses a delete is also the database's rule: a
``PROTECT`` reference (a run still made from a checkpoint or a prompt set, a comparison task
still showing a run's images) refuses it, and the refusal names how many of which objects
still refer to it. On top of that, rules that no foreign key states:

- a campaign that holds human votes is never deleted (votes are the data the project exists
  for; close the campaign instead), nor one whose tasks a worker is building; its votes are
  counted as its progress counts them (one per vote, however many questions it answered);
- a run that a campaign compares (``Campaign.runs``) is not taken out of it while that
  campaign is rated (active), being built, or holds votes, even when no task shows its images
  (a prompt category it has no image in): a campaign's runs must not change under its votes and
  its leaderboard, and a campaign cannot be edited. Otherwise the plan names the campaigns the
  run leaves (``DeletionPlan.campaigns``), since the collector does not count that link;
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

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import zip_longest

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models import Count, ProtectedError, Q, RestrictedError
from django.db.models.deletion import Collector
from django.db.models.options import Options

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.services import DELETE_UNREFERENCED_TASK
from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    TaskImage,
)
from evalhub.campaigns.selectors import HumanVotes, human_votes
from evalhub.core.bounded import chunked, in_chunks
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.core.text import counted
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import (
    GENERATING_RUN_STATUSES,
    Checkpoint,
    GenerationRun,
    GenModel,
    ReferenceSet,
)

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
    (the objects they link stay). ``campaigns``: for a run, the campaigns it is taken out of
    ("colour study (closed, 0 human votes)"), the one such link a page must name, since a
    campaign's runs are what its votes compare. ``refused``: why it cannot be deleted now (then
    nothing is removed)."""

    kind: str
    label: str
    obj: models.Model
    removes: list[tuple[str, int]]
    refused: str | None
    campaigns: list[str] = dataclass_field(default_factory=list)


def _kind(meta: Options, n: int) -> str:
    """'comparison task' for one, 'comparison tasks' for any other number."""
    return str(meta.verbose_name if n == 1 else meta.verbose_name_plural)


def _counted(objects: list[models.Model]) -> str:
    """'3 comparison tasks, 1 generation run': how many objects of each kind."""
    by_kind = Counter(obj._meta for obj in objects)
    return ", ".join(
        f"{n} {_kind(meta, n)}"
        for meta, n in sorted(by_kind.items(), key=lambda item: str(item[0].verbose_name)))


def _held(votes: HumanVotes) -> bool:
    """Whether the campaign holds what an annotator did: a live vote, or one undone."""
    return bool(votes.votes or votes.retracted)


def _vote_words(votes: HumanVotes) -> str:
    """ "3 human votes", or "no live human vote but 2 retracted ones"."""
    if votes.votes or not votes.retracted:
        return counted(votes.votes, "human vote")
    return f"no live human vote but {counted(votes.retracted, 'retracted one')}"


def _run_campaigns(run: GenerationRun) -> list[tuple[Campaign, HumanVotes]]:
    """The campaigns that compare ``run`` (``Campaign.runs``), by name, with their votes and,
    as ``shown``, how many of their tasks show its images (three queries)."""
    campaigns = list(Campaign.objects.filter(runs=run).order_by("name", "pk"))
    ids = [campaign.pk for campaign in campaigns]
    votes = human_votes(campaign_ids=ids)
    shown = dict(ComparisonTask.objects.filter(campaign_id__in=ids).filter(
        Q(run_a=run) | Q(run_b=run) | Q(members__run=run)).order_by().values("campaign_id")
        .annotate(n=Count("id", distinct=True)).values_list("campaign_id", "n"))
    for campaign in campaigns:
        campaign.shown = shown.get(campaign.pk, 0)
    return [(campaign, votes.get(campaign.pk, HumanVotes())) for campaign in campaigns]


def _campaign_words(campaign: Campaign, votes: HumanVotes, *, quoted: bool = False) -> str:
    """"colour study (closed, 0 human votes)", with the tasks that show the run's images."""
    tasks = (f", {counted(campaign.shown, 'comparison task')} "
             f"show{'s' if campaign.shown == 1 else ''} its images" if campaign.shown else "")
    name = repr(campaign.name) if quoted else campaign.name
    return f"{name} ({campaign.status}, {_vote_words(votes)}{tasks})"


def _run_in_campaigns_refusal(run: GenerationRun,
                              campaigns: list[tuple[Campaign, HumanVotes]]) -> str | None:
    """Why ``run`` cannot leave the campaigns that compare it (module docstring), or None."""
    held = [(c, v) for c, v in campaigns if c.status != CampaignStatus.FAILED and (
        _held(v) or c.status in (CampaignStatus.ACTIVE, CampaignStatus.BUILDING))]
    if not held:
        return None
    named = "; ".join(_campaign_words(c, v, quoted=True) for c, v in held)
    words = (f"Run {run.name!r} is one of the runs compared by "
             f"campaign{'s' if len(held) > 1 else ''} {named}. A campaign's runs cannot change "
             "while it is rated or once it holds votes, and a campaign cannot be edited.")
    voted = [c.name for c, v in held if _held(v)]
    unvoted = [c.name for c, v in held if not _held(v)]
    if voted:
        # Never deleted (the campaign rule above): say so rather than promise a way out.
        words += (f" A campaign that holds votes is never deleted, so the run stays as long as "
                  f"{', '.join(map(repr, voted))} {'do' if len(voted) > 1 else 'does'}.")
    if unvoted:
        words += (f" To delete the run, close and delete the campaign "
                  f"{', '.join(map(repr, unvoted))} first "
                  f"({'it holds' if len(unvoted) == 1 else 'they hold'} no votes).")
    return words + " Nothing was deleted."


def _rule_refusal(obj: models.Model, run_campaigns: list[tuple[Campaign, HumanVotes]]
                  ) -> str | None:
    """The refusals no foreign key states (module docstring), or None. ``run_campaigns``: a
    run's campaigns (:func:`_run_campaigns`), read once for the refusal and the plan."""
    if isinstance(obj, Campaign):
        votes = human_votes(campaign_ids=[obj.pk]).get(obj.pk, HumanVotes())
        if _held(votes):
            return (f"Campaign {obj.name!r} holds {_vote_words(votes)}; votes are never deleted. "
                    "Close the campaign instead.")
        if obj.status == CampaignStatus.BUILDING:
            return (f"Campaign {obj.name!r} is being built by a worker; delete it once it is "
                    "built (or close it).")
    if isinstance(obj, GenerationRun):
        if obj.status in GENERATING_RUN_STATUSES:
            return (f"Run {obj.name!r} is {obj.status}: a worker is generating its images. "
                    "Delete it once generation is over.")
        if MetricJob.objects.filter(run=obj, status__in=WORKING).exists():
            return (f"A metric job is computing on run {obj.name!r}; delete the run once the "
                    "job is over.")
        return _run_in_campaigns_refusal(obj, run_campaigns)
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


def _in_use(label: str, obj: models.Model, blockers: list[models.Model]) -> str:
    """The refusal of a delete that a PROTECT or RESTRICT reference blocks, naming what refers
    to the object and what can be done about each: a comparison task (or a best-of-K task's
    member) can be neither deleted nor changed on its own, only with its campaign."""
    tasks = [b for b in blockers if isinstance(b, ComparisonTask | TaskImage)]
    others = [b for b in blockers if not isinstance(b, ComparisonTask | TaskImage)]
    refer = "refers" if len(blockers) == 1 else "refer"
    steps = []
    if others:
        steps.append(f"delete or change {'that one' if len(others) == 1 else 'those'} first"
                     if not tasks else f"delete or change the {_counted(others)} first")
    if tasks:
        # The collector loads the blocking rows with their keys only: read the campaigns in
        # SQL (an attribute read would be a query per row).
        campaign_ids: set[int] = set()
        for lookup, model in (("pk", ComparisonTask), ("members", TaskImage)):
            for chunk in in_chunks(ComparisonTask.objects.order_by(), lookup,
                                   [b.pk for b in tasks if isinstance(b, model)]):
                campaign_ids |= set(chunk.values_list("campaign_id", flat=True).distinct())
        steps.append(_tasks_go_with_their_campaign(Campaign.objects.filter(
            pk__in=campaign_ids).order_by("name").values_list("name", flat=True)))
    return (f"The {label} {str(obj)!r} is still in use ({_counted(blockers)} {refer} to it); "
            f"{'; '.join(steps)}. Nothing was deleted.")


def _tasks_go_with_their_campaign(names: Iterable[str]) -> str:
    return (f"comparison tasks go only with their campaign: delete the campaign "
            f"{', '.join(map(repr, names))} first (one that holds votes is never deleted)")


def _shown_by_tasks(label: str, run: GenerationRun,
                    run_campaigns: list[tuple[Campaign, HumanVotes]]) -> str | None:
    """The refusal of :func:`_in_use` for a run whose images tasks of its campaigns show, read
    from the campaigns' counts (:func:`_run_campaigns`) instead of from the collector, which
    loads every blocking task first (4-8 s at 100,000 tasks). A task that shows the run outside
    its campaigns' runs is still found by the collector."""
    showing = sorted((c for c, _ in run_campaigns if c.shown), key=lambda c: (c.name, c.pk))
    if not showing:
        return None
    shown = sum(c.shown for c in showing)
    return (f"The {label} {str(run)!r} is still in use "
            f"({counted(shown, 'comparison task')} show{'s' if shown == 1 else ''} its "
            f"images); {_tasks_go_with_their_campaign(c.name for c in showing)}. Nothing was "
            "deleted.")


class _BoundedCollector(Collector):
    """Django's deletion collector, its queries kept under the bound-parameter limit and off
    long key lists.

    Django asks for the rows related to the collected rows with an ``IN`` list of all their
    keys per relation (unbounded on PostgreSQL: past 65,535 rows, a run of 100,000 images or a
    campaign of 100,000 tasks, the query fails), and every such list costs its length in
    parsing, on Django's side and psycopg's. Here rows collected from a query are followed by
    that query as a subquery (``image_id IN (SELECT id FROM runs_image WHERE run_id = ...)``);
    only the object deleted itself is named by key. The query may name rows collected before by
    another path (a judgment reached by its task and by its lease): their related rows are
    found twice, collected once (the collector keeps a set per model) or deleted twice (the
    second time none is left). Collected rows themselves are deleted as Django deletes them,
    100 keys per statement."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The rows of the collect() calls under way, innermost last: what their related rows
        # are looked up by.
        self._following: list[object] = []
        #: Queries whose rows, together, are the rows collected one by one (``data``).
        self.sources: list[models.QuerySet] = []

    def add(self, objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(objs, models.QuerySet):
            self.sources.append(objs.order_by())
        elif objs:
            model = type(objs[0])
            self.sources += in_chunks(model._base_manager.all(), "pk", [obj.pk for obj in objs])
        return super().add(objs, *args, **kwargs)

    def collect(self, objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._following.append(objs)
        try:
            return super().collect(objs, *args, **kwargs)
        finally:
            self._following.pop()

    def get_del_batches(self, objs, fields):  # type: ignore[no-untyped-def]
        source = self._following[-1] if self._following else None
        if (isinstance(source, models.QuerySet) and objs and source.model is type(objs[0])
                and all(field.target_field.primary_key for field in fields)):
            return [source.order_by()]
        return list(chunked(objs)) or [objs]


def _collect(obj: models.Model) -> _BoundedCollector:
    """Django's deletion collector over ``obj``, its queries bounded (raises ProtectedError /
    RestrictedError)."""
    collector = _BoundedCollector(using=DEFAULT_DB_ALIAS)
    collector.collect([obj])
    return collector


def _blob_ids(collector: _BoundedCollector) -> tuple[list[int], list[int]]:
    """The image and video blobs the collected rows refer to (any foreign key to a blob, on
    rows collected one by one or deleted in bulk): the blobs a delete may leave unreferenced."""
    found: dict[type[models.Model], set[int]] = {ImageBlob: set(), VideoBlob: set()}
    # The collector loads its instances with only their keys: read the blob columns in SQL.
    for qs in [*collector.fast_deletes, *collector.sources]:
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
    run_campaigns = _run_campaigns(obj) if isinstance(obj, GenerationRun) else []
    refused = _rule_refusal(obj, run_campaigns)
    if refused is None and isinstance(obj, GenerationRun):
        refused = _shown_by_tasks(label, obj, run_campaigns)
    removes: list[tuple[str, int]] = []
    if refused is None:
        try:
            collector = _collect(obj)
        except (ProtectedError, RestrictedError) as exc:
            blockers = exc.protected_objects if isinstance(exc, ProtectedError) \
                else exc.restricted_objects
            refused = _in_use(label, obj, list(blockers))
        else:
            # By key: a row reached two ways (a judgment by its task and by its lease) is
            # deleted once and counted once.
            keys: dict[Options, set[object]] = defaultdict(set)
            for model, instances in collector.data.items():
                keys[model._meta].update(row.pk for row in instances)
            for qs in collector.fast_deletes:
                # The rows of a many-to-many link ("referenceset-imageblob relationships")
                # are no object anyone deletes: the images stay, only the link goes.
                if not qs.model._meta.auto_created:
                    keys[qs.model._meta].update(qs.values_list("pk", flat=True))
            counts = Counter({meta: len(pks) for meta, pks in keys.items()})
            # The page names the object in its title and lists what *also* goes: the object
            # is not one of those (a run is not "1 generation run" deleted with itself).
            counts[obj._meta] -= 1
            removes = sorted((_kind(meta, n), n) for meta, n in counts.items()
                             if n and not meta.auto_created)
    # The one many-to-many link a page names: the campaigns a run leaves (their votes compare
    # it; the rule above refused when any of them may not lose it).
    campaigns = [_campaign_words(c, v) for c, v in run_campaigns] if refused is None else []
    return DeletionPlan(kind=kind, label=label, obj=obj, removes=removes, refused=refused,
                        campaigns=campaigns)


def object_delete(*, kind: str, obj: models.Model) -> DeletionPlan:
    """Delete ``obj`` and what cascades from it, or raise StillInUse (nothing deleted).

    The rules are checked again under the object's row lock, in the delete's transaction, so a
    vote or a launch that arrives between the confirmation page and the delete is seen."""
    model = type(obj)
    with transaction.atomic():
        if isinstance(obj, Campaign):
            # The rating path locks a task, then refers to its campaign (a lease's or a vote's
            # foreign key takes a key-share lock on the campaign's row): locking the campaign
            # before its tasks, as the delete would, deadlocked with a lease taken meanwhile.
            # Its tasks first, in one order.
            list(ComparisonTask.objects.select_for_update().filter(campaign_id=obj.pk)
                 .order_by("pk").values_list("pk", flat=True))
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
        # After the commit: a rolled-back delete must leave every file where it was. One
        # message per chunk of ids, so that none carries a run's 100,000 blobs.
        for images, videos in zip_longest(chunked(image_ids), chunked(video_ids),
                                          fillvalue=[]):
            enqueue_on_commit(DELETE_UNREFERENCED_TASK, images, videos)
    return plan


class DeletionRules:
    """For the API's viewsets: ``DELETE`` deletes through :func:`object_delete`, so the API and
    the workspace's delete page refuse the same things with the same message (409)."""

    deletion_kind: str

    def perform_destroy(self, instance: models.Model) -> None:
        object_delete(kind=self.deletion_kind, obj=instance)
