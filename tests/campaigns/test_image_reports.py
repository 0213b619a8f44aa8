"""Reports of broken images reach the scientists: the campaign page's "Reports" section and
the API's ``campaigns/<id>/reports/`` list each one (when, who, which image, which pane, the
note), newest first; annotators and outsiders see neither.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from evalhub.campaigns.manage import views as manage_views
from evalhub.campaigns.models import ImageReport, Lease, TaskKind
from tests.builders import build_campaign, logged_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=3, annotators=2, name="Study")


def _report(api, world, annotator, side: str, note: str) -> ImageReport:
    """Lease the annotator's next task and report one pane, as the rating page does."""
    api.force_login(annotator)
    base = f"/api/v1/rate/{world.campaign.pk}/"
    task = api.post(base + "next/", {}, format="json").json()
    answer = api.post(base + f"leases/{task['lease']}/report/", {"side": side, "note": note},
                      format="json")
    assert answer.status_code == 200, answer.content
    return ImageReport.objects.filter(annotator=annotator).latest("id")


def _shown(report: ImageReport) -> int:
    """The image the annotator saw on the reported side."""
    lease = Lease.objects.get(task=report.task, annotator=report.annotator)
    shows_a = (report.side == "left") == (lease.a_side == "left")
    return report.task.image_a_id if shows_a else report.task.image_b_id


def _report_rows(html: str) -> list[str]:
    table = html.split('id="reports-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-report="(\d+)">', table)


def test_the_campaign_page_lists_each_report_newest_first_with_a_link_to_the_image(
        api, world):
    first = _report(api, world, world.annotators[0], "left", "all black")
    second = _report(api, world, world.annotators[1], "right", "half missing")
    ImageReport.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=1))
    first.refresh_from_db()
    assert first.image_id == _shown(first) and second.image_id == _shown(second)

    html = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/"
                                          ).content.decode()
    section = html.split('id="reports"', 1)[1].split("</section>", 1)[0]
    assert _report_rows(html) == [str(second.pk), str(first.pk)]
    for report in (first, second):
        row = section.split(f'data-report="{report.pk}"', 1)[1].split("</tr>", 1)[0]
        assert report.annotator.username in row
        assert f'href="/gallery/images/{report.image_id}/"' in row
        assert f"{report.image.run.name} #{report.image_id}" in row
        assert f"<td>{report.side} image</td>" in row  # as the rating page names it
        assert report.note in row
        assert timezone.localtime(report.created_at).strftime("%Y-%m-%d %H:%M") in row
    assert "2 reports." in section
    # The scientist can open the linked image page.
    assert logged_in(world.scientist).get(f"/gallery/images/{first.image_id}/").status_code == 200


def test_the_page_shows_the_newest_reports_and_how_many_there_are(api, world, monkeypatch):
    reports = [_report(api, world, world.annotators[0], side, f"note {i}")
               for i, side in enumerate(["left", "right", "left"])]
    monkeypatch.setattr(manage_views, "REPORTS_SHOWN", 2)
    html = logged_in(world.owner).get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert _report_rows(html) == [str(reports[2].pk), str(reports[1].pk)]
    assert "The newest 2 of 3 reports." in html


def test_a_campaign_without_reports_says_so(world):
    html = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/"
                                          ).content.decode()
    section = html.split('id="reports"', 1)[1].split("</section>", 1)[0]
    assert "No reports." in section


def test_best_of_k_reports_name_the_pane_as_the_rating_page_did(api):
    world = build_campaign(runs=3, prompts=2, task_kind=TaskKind.BEST_OF_K, k=3,
                           judgments_per_pair=1)
    report = _report(api, world, world.annotators[0], "2", "")
    html = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/"
                                          ).content.decode()
    row = html.split(f'data-report="{report.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>image 3</td>" in row
    assert f'href="/gallery/images/{report.image_id}/"' in row


def test_a_best_of_k_report_names_a_slot_of_the_set(api):
    world = build_campaign(runs=3, prompts=2, task_kind=TaskKind.BEST_OF_K, k=3,
                           judgments_per_pair=1)
    api.force_login(world.annotators[0])
    base = f"/api/v1/rate/{world.campaign.pk}/"
    task = api.post(base + "next/", {}, format="json").json()
    answer = api.post(base + f"leases/{task['lease']}/report/", {"side": "3"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["detail"] == "Report an image by its slot, 0 to 2, or 'source'."
    # Another script's digits, signs, huge numbers: refused by the input's choices.
    for side in ("\u00b2", "\u0661", "-1", "9" * 30):
        answer = api.post(base + f"leases/{task['lease']}/report/", {"side": side},
                          format="json")
        assert answer.status_code == 400, side
        assert "side" in str(answer.json()), side
    assert not ImageReport.objects.exists()


def test_the_api_lists_reports_for_scientists_only(api, world):
    first = _report(api, world, world.annotators[0], "left", "all black")
    second = _report(api, world, world.annotators[1], "right", "")
    url = f"/api/v1/campaigns/{world.campaign.pk}/reports/"
    for who in (world.scientist, world.owner):
        api.force_authenticate(who)
        answer = api.get(url)
        assert answer.status_code == 200
        body = answer.json()
        assert body["count"] == 2
        assert [row["id"] for row in body["results"]] == [second.pk, first.pk]
        row = body["results"][1]
        assert row == {
            "id": first.pk, "created_at": row["created_at"],
            "annotator": world.annotators[0].pk,
            "annotator_username": world.annotators[0].username,
            "task": first.task_id, "image": first.image_id, "run": first.image.run_id,
            "prompt": first.task.prompt.text, "side": "left", "note": "all black"}
    api.force_authenticate(world.annotators[0])
    assert api.get(url).status_code == 404
    api.force_authenticate(UserFactory())
    assert api.get(url).status_code == 404
    other = build_campaign(runs=2, prompts=1, annotators=1, name="Elsewhere")
    api.force_authenticate(other.owner)
    assert api.get(url).status_code == 404
    api.force_authenticate(None)
    api.logout()
    assert api.get(url).status_code == 401
