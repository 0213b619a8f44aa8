"""Command-line helpers shared by the commands that work on one campaign: how a campaign and
its progress read in a terminal (the figures of the campaign page, ``live_progress``), and its
instructions read from a file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from django.core.management.base import CommandError

from evalhub.campaigns.manage.selectors import annotator_progress, live_progress
from evalhub.campaigns.models import Campaign, CampaignStatus, TaskKind
from evalhub.campaigns.selectors import campaign_medium
from evalhub.core.cli import text_argument
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.core.text import counted
from evalhub.runs.models import GenerationRun


def get_campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("project").filter(pk=campaign_id).first()
    if campaign is None:
        raise CommandError(f"No campaign with id {campaign_id}.")
    return campaign


def instructions_from_file(path: Path) -> str:
    """A campaign's instructions from the text file ``path``, as the API and ``create_campaign
    --instructions`` take instructions (:func:`evalhub.core.cli.text_argument`: spaces and
    blank lines trimmed at the ends, at most ``MAX_TEXT_CHARS`` characters, no NUL). The file
    is UTF-8, with or without a byte-order mark (Notepad writes one); another encoding is
    refused in words, with where it stops being UTF-8, rather than stored garbled. A file that
    cannot be read is named with the system's reason (``reports_domain_errors``)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CommandError(f"--instructions-file {path}: not UTF-8 text (byte {exc.start} is "
                           "not UTF-8); save it as UTF-8.") from exc
    try:
        return text_argument(MAX_TEXT_CHARS)(text)
    except argparse.ArgumentTypeError as exc:
        raise CommandError(f"--instructions-file {path}: {exc}.") from exc


def describe(campaign: Campaign) -> str:
    """``Campaign 3 'name': 2 runs, pairs, balanced pair policy.``"""
    what = (f"pairs, {campaign.pair_policy} pair policy" if campaign.task_kind == TaskKind.PAIR
            else f"best of {campaign.k}" + (", all ranked" if campaign.rank_all else ""))
    return f"Campaign {campaign.pk} {campaign.name!r}: {campaign.runs.count()} runs, {what}."


def building_reason(waiting_for_runs: Sequence[int]) -> str:
    """Why a ``building`` campaign is not built yet: the runs it waits for (``LiveProgress.
    waiting_for_runs``), or the queue."""
    if not waiting_for_runs:
        return "its tasks are queued for a worker"
    names = GenerationRun.objects.filter(pk__in=waiting_for_runs).order_by("name")
    return "waiting for runs to finish generating: " + ", ".join(run.name for run in names)


def progress_lines(campaign: Campaign, *, annotators: bool = False) -> list[str]:
    """The campaign's state in a few lines: building (and why), failed (and why), or its
    tasks, votes and where annotators rate it; with ``annotators``, one line per annotator
    who voted."""
    progress = live_progress(campaign=campaign)
    if progress.status == CampaignStatus.BUILDING:
        return [f"Building: {building_reason(progress.waiting_for_runs)}."]
    if progress.status == CampaignStatus.FAILED:
        return [f"Failed to build: {progress.error}"]
    skipped = f"; {progress.not_asked}" if progress.not_asked else ""
    lines = [f"{counted(progress.tasks, 'task')} built{skipped}; status {progress.status}.",
             f"Votes: {progress.votes_done} of {progress.votes_needed} needed "
             f"({progress.tasks_complete} tasks complete), {progress.human_votes} human votes "
             f"by {progress.annotators} annotators; {progress.gold_tasks} gold tasks."]
    if progress.near_duplicate_filter:
        lines.insert(1, f"Near-duplicate filter: {progress.near_duplicate_filter}.")
    if progress.images_total:
        # What a campaign waits for (campaigns/building/images.py), in its medium's words: an
        # image over 4096 px waits for its tiles, one over 2048 x 2048 pixels for a display
        # copy that a worker writes.
        waiting = ("Videos still being converted" if campaign_medium(campaign=campaign) == "video"
                   else "Large images still being prepared (tiles or a display copy)")
        lines.append(f"{waiting}: {progress.images_done} of {progress.images_total} ready.")
    if progress.status == CampaignStatus.ACTIVE:
        lines.append(f"Annotators rate it at /rate/{campaign.pk}/.")
    if annotators:
        for row in annotator_progress(campaign=campaign):
            last = row.last_vote_at.isoformat(timespec="seconds") if row.last_vote_at else "-"
            votes = f"{row.votes} vote" + ("" if row.votes == 1 else "s")
            lines.append(f"  {row.username}: {votes} ({row.gold_votes} on gold pairs), "
                         f"last {last}")
    return lines
