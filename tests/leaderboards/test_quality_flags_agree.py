"""One source of annotator flags: the campaign page, the quality API and the dashboard show the
flags, reasons and weights of the stored reliability estimate (the one the leaderboards'
"exclude" and "weight" act on), whatever rule raised them: gold accuracy, speed, position
bias or disagreement with the consensus ranking."""

import html
import re
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment, Lease
from evalhub.leaderboards.quality_snapshot import quality_get
from ratings.reliability import FLAG_REASONS
from tests.builders import build_campaign, logged_in
from tests.factories import JudgmentFactory, count_judgments
from tests.leaderboards.helpers import bt_outcome

pytestmark = pytest.mark.django_db

ELO = (400.0, 0.0, -400.0)


def _world():
    """Three runs far apart, 42 tasks of which 6 gold (answer: the stronger run), six
    annotators voting on every task: two honest ones; ``lefty`` always picks the left image;
    ``contrary`` always picks the weaker run (gold pairs too); ``gold_miss`` is honest but
    answers every gold pair wrong; ``hasty`` is honest but presses a key every 350 ms on the
    rating page (each lease taken a vote before its pair was shown)."""
    world = build_campaign(runs=3, prompts=14, annotators=6, judgments_per_pair=10)
    _honest, _honest_too, lefty, contrary, gold_miss, hasty = world.annotators
    strengths = {run.pk: elo for run, elo in zip(world.runs, ELO, strict=True)}
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign).order_by("pk"))
    for task in tasks[:6]:
        answer = "a" if strengths[task.run_a_id] > strengths[task.run_b_id] else "b"
        ComparisonTask.objects.filter(pk=task.pk).update(is_gold=True, gold_answer=answer)
        task.is_gold, task.gold_answer = True, answer
    rng = np.random.default_rng(0)
    start = timezone.now() - timedelta(hours=1)
    rows = []
    for i, task in enumerate(tasks):
        stronger = "a" if strengths[task.run_a_id] > strengths[task.run_b_id] else "b"
        weaker = "b" if stronger == "a" else "a"
        for annotator in world.annotators:
            side = "left" if rng.random() < 0.5 else "right"
            if annotator == lefty:
                outcome = "a" if side == "left" else "b"
            elif annotator == contrary:
                outcome = weaker
            elif task.is_gold:
                outcome = weaker if annotator == gold_miss else stronger
            else:
                outcome = bt_outcome(rng, strengths[task.run_a_id], strengths[task.run_b_id])
            if annotator == hasty:
                vote = JudgmentFactory(task=task, annotator=hasty, outcome=outcome, a_side=side)
                at = start + timedelta(milliseconds=350 * i)
                Judgment.objects.filter(pk=vote.pk).update(created_at=at)
                Lease.objects.filter(pk=vote.lease_id).update(
                    leased_at=at - timedelta(milliseconds=700))
                continue
            rows.append(Judgment(task=task, campaign_id=task.campaign_id, criterion="overall",
                                 outcome=outcome, judge_kind=JudgeKind.HUMAN,
                                 annotator=annotator, a_side=side, client_id=uuid.uuid4()))
    count_judgments(Judgment.objects.bulk_create(rows))
    return world


def _api_rows(world) -> dict[str, dict]:
    response = logged_in(world.scientist).get(f"/api/v1/campaigns/{world.campaign.pk}/quality/")
    assert response.status_code == 200
    return {row["username"]: row for row in response.json()["annotators"]}


def _manage_rows(world) -> tuple[dict[str, dict], str]:
    page = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/")
    assert page.status_code == 200
    text = page.content.decode()
    table = text.split('id="quality-table"')[1].split("</table>")[0]
    rows = {}
    for row in table.split("<tr ")[1:]:
        name = re.search(r'data-annotator="([^"]*)"', row).group(1)
        flags = re.search(r'data-flags="([^"]*)"', row).group(1).split()
        reasons = html.unescape(re.search(r'<td class="reasons">(.*?)</td>', row, re.S)
                                .group(1)).strip()
        weight = re.search(r'<td class="weight">(.*?)</td>', row, re.S).group(1).strip()
        rows[html.unescape(name)] = {"flags": flags, "reasons": reasons, "weight": weight}
    return rows, text


def _dashboard_rows(world) -> dict[str, dict]:
    page = logged_in(world.scientist).get(f"/dashboard/campaigns/{world.campaign.pk}/",
                                          {"quality": "exclude"})
    assert page.status_code == 200
    table = page.content.decode().split('id="annotator-quality-table"')[1].split("</table>")[0]
    rows = {}
    for name, weight, reasons, treatment in re.findall(
            r'<tr data-annotator="([^"]*)"><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>'
            r'<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', table):
        rows[html.unescape(name)] = {"weight": weight.strip(),
                                     "reasons": html.unescape(reasons).strip(),
                                     "treatment": treatment}
    return rows


def test_the_campaign_page_the_quality_api_and_the_dashboard_show_the_same_flags():
    world = _world()
    honest_a, honest_b, lefty, contrary, gold_miss, hasty = world.annotators
    api, (manage, page), dashboard = _api_rows(world), _manage_rows(world), _dashboard_rows(world)

    # Each rule raised its flag, gold accuracy no longer the only one the page knows.
    assert "position" in api[lefty.username]["flags"]
    assert {"accuracy", "gold"} <= set(api[contrary.username]["flags"])
    assert api[gold_miss.username]["flags"] == ["gold"]
    assert "fast" in api[hasty.username]["flags"]
    assert api[honest_a.username]["flags"] == [] and api[honest_b.username]["flags"] == []
    assert api[contrary.username]["gold_accuracy"] == 0.0  # what the page showed before, kept

    stored = {row.username: row for row in quality_get(campaign=world.campaign)
              .reliability.annotators}
    flagged = {name for name, row in api.items() if row["flags"]}
    assert flagged == {lefty.username, contrary.username, gold_miss.username, hasty.username}
    for name, row in api.items():
        estimate = stored[name]
        reasons = "; ".join(FLAG_REASONS[flag] for flag in row["flags"])
        assert row["flags"] == list(estimate.flags)
        assert row["reasons"] == list(estimate.reasons)
        assert row["weight"] == pytest.approx(estimate.weight)
        assert row["flagged"] == bool(row["flags"])
        assert manage[name] == {"flags": row["flags"], "reasons": reasons,
                                "weight": f"{estimate.weight_percent} %"}
        if name in flagged:
            # What "exclude" does with them, for the same reasons and weight.
            assert dashboard[name] == {"weight": f"{estimate.weight_percent} %",
                                       "reasons": reasons, "treatment": "left out"}
    assert f"{len(flagged)} flagged or excluded" in page


def test_an_exclusion_shows_at_once_on_the_page_and_in_the_api_with_weight_zero():
    world = _world()
    _, honest_b, *_ = world.annotators
    _manage_rows(world)  # the estimate is stored
    logged_in(world.scientist).post(f"/campaigns/{world.campaign.pk}/manage/exclude/",
                                    {"annotator": honest_b.pk, "excluded": "on"})

    api, (manage, _page) = _api_rows(world), _manage_rows(world)
    assert api[honest_b.username]["excluded"] and api[honest_b.username]["weight"] == 0.0
    assert api[honest_b.username]["flags"] == []
    assert manage[honest_b.username]["weight"] == "0 %"
