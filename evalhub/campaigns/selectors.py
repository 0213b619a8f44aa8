"""Reads of the campaigns app: progress, and which campaign a user may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)

from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Criterion,
    JudgeKind,
    Judgment,
    Lease,
    LeaseStatus,
    TaskKind,
)
from evalhub.core.errors import EvalHubError
from evalhub.runs.models import MediaKind


@dataclass(frozen=True)
class HumanVotes:
    """A campaign's human votes: live answers to the "overall" question (one per vote, however
    many questions the vote answered: each answer is a Judgment row), the annotators who gave
    them, and the answers undone (still stored: the campaign still holds what they did)."""

    votes: int = 0
    annotators: int = 0
    retracted: int = 0


def human_votes(*, campaign_ids: Iterable[int]) -> dict[int, HumanVotes]:
    """:class:`HumanVotes` of each campaign, by id, in one grouped query (none: absent). What
    a campaign's progress counts, and what keeps it from being deleted."""
    live = Q(retracted_at__isnull=True)
    rows = (Judgment.objects.filter(campaign_id__in=list(campaign_ids),
                                    judge_kind=JudgeKind.HUMAN, criterion=Criterion.OVERALL)
            .order_by().values("campaign_id")
            .annotate(votes=Count("id", filter=live),
                      annotators=Count("annotator", distinct=True, filter=live),
                      retracted=Count("id", filter=~live)))
    return {row["campaign_id"]: HumanVotes(row["votes"], row["annotators"], row["retracted"])
            for row in rows}


def campaign_progress(*, campaign: Campaign) -> dict[str, int]:
    """The campaign's progress: :func:`campaigns_progress` for one campaign (two queries)."""
    return campaigns_progress(campaign_ids=[campaign.pk])[campaign.pk]


def campaigns_progress(*, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Each campaign's progress, by id, in two grouped queries however many campaigns (a list
    page of a thousand took three queries each): its pairs (gold ones apart) and the votes
    needed and counted on them, and its live human votes on the overall criterion, gold
    pairs' included, and the annotators who gave them."""
    ids = list(dict.fromkeys(campaign_ids))
    if not ids:
        return {}
    pair = Q(is_gold=False)
    tasks = {row["campaign_id"]: row for row in (
        ComparisonTask.objects.filter(campaign_id__in=ids).order_by().values("campaign_id")
        .annotate(tasks=Count("id", filter=pair),
                  needed=Sum("judgments_needed", filter=pair),
                  done=Sum("judgments_count", filter=pair),
                  complete=Count("id", filter=pair & Q(judgments_count__gte=F(
                      "judgments_needed"))),
                  gold=Count("id", filter=Q(is_gold=True))))}
    votes = human_votes(campaign_ids=ids)
    progress = {}
    for campaign_id in ids:
        task_row, vote_row = tasks.get(campaign_id, {}), votes.get(campaign_id, HumanVotes())
        progress[campaign_id] = {
            "tasks": task_row.get("tasks") or 0,
            "tasks_complete": task_row.get("complete") or 0,
            "judgments_needed": task_row.get("needed") or 0,
            "judgments_done": task_row.get("done") or 0,
            "human_votes": vote_row.votes,
            "annotators": vote_row.annotators,
            "gold_tasks": task_row.get("gold") or 0,
        }
    return progress


class NoSuchCampaign(EvalHubError):
    """No campaign of that id in any project the user belongs to (404). ``code`` lets the
    rating page tell a campaign deleted (or no longer the annotator's) under it from a lost
    request: it stops instead of refusing every key."""

    http_status = 404
    code = "campaign_not_found"


def campaign_of_member(*, user: AbstractBaseUser, campaign_id: int) -> Campaign:
    """The campaign, if the user holds any role in its project (one query)."""
    campaign = Campaign.objects.filter(pk=campaign_id, project__memberships__user=user).first()
    if campaign is None:
        raise NoSuchCampaign("No such campaign.")
    return campaign


class NotAssigned(EvalHubError):
    """The campaign names its annotators and the caller, a member of its project, is not one
    of them (403)."""

    http_status = 403


def campaign_for_rater(*, user: AbstractBaseUser, campaign_id: int) -> Campaign:
    """The campaign, if ``user`` may rate it (serving's ``may_rate``; one query).

    Raises NoSuchCampaign (404) when they hold no role in its project, NotAssigned (403) when
    the campaign names its annotators and they are not among them.
    """
    from evalhub.campaigns.serving.leasing import may_rate

    campaign = (Campaign.objects.filter(pk=campaign_id, project__memberships__user=user)
                .annotate(may_rate=ExpressionWrapper(
                    may_rate(user.pk, campaign=OuterRef("pk"), project=OuterRef("project_id")),
                    output_field=BooleanField()))
                .first())
    if campaign is None:
        raise NoSuchCampaign("No such campaign.")
    if not campaign.may_rate:
        raise NotAssigned("This campaign is rated by the annotators its scientists chose, and "
                          "you are not one of them.")
    return campaign


def campaigns_for_rater(*, user: AbstractBaseUser, projects: QuerySet) -> QuerySet[Campaign]:
    """The active campaigns of ``projects`` that ``user`` may rate (serving's ``may_rate``),
    and the closed ones ``user`` voted in, newest first, each annotated with
    ``left_for_rater``: whether a task still needs a vote that ``user`` may give (one not
    judged, skipped or reported by them; one held by another annotator counts, as its lease
    may lapse). Serving's rule (serving/leasing.py) as one
    ``EXISTS`` per listed campaign: one query for the whole list.
    """
    seen = Lease.objects.filter(task=OuterRef("pk"), annotator=user).exclude(
        status__in=[LeaseStatus.EXPIRED, LeaseStatus.ACTIVE])
    judged = Judgment.objects.filter(task=OuterRef("pk"), annotator=user,
                                     retracted_at__isnull=True)
    open_task = ComparisonTask.objects.filter(
        campaign=OuterRef("pk"), is_gold=False, judgments_count__lt=F("judgments_needed")
    ).filter(~Exists(seen), ~Exists(judged))
    voted = Judgment.objects.filter(campaign=OuterRef("pk"), annotator=user,
                                    judge_kind=JudgeKind.HUMAN, retracted_at__isnull=True)
    from evalhub.campaigns.serving.leasing import may_rate

    return (Campaign.objects.filter(project__in=projects)
            .filter(may_rate(user.pk, campaign=OuterRef("pk"), project=OuterRef("project_id")))
            .filter(Q(status=CampaignStatus.ACTIVE)
                    | (Q(status=CampaignStatus.CLOSED) & Exists(voted)))
            .annotate(left_for_rater=Exists(open_task))
            .select_related("project").order_by("-created_at"))


def campaign_medium(*, campaign: Campaign) -> str:
    """``"video"`` when the campaign compares videos, else ``"image"``: the noun its pages use
    (a campaign holds one medium: ``services._check_one_medium``)."""
    return ("video" if campaign.runs.filter(media_kind=MediaKind.VIDEO).exists()
            else "image")


def rating_panes(*, campaign: Campaign, medium: str) -> list[dict[str, str]]:
    """The panes of the page: ``side`` (what the stage and reports call it), ``key`` (its
    key, if any), ``label`` and ``name`` (as said in messages), in the campaign's ``medium``
    (image or video). Pairs: source (shown only for editing tasks), left, right; best of K:
    slots "0".."K-1", keys 1..K."""
    if campaign.task_kind == TaskKind.BEST_OF_K:
        return [{"side": str(slot), "key": str(slot + 1),
                 "label": f"{medium.capitalize()} {slot + 1}", "name": f"{medium} {slot + 1}"}
                for slot in range(campaign.k)]
    return [{"side": side, "key": key, "label": side.capitalize(), "name": f"{side} {medium}"}
            for side, key in (("source", ""), ("left", "1"), ("right", "2"))]
