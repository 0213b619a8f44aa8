"""The votes quality control reads: live (not undone) human judgments of one campaign."""

from __future__ import annotations

from django.db.models import QuerySet

from evalhub.campaigns.models import Campaign, JudgeKind, Judgment


def human_judgments(campaign: Campaign) -> QuerySet[Judgment]:
    return Judgment.objects.filter(campaign=campaign, judge_kind=JudgeKind.HUMAN,
                                   retracted_at__isnull=True)
