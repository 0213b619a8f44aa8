"""Campaign lifecycle: create a campaign (its tasks are built by a worker), rename it or reword
its instructions, and change its status.

Serving and voting live in ``serving/``, task building in ``building/``, quality control in
``quality/``; this module is what the scientist API, the CLI and the demo call to set a campaign
up.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from evalhub.campaigns.building.pairs import BUILD_TASK, campaign_build_tasks
from evalhub.campaigns.models import (
    DEFAULT_LEASE_SECONDS,
    MAX_K,
    MAX_LEASE_SECONDS,
    MAX_LPIPS_DISTANCE,
    MIN_K,
    MIN_LEASE_SECONDS,
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Criterion,
    Lease,
    LeaseStatus,
    PairPolicy,
    TaskKind,
)
from evalhub.core.errors import EvalHubError, InvalidFields, NameTaken
from evalhub.core.queueing import enqueue_on_commit
from evalhub.projects.models import Membership, Project
from evalhub.projects.references import check_same_project
from evalhub.prompts.selectors import prompt_set_categories
from evalhub.runs.models import GenerationRun, MediaKind


def _validate(*, runs: Sequence[GenerationRun], criteria: Sequence[str], gold_rate: float,
              judgments_per_pair: int, project: Project) -> list[str]:
    if len({run.pk for run in runs}) != len(runs):
        raise EvalHubError("A campaign lists each run once.")
    if len(runs) < 2:
        raise EvalHubError("A campaign compares at least two runs.")
    check_same_project(project.id, runs=runs)
    if len({run.prompt_set_id for run in runs}) != 1:
        raise EvalHubError("The runs of a campaign must share one prompt set "
                           "(pairs are formed on the same prompt).")
    _check_one_medium(runs)
    criteria = list(dict.fromkeys(criteria or [Criterion.OVERALL]))
    unknown = [c for c in criteria if c not in Criterion.values]
    if unknown:
        raise EvalHubError(f"Unknown criteria {unknown}; expected some of {Criterion.values}.")
    if Criterion.OVERALL not in criteria:
        criteria.insert(0, Criterion.OVERALL)
    if not 0 <= gold_rate <= 0.5:
        raise EvalHubError("gold_rate must be between 0 and 0.5.")
    if not 1 <= judgments_per_pair <= 50:
        raise EvalHubError("judgments_per_pair must be between 1 and 50.")
    return criteria


# How many of a prompt set's categories the refusal of an unknown one lists.
CATEGORIES_LISTED = 20


def check_prompt_category(*, runs: Sequence[GenerationRun], category: str) -> None:
    """Refuse a ``category`` (the campaign's prompt filter; empty: every prompt) that no prompt
    of the runs' prompt set has, under the field ``prompt_category``, naming the categories
    the set has (the first :data:`CATEGORIES_LISTED`).

    Why here and not only in the page's form: the API and the command took any text, stored
    the campaign, and its build then failed on "no images on common prompts" without a word
    about the category (``Café`` for ``café``), the campaign's name taken. The form's choices
    are every category of the project, so it needs this too. Exact match, as the build
    filters. Runs of one prompt set (checked before)."""
    if not category:
        return
    prompt_set_id = runs[0].prompt_set_id
    categories = prompt_set_categories([prompt_set_id])[prompt_set_id]
    if category in categories:
        return
    if not categories:
        known = "its prompts have no category"
    else:
        listed = ", ".join(map(repr, categories[:CATEGORIES_LISTED]))
        more = (f" (the first {CATEGORIES_LISTED} of {len(categories)})"
                if len(categories) > CATEGORIES_LISTED else "")
        known = f"its categories: {listed}{more}"
    raise InvalidFields({"prompt_category": [
        f"No prompt of the runs' prompt set has the category {category!r}; {known}."]})


def _check_one_medium(runs: Sequence[GenerationRun]) -> None:
    """Refuse runs of images mixed with runs of videos: an annotator would compare a still
    with a clip (a different question), and exports, metrics and the rating page each
    assume one medium per campaign. Names the runs of each kind (the creator's own runs)."""
    kinds: dict[str, list[str]] = {}
    for run in runs:
        kinds.setdefault(run.media_kind, []).append(run.name)
    if len(kinds) > 1:
        videos = ", ".join(sorted(kinds.get(MediaKind.VIDEO, [])))
        images = ", ".join(sorted(name for kind, names in kinds.items()
                                  if kind != MediaKind.VIDEO for name in names))
        raise EvalHubError("A campaign's runs must be all image runs or all video runs; "
                           f"video runs: {videos}; image runs: {images}.")


def _validate_kind(*, task_kind: str, k: int | None, rank_all: bool, runs: Sequence,
                   criteria: list[str],
                   gold_rate: float, pair_policy: str, min_lpips_distance: float | None
                   ) -> int:
    """The campaign's images per task: 2 for pairs, ``k`` (3..6, at most the runs) for best
    of K. Best of K has no gold tasks, no LPIPS filter and no active policy (they are pairwise
    notions). Every problem is refused at once, under its field (:class:`InvalidFields`)."""
    if task_kind not in TaskKind.values:
        raise EvalHubError(f"Unknown task kind {task_kind!r}; expected one of {TaskKind.values}.")
    problems: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if task_kind == TaskKind.PAIR:
        if rank_all:
            refuse("rank_all", "Ranking all images (rank_all) is for best-of-K tasks only.")
        if k not in (None, 2):
            refuse("k", "A pair task shows 2 images: choose best of K (task_kind best_of_k) "
                        "for more.")
    else:
        if k is None or not MIN_K <= k <= MAX_K:
            refuse("k", f"k (images per best-of-K task) must be between {MIN_K} and {MAX_K}.")
        elif k > len(runs):
            refuse("k", f"k is {k} but the campaign has {len(runs)} runs: best of K shows one "
                        "image per run.")
        if gold_rate:
            refuse("gold_rate", "Best-of-K campaigns have no gold tasks: the gold rate "
                                "(gold_rate) must be 0.")
        if min_lpips_distance is not None:
            refuse("min_lpips_distance", "The LPIPS filter compares pairs: leave it empty for "
                                         "best of K.")
        if pair_policy != PairPolicy.BALANCED:
            refuse("pair_policy", "Best-of-K tasks are served with the balanced pair policy.")
        if criteria != [Criterion.OVERALL]:
            refuse("criteria", "Best-of-K campaigns ask one question: the criteria are "
                               "'overall'.")
    if problems:
        raise InvalidFields(problems)
    return 2 if task_kind == TaskKind.PAIR else k


@transaction.atomic
def campaign_create(
    *,
    project: Project,
    name: str,
    runs: Sequence[GenerationRun],
    criteria: Sequence[str] = (Criterion.OVERALL,),
    instructions: str = "",
    prompt_category: str = "",
    judgments_per_pair: int = 3,
    gold_rate: float = 0.0,
    pair_policy: str = PairPolicy.BALANCED,
    min_lpips_distance: float | None = None,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    created_by: AbstractBaseUser | None = None,
    build_now: bool = False,
    open_when_built: bool = True,
    task_kind: str = TaskKind.PAIR,
    k: int | None = None,
    rank_all: bool = False,
    annotators: Sequence[AbstractBaseUser] = (),
) -> Campaign:
    """Create a campaign; its tasks are built by a worker (or now, with ``build_now``).

    ``task_kind`` "pair" (two images) or "best_of_k" (``k`` images of one prompt, one per run;
    ``rank_all`` asks annotators to rank all K by successive picks instead of one pick).
    ``annotators``: the members of the project who may rate it (empty: every member).
    """
    criteria = _validate(runs=runs, criteria=criteria, gold_rate=gold_rate,
                         judgments_per_pair=judgments_per_pair, project=project)
    if pair_policy not in PairPolicy.values:
        raise EvalHubError(f"Unknown pair policy {pair_policy!r}.")
    if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
        raise EvalHubError(f"lease_seconds must be between {MIN_LEASE_SECONDS} and "
                           f"{MAX_LEASE_SECONDS}.")
    # Written so that NaN fails too; +inf used to be stored, and no answer could show it.
    if min_lpips_distance is not None and not 0 <= min_lpips_distance <= MAX_LPIPS_DISTANCE:
        raise EvalHubError("The LPIPS filter's threshold (min_lpips_distance) must be a "
                           f"number from 0 to {MAX_LPIPS_DISTANCE:g} (LPIPS distances are 0 for "
                           f"identical images and below 1 in practice); {min_lpips_distance} "
                           "given.")
    k = _validate_kind(task_kind=task_kind, k=k, rank_all=rank_all, runs=runs, criteria=criteria,
                       gold_rate=gold_rate, pair_policy=pair_policy,
                       min_lpips_distance=min_lpips_distance)
    check_prompt_category(runs=runs, category=prompt_category)
    if Campaign.objects.filter(project=project, name=name).exists():
        raise _name_taken(name)
    campaign = Campaign.objects.create(
        project=project, name=name, instructions=instructions, prompt_category=prompt_category,
        criteria=criteria, judgments_per_pair=judgments_per_pair, gold_rate=gold_rate,
        pair_policy=pair_policy, min_lpips_distance=min_lpips_distance,
        lease_seconds=lease_seconds, created_by=created_by, open_when_built=open_when_built,
        task_kind=task_kind, k=k, rank_all=rank_all,
    )
    campaign.runs.set(runs)
    if annotators:
        campaign_set_annotators(campaign=campaign, annotators=annotators)
    if build_now:
        campaign_build_tasks(campaign=campaign)
    else:
        enqueue_on_commit(BUILD_TASK, campaign.pk)
    return campaign


def _name_taken(name: str) -> NameTaken:
    return NameTaken("name", f"The project already has a campaign named {name!r}.")


def campaign_update(*, campaign: Campaign, name: str | None = None,
                    instructions: str | None = None) -> Campaign:
    """Rename ``campaign`` or replace its instructions (None: leave that one as it is); the
    other settings say what its tasks are and stay as created. Any status: a closed campaign's
    name still labels its leaderboard and exports.

    As :func:`campaign_create`, this takes the name and instructions as the input layers have
    checked them (the name rule, ``name_text``, and the lengths: the API's serializer, the
    page's form, the command's arguments); it refuses a name another campaign of the project
    has (:class:`NameTaken`, 409 ``duplicate``), a rename racing this one included.

    The row is locked (``FOR NO KEY UPDATE``: the votes and leases that reference it are still
    written meanwhile) and read again, so only these two fields are written, from what is
    stored now. ``campaign`` is updated in place and returned.
    """
    with transaction.atomic():
        row = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
        changed = {field: value for field, value in (("name", name),
                                                      ("instructions", instructions))
                   if value is not None and value != getattr(row, field)}
        if "name" in changed and Campaign.objects.filter(
                project_id=row.project_id, name=name).exclude(pk=row.pk).exists():
            raise _name_taken(name)
        if changed:
            for field, value in changed.items():
                setattr(row, field, value)
            try:
                with transaction.atomic():
                    row.save(update_fields=list(changed))
            except IntegrityError as exc:
                if "name" not in changed:
                    raise
                # The same name stored by another request between the check and the save.
                raise _name_taken(name) from exc
    campaign.name, campaign.instructions = row.name, row.instructions
    return campaign


def members_named(*, project: Project, usernames: Sequence[str]) -> list[AbstractBaseUser]:
    """The members of ``project`` with these usernames (the API names annotators by username,
    as the memberships API does). A name that is no member's is refused: told apart neither
    from a user of another project nor from a name nobody has."""
    wanted = list(dict.fromkeys(usernames))
    found = {user.get_username(): user for user in get_user_model().objects.filter(
        username__in=wanted, memberships__project=project)}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise EvalHubError("Only members of the campaign's project can be its annotators; not "
                           f"members: {', '.join(missing)}.")
    return [found[name] for name in wanted]


def campaign_set_annotators(*, campaign: Campaign, annotators: Sequence[AbstractBaseUser]
                            ) -> Campaign:
    """Who may rate ``campaign``: these members of its project; empty, every member.

    Refuses anyone who holds no role in the campaign's project (nothing changed). Takes effect
    on the next request: serving, votes, the rating page and the home page all ask
    ``serving.leasing.may_rate``. The pairs leased by someone left out are released at once
    (:func:`leases_expire`) for the others to rate; their vote on one is refused (403).
    """
    wanted = {user.pk: user for user in annotators}
    with transaction.atomic():
        # Their memberships locked while the list is written: a member removed at the same
        # time (projects.services.membership_remove, which locks the membership first) is
        # either refused here or taken off the list by the removal, never left on it.
        members = set(Membership.objects.select_for_update(no_key=True)
                      .filter(project_id=campaign.project_id, user_id__in=wanted)
                      .order_by("pk").values_list("user_id", flat=True))
        # Ids, not names: the caller must not learn the names of users outside the project.
        outside = sorted(pk for pk in wanted if pk not in members)
        if outside:
            raise EvalHubError("Only members of the campaign's project can be its annotators; "
                               f"not members: user {', user '.join(map(str, outside))}.")
        campaign.annotators.set(wanted.values())
        if wanted:  # an empty list lets every member rate: nobody was left out
            leases_expire(Lease.objects.filter(campaign=campaign).exclude(
                annotator_id__in=list(wanted)))
    return campaign


def leases_expire(leases: QuerySet[Lease]) -> int:
    """Close the active leases among ``leases`` now (status ``expired``), so that the pairs
    they hold are served to others at once instead of when the leases lapse: what removing an
    annotator from a campaign (:func:`campaign_set_annotators`) or a member from a project
    (``projects.services.membership_remove``) does with the pairs they held. Returns how many
    were closed.

    The serving walk counts an expired lease as not seen, and the holder's vote on it is
    refused anyway (``serving.leasing.may_rate``). Lock order as every write to a task's leases
    (docs/architecture.md): the tasks' rows first, in id order, then the leases.
    """
    with transaction.atomic():
        active = leases.filter(status=LeaseStatus.ACTIVE)
        task_ids = sorted(set(active.values_list("task_id", flat=True)))
        if not task_ids:
            return 0
        list(ComparisonTask.objects.filter(pk__in=task_ids).order_by("pk")
             .select_for_update(no_key=True).values_list("pk", flat=True))
        return active.filter(task_id__in=task_ids).update(status=LeaseStatus.EXPIRED,
                                                          closed_at=timezone.now())


# Which status a scientist may set from which: closed and failed campaigns stay as they are.
TRANSITIONS: dict[str, frozenset[str]] = {
    CampaignStatus.BUILDING: frozenset({CampaignStatus.CLOSED}),
    CampaignStatus.DRAFT: frozenset({CampaignStatus.ACTIVE, CampaignStatus.CLOSED}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED, CampaignStatus.CLOSED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.CLOSED}),
    CampaignStatus.CLOSED: frozenset(),
    CampaignStatus.FAILED: frozenset(),
}


#: Closed and failed campaigns are over: ``TRANSITIONS`` moves them nowhere, and no work for
#: annotators is added to them (gold pairs); their page does not offer it. (A metric judge
#: still reads a closed campaign's votes: leaderboards.services.check_metric_judges_apply.)
OVER = frozenset({CampaignStatus.CLOSED, CampaignStatus.FAILED})


def check_not_over(campaign: Campaign, *, adding: str) -> None:
    """Refuse ``adding`` (e.g. "gold pairs") to a campaign that is over (:data:`OVER`): a
    failed campaign has no tasks to rate, a closed one takes no more votes."""
    if campaign.status in OVER:
        raise EvalHubError(f"Campaign {campaign.name!r} is {campaign.status}: it takes no more "
                           f"{adding}.")


class StatusChangeRefused(EvalHubError):
    """The campaign cannot move from its status to the one asked (409)."""

    http_status = 409


def campaign_set_status(*, campaign: Campaign, status: str, from_status: str | None = None
                        ) -> Campaign:
    """Open a draft, pause, resume or close a campaign, as ``TRANSITIONS`` allows
    (``from_status``: only from that status, e.g. resume only a paused campaign).

    The change is a conditional UPDATE on the status read, so two scientists acting at once
    cannot both succeed from the same status.
    """
    if status not in TRANSITIONS.get(campaign.status, ()) or from_status not in (
            None, campaign.status):
        raise StatusChangeRefused(
            f"Campaign {campaign.name!r} is {campaign.status}; it cannot become {status}.")
    changed = Campaign.objects.filter(pk=campaign.pk, status=campaign.status).update(
        status=status)
    if not changed:
        campaign.refresh_from_db(fields=["status"])
        raise StatusChangeRefused(
            f"Campaign {campaign.name!r} changed meanwhile; it is now {campaign.status}.")
    campaign.status = status
    return campaign
