"""Work whose task messages were lost, found and queued again.

A generation run, a metric job or a campaign's build is driven by task messages. A message can
be lost: Redis restarted without its append-only file, a worker killed in the instant between
taking a message and recording it as unacknowledged (kombu's Redis transport), a whole worker
killed while it held a task (Redis hands that one out again only after
``CELERY_VISIBILITY_TIMEOUT``, 7 h by default), the embedded default's filesystem broker, which
never hands a fetched message out again. The object then stays ``queued``, ``running`` or
``building`` with nothing to move it on.

Two ways back, one implementation (:func:`resume_work`, each object through the door an
operator would use: a run's launch, a metric job's resume, a campaign's build, all three
idempotent, so a message that did survive only costs a task that finds its work done):

* ``manage.py run_embedded`` resumes every unfinished object at start, before its one worker
  runs (nothing can be in anyone's hands then): :func:`unfinished_work`.
* In a deployment, the periodic sweep (``evalhub.core.resume_stalled_work``, run by Celery beat
  every ``EVALHUB_STALL_SWEEP_SECONDS``; also ``manage.py resume_stalled_work``) resumes the
  objects that are *stalled* (:func:`stalled_work`): unfinished, no progress for
  ``EVALHUB_STALLED_AFTER_SECONDS``, no message waiting in the queue their tasks go to, and no
  task of theirs in any worker's hands (active, reserved or scheduled, by Celery's
  inspection). A queue that holds messages may hold theirs, so its objects wait for it to
  drain; a sweep that no worker answers resumes nothing (nothing could tell what they hold).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.core.cache import cache
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from evalhub.campaigns.building.pairs import BUILD_TASK, unfinished_runs
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.evaluation.models import FINISHED_JOB_STATUSES, JobStatus, MetricJob, MetricShard
from evalhub.evaluation.services import (
    FINALIZE_JOB_TASK,
    RUN_SHARD_TASK,
    metric_job_resume,
)
from evalhub.generation.services import GENERATE_BATCH_TASK, generation_launch
from evalhub.runs.models import (
    GENERATING_RUN_STATUSES,
    GenerationFailure,
    GenerationRun,
    Image,
    RunSource,
)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Work:
    """Objects to resume, each kind in key order."""

    runs: Sequence[GenerationRun] = ()
    jobs: Sequence[MetricJob] = ()
    campaigns: Sequence[Campaign] = ()

    def __bool__(self) -> bool:
        return bool(self.runs or self.jobs or self.campaigns)


@dataclass(frozen=True)
class InHand:
    """What the broker and the workers hold now.

    ``waiting``: messages waiting per queue; ``tasks``: (task name, args) of every task a
    worker that answered holds (active, reserved, or scheduled with an ETA); ``workers``: how
    many workers answered.
    """

    waiting: Mapping[str, int]
    tasks: tuple[tuple[str, tuple], ...] = ()
    workers: int = 0

    def args_of(self, *names: str) -> set[int]:
        """The first argument (an object's key) of every held task named one of ``names``."""
        return {args[0] for name, args in self.tasks if name in names and args}


def _runs() -> QuerySet[GenerationRun]:
    return GenerationRun.objects.filter(source=RunSource.GENERATED,
                                        status__in=GENERATING_RUN_STATUSES).order_by("pk")


def _jobs() -> QuerySet[MetricJob]:
    # A job waiting for a run that is still generating is not behind: it starts when the run
    # closes (one whose start was lost, its run closed, is resumed like the others).
    return (MetricJob.objects.exclude(status__in=FINISHED_JOB_STATUSES)
            .exclude(status=JobStatus.WAITING, run__status__in=GENERATING_RUN_STATUSES)
            .select_related("run").order_by("pk"))


def _campaigns() -> QuerySet[Campaign]:
    return Campaign.objects.filter(status=CampaignStatus.BUILDING).order_by("pk")


def unfinished_work() -> Work:
    """Every generated run ``queued`` or ``running``, metric job not finished and campaign
    ``building``."""
    return Work(runs=list(_runs()), jobs=list(_jobs()), campaigns=list(_campaigns()))


def stalled_work(*, in_hand: InHand, quiet_for: timedelta, queue_of: Mapping[str, str],
                 now: datetime | None = None) -> Work:
    """The unfinished objects that nothing moves on (module doc).

    ``queue_of`` maps a task name to the queue it is routed to. An object's last progress is
    its latest timestamp: a run's creation, start, newest output or failure; a job's creation,
    start or newest shard change; a campaign's creation (its build is one short task). A
    campaign whose runs are still generating waits for them, not for a message. (A built
    campaign's missing tiles, derivatives and renditions are queued again by the rating API
    itself, ``campaigns/building/images.py``.)
    """
    if not in_hand.workers:
        return Work()
    before = (now or timezone.now()) - quiet_for

    def drained(task: str) -> bool:
        return not in_hand.waiting.get(queue_of[task], 0)

    runs: list[GenerationRun] = []
    if drained(GENERATE_BATCH_TASK):
        held = in_hand.args_of(GENERATE_BATCH_TASK)
        # Two subqueries, not two joins: joined, a run's outputs times its failures rows.
        runs = [run for run in _runs().annotate(
                    last_output=_newest(Image.objects.filter(run=OuterRef("pk")), "created_at"),
                    last_failure=_newest(GenerationFailure.objects.filter(run=OuterRef("pk")),
                                         "updated_at"))
                if run.pk not in held
                and _latest(run.created_at, run.started_at, run.last_output,
                            run.last_failure) < before]
    jobs: list[MetricJob] = []
    if drained(RUN_SHARD_TASK) and drained(FINALIZE_JOB_TASK):
        held = in_hand.args_of(FINALIZE_JOB_TASK) | set(
            MetricShard.objects.filter(pk__in=in_hand.args_of(RUN_SHARD_TASK))
            .values_list("job_id", flat=True))
        jobs = [job for job in _jobs().annotate(last_shard=Max("shards__updated_at"))
                if job.pk not in held
                and _latest(job.created_at, job.started_at, job.last_shard) < before]
    campaigns: list[Campaign] = []
    if drained(BUILD_TASK):
        held = in_hand.args_of(BUILD_TASK)
        campaigns = [c for c in _campaigns().filter(created_at__lt=before)
                     .prefetch_related("runs")
                     if c.pk not in held and not unfinished_runs(list(c.runs.all()))]
    return Work(runs=runs, jobs=jobs, campaigns=campaigns)


def _newest(rows: QuerySet, field: str) -> Subquery:
    return Subquery(rows.order_by(f"-{field}").values(field)[:1])


def _latest(*times: datetime | None) -> datetime:
    return max(t for t in times if t is not None)


@dataclass(frozen=True)
class Resumed:
    """What one object's resume did: ``kind`` (``run``, ``metric_job``, ``campaign``),
    ``done`` (queued again, or closed: a run with every item stored) and the line saying so,
    for a console or a log."""

    kind: str
    done: bool
    line: str


def resume_work(work: Work) -> list[Resumed]:
    """Queue again the work of ``work``'s objects; one :class:`Resumed` per object.

    A run goes through its launch (the API's ``launch/``: only the batches holding missing
    items, each skipping what is stored), a metric job through its resume (the API's
    ``resume/``: only the shards not done, or its finalize step), a campaign through its build
    (idempotent; a campaign whose runs are still generating keeps waiting for them). An
    object that cannot be resumed (e.g. its generator is no longer installed) gets a "Not
    resumed" line with the reason, and the others go on.
    """
    steps: list[tuple[str, str, Callable[[str], str]]] = [
        *(("run", f"generation run {run.pk} {run.name!r} ({run.status})",
           partial(_launch, run)) for run in work.runs),
        *(("metric_job", f"metric job {job.pk} of run {job.run.name!r} ({job.status})",
           partial(_resume, job)) for job in work.jobs),
        *(("campaign", f"campaign {c.pk} {c.name!r} (building)", partial(_build, c))
          for c in work.campaigns),
    ]
    outcomes = []
    for kind, was, step in steps:
        try:
            outcomes.append(Resumed(kind, True, step(was)))
        except EvalHubError as exc:
            outcomes.append(Resumed(kind, False, f"Not resumed: {was}: {exc}"))
    return outcomes


def _launch(run: GenerationRun, was: str) -> str:
    batches = generation_launch(run=run)
    return (f"Resumed {was}: {run.items_done_at_launch} of {run.items_total} items stored, "
            f"{batches} batch(es) queued." if batches else
            f"Closed {was}: every item was stored; now {run.status}.")


def _resume(job: MetricJob, was: str) -> str:
    queued = metric_job_resume(job=job)
    if job.status == JobStatus.FAILED:  # a waiting job whose start its run's outputs refused
        return f"Failed {was}: {job.error}"
    return (f"Resumed {was}: {job.shards_done} of {job.shards_total} shards done, "
            + (f"{queued} queued." if job.shards_done < job.shards_total
               else "its finalize step queued."))


def _build(campaign: Campaign, was: str) -> str:
    enqueue_on_commit(BUILD_TASK, campaign.pk)
    return f"Resumed {was}: its build queued."


def _held(replies: Iterable[Mapping[str, list] | None]) -> tuple[tuple[str, tuple], ...]:
    """(name, args) of every task in inspection replies ({worker: [task info, ...]}); a
    scheduled task's info is nested under ``request``."""
    tasks = []
    for reply in replies:
        for infos in (reply or {}).values():
            for info in infos or []:
                request = info.get("request", info)
                args = request.get("args") or ()
                tasks.append((request.get("name") or "", tuple(args)
                              if isinstance(args, list | tuple) else ()))
    return tuple(tasks)


def read_in_hand(timeout_s: float) -> InHand:
    """Ask the broker for its queues' lengths and the workers for the tasks they hold (one
    broadcast per kind of hold; each waits ``timeout_s`` for replies). Raises ``LookupError``
    (the broker's scheme) for a broker whose queue lengths are not read or whose workers do not
    answer broadcasts: only Redis does both (the embedded default's filesystem broker answers
    no broadcast; it resumes at start instead)."""
    from evalhub.config.celery import app
    from evalhub.core.health import (
        PING_TRANSPORTS,
        broker_connection,
        broker_scheme,
        configured_queues,
    )
    from evalhub.core.metrics import QUEUE_LENGTH_TRANSPORTS, queue_lengths

    if broker_scheme(app) not in PING_TRANSPORTS & QUEUE_LENGTH_TRANSPORTS:
        raise LookupError(broker_scheme(app))
    waiting = queue_lengths(configured_queues(app), timeout_s)
    with broker_connection(app, timeout_s) as conn:
        active = app.control.inspect(timeout=timeout_s, connection=conn).active() or {}
        if not active:
            return InHand(waiting=waiting)
        # The workers that answered are known now: the next two broadcasts end as soon as
        # each has answered again, instead of waiting out the timeout.
        again = app.control.inspect(timeout=timeout_s, connection=conn, limit=len(active))
        replies = [active, again.reserved(), again.scheduled()]
    workers = set().union(*(reply or {} for reply in replies))
    return InHand(waiting=waiting, tasks=_held(replies), workers=len(workers))


def task_queues() -> dict[str, str]:
    """The queue each resumable task is routed to (``CELERY_TASK_ROUTES``)."""
    from evalhub.config.celery import app

    router = app.amqp.router
    return {name: router.route({}, name)["queue"].name
            for name in (GENERATE_BATCH_TASK, RUN_SHARD_TASK, FINALIZE_JOB_TASK, BUILD_TASK)}


@dataclass(frozen=True)
class Sweep:
    """One sweep: what it saw and what its resumes did (:func:`resume_work`)."""

    in_hand: InHand
    outcomes: list[Resumed] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [outcome.line for outcome in self.outcomes]

    @property
    def resumed(self) -> int:
        """Objects queued again (or closed); an object whose resume was refused is not one."""
        return sum(outcome.done for outcome in self.outcomes)


def resume_stalled_work(*, quiet_for: timedelta, timeout_s: float = 2.0) -> Sweep:
    """Find the stalled objects and resume them (module doc); each is logged, and each one
    queued again counted (``evalhub_stalled_work_resumed_total{kind}``)."""
    from evalhub.core.metrics import LAST_SWEEP_KEY, STALLED_WORK_RESUMED

    in_hand = read_in_hand(timeout_s)
    try:
        cache.set(LAST_SWEEP_KEY, time.time(), None)
    except Exception:  # the cache down (/readyz says so): the sweep itself goes on
        logger.warning("stalled work: the sweep's time could not be written to the cache",
                       exc_info=True)
    outcomes = resume_work(stalled_work(in_hand=in_hand, quiet_for=quiet_for,
                                        queue_of=task_queues()))
    for outcome in outcomes:
        if outcome.done:
            STALLED_WORK_RESUMED.labels(outcome.kind).inc()
        logger.warning("stalled work: %s", outcome.line)
    if not in_hand.workers:
        logger.warning("stalled work: no worker answered within %g s; nothing resumed",
                       timeout_s)
    return Sweep(in_hand=in_hand, outcomes=outcomes)
