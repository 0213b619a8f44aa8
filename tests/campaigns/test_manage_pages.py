"""The scientists' campaign pages: who may open them and act, and what each form does.

Every write goes through the service the API calls; a refusal is shown next to its field and
stores nothing; another project's object is refused like one that does not exist.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.models import (
    AnnotatorFlag,
    Campaign,
    CampaignStatus,
    ComparisonTask,
    TaskKind,
)
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.services import campaign_leaderboards_refresh
from evalhub.runs.models import Image
from tests.builders import build_campaign, logged_in
from tests.core.test_security_headers import _inline_code
from tests.factories import (
    GenerationRunFactory,
    ImageFactory,
    PromptFactory,
    PromptSetFactory,
    UserFactory,
    png_bytes,
)
from tests.leaderboards.helpers import cast
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=3, annotators=2, name="Study")


@pytest.fixture
def other():
    """Another project, with its own runs and campaign."""
    return build_campaign(runs=2, prompts=2, annotators=1, name="Elsewhere")


def _pages(world) -> list[str]:
    campaign, project = world.campaign.pk, world.campaign.project_id
    return [f"/projects/{project}/campaigns/", f"/projects/{project}/campaigns/new/",
            f"/campaigns/{campaign}/manage/", f"/campaigns/{campaign}/manage/progress/",
            f"/campaigns/{campaign}/manage/close/"]


def _gold(world, answer: str = "a") -> ComparisonTask:
    first = world.tasks[0]
    return gold_task_add(campaign=world.campaign, image_a=first.image_a, image_b=first.image_b,
                         answer=answer)


def _actions(world) -> list[tuple[str, dict]]:
    """Every POST of the pages, with a valid body."""
    campaign = world.campaign.pk
    gold = _gold(world)
    second = world.tasks[1]
    return [
        (f"/campaigns/{campaign}/manage/status/", {"status": "paused", "current": "active"}),
        (f"/campaigns/{campaign}/manage/exclude/",
         {"annotator": world.annotator.pk, "excluded": "on"}),
        (f"/campaigns/{campaign}/manage/gold/",
         {"image_a": second.image_a_id, "image_b": second.image_b_id, "answer": "b"}),
        (f"/campaigns/{campaign}/manage/gold/{gold.pk}/remove/", {}),
        (f"/campaigns/{campaign}/manage/metric-judge/", {"metric": "clip_score"}),
        (f"/projects/{world.campaign.project_id}/campaigns/new/",
         {"name": "Second", "runs": [r.pk for r in world.runs], "criteria": ["overall"],
          "pair_policy": "balanced", "judgments_per_pair": 3, "gold_rate": 0,
          "lease_seconds": 180}),
    ]


def _state(world) -> tuple:
    campaign = Campaign.objects.get(pk=world.campaign.pk)
    return (campaign.status, AnnotatorFlag.objects.count(),
            sorted(ComparisonTask.objects.filter(is_gold=True).values_list("pk", flat=True)),
            Campaign.objects.count())


# ---------------------------------------------------------------------------- permissions


def test_anonymous_users_are_sent_to_sign_in_for_every_page_and_action(world):
    before = _state(world)
    for url in _pages(world):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="), url
    for url, body in _actions(world):
        response = Client().post(url, body)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert _state(world)[0] == before[0]


def test_annotators_get_403_and_outsiders_404_and_nothing_changes(world, other):
    outsider = UserFactory()
    actions = _actions(world)
    before = _state(world)
    for url in _pages(world):
        assert logged_in(world.annotator).get(url).status_code == 403, url
        assert logged_in(outsider).get(url).status_code == 404, url
        assert logged_in(other.owner).get(url).status_code == 404, url
    for url, body in actions:
        assert logged_in(world.annotator).post(url, body).status_code == 403, url
        assert logged_in(outsider).post(url, body).status_code == 404, url
        assert logged_in(other.owner).post(url, body).status_code == 404, url
    assert _state(world) == before
    assert logged_in(world.scientist).get("/campaigns/999999999/manage/").status_code == 404


@pytest.mark.parametrize("who", ["scientist", "owner"])
def test_scientists_and_owners_open_every_page_and_act(world, who):
    user = getattr(world, who)
    for url in _pages(world):
        response = logged_in(user).get(url)
        assert response.status_code == 200, url
        if response["Content-Type"].startswith("text/html"):
            assert _inline_code(response.content.decode()) == [], url
    for url, body in _actions(world):
        response = logged_in(user).post(url, body)
        assert response.status_code == 302, (url, response.content.decode()[:2000])
    campaign = Campaign.objects.get(pk=world.campaign.pk)
    assert campaign.status == CampaignStatus.PAUSED
    assert AnnotatorFlag.objects.get(campaign=campaign, annotator=world.annotator).excluded
    assert Campaign.objects.filter(project=campaign.project, name="Second").exists()


# ---------------------------------------------------------------------------- creation


def _create_body(world, **changes) -> dict:
    body = {"name": "New study", "runs": [r.pk for r in world.runs],
            "criteria": ["overall", "aesthetics"], "pair_policy": "active",
            "judgments_per_pair": "2", "gold_rate": "0.1", "min_lpips_distance": "0.05",
            "lease_seconds": "120", "instructions": "Pick the better image.",
            "open_when_built": "on"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_the_campaign_list_links_each_campaigns_page_leaderboard_and_export(world):
    campaign = world.campaign.pk
    html = logged_in(world.owner).get(
        f"/projects/{world.campaign.project_id}/campaigns/").content.decode()
    for link in (f"/campaigns/{campaign}/manage/", f"/dashboard/campaigns/{campaign}/",
                 f"/campaigns/{campaign}/export/"):
        assert f'href="{link}"' in html, link


def test_a_campaign_is_created_through_the_service_and_opens_its_page(world):
    response = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/", _create_body(world))
    campaign = Campaign.objects.get(name="New study")
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/manage/"
    assert set(campaign.runs.all()) == set(world.runs)
    assert campaign.criteria == ["overall", "aesthetics"]
    assert (campaign.pair_policy, campaign.judgments_per_pair, campaign.gold_rate,
            campaign.min_lpips_distance, campaign.lease_seconds) == ("active", 2, 0.1, 0.05, 120)
    assert campaign.instructions == "Pick the better image."
    assert campaign.status == CampaignStatus.BUILDING
    page = logged_in(world.scientist).get(response["Location"]).content.decode()
    assert "Building…" in page and 'data-action="closed"' in page


def _errors(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"gold_rate": "0.9"}, "gold_rate", "gold_rate must be between 0 and 0.5."),
    ({"judgments_per_pair": "0"}, "judgments_per_pair", "between 1 and 50"),
    ({"name": "Study"}, "name", "already has a campaign named"),
    ({"name": ""}, "name", "This field is required."),
    # 150 characters that NFC turns into 300 (U+0958 has no composed form): the length is
    # checked on the name as stored, so the column's limit is a 400 here, never a 500.
    ({"name": "\u0958" * 150}, "name", "at most 200 characters (it has 300)"),
    ({"lease_seconds": "5"}, "lease_seconds", "greater than or equal to 10"),
    ({"min_lpips_distance": "-1"}, "min_lpips_distance", "greater than or equal to 0"),
    ({"min_lpips_distance": "1e300"}, "min_lpips_distance", "less than or equal to 1"),
    ({"pair_policy": "random"}, "pair_policy", "Select a valid choice"),
])
def test_creation_errors_are_shown_next_to_their_field_and_nothing_is_stored(
        world, changes, field, message):
    before = Campaign.objects.count()
    response = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/", _create_body(world, **changes))
    assert response.status_code == 400
    assert any(message in error for error in _errors(response, field)), response.context[
        "form"].errors
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert Campaign.objects.count() == before


def test_a_project_category_that_the_runs_prompt_set_lacks_is_refused_next_to_its_field(world):
    # The form offers the categories of every prompt set of the project; the service refuses
    # one that the chosen runs' prompt set does not have.
    PromptFactory(prompt_set=PromptSetFactory(project=world.campaign.project),
                  category="landscape")
    response = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/",
        _create_body(world, prompt_category="landscape"))
    assert response.status_code == 400
    assert _errors(response, "prompt_category") == [
        "No prompt of the runs' prompt set has the category 'landscape'; its categories: "
        "'colour', 'counting'."]
    assert not Campaign.objects.filter(name="New study").exists()


def test_the_pair_policy_field_says_what_each_policy_spends_votes_on(world):
    page = logged_in(world.scientist).get(
        f"/projects/{world.campaign.project_id}/campaigns/new/").content.decode()
    help_text = page.split('id="id_pair_policy_helptext">', 1)[1].split("</p>", 1)[0]
    assert "Balanced covers every pair evenly" in help_text
    assert "order all runs with fewer votes" in help_text
    assert "find the best run with far fewer" in help_text
    assert 'aria-describedby="id_pair_policy_helptext"' in page


def test_a_single_run_is_refused_next_to_the_runs(world):
    response = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/",
        _create_body(world, runs=[world.runs[0].pk]))
    assert response.status_code == 400
    assert _errors(response, "runs") == ["A campaign compares at least two runs."]
    assert not Campaign.objects.filter(name="New study").exists()


def test_another_projects_run_is_refused_like_a_missing_one(world, other):
    response = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/",
        _create_body(world, runs=[world.runs[0].pk, other.runs[0].pk]))
    missing = logged_in(world.scientist).post(
        f"/projects/{world.campaign.project_id}/campaigns/new/",
        _create_body(world, runs=[world.runs[0].pk, 999999999]))
    assert response.status_code == missing.status_code == 400
    assert [e.replace(str(other.runs[0].pk), "ID") for e in _errors(response, "runs")] == [
        e.replace("999999999", "ID") for e in _errors(missing, "runs")]
    assert not Campaign.objects.filter(name="New study").exists()


@pytest.mark.parametrize("bad", ["99999999999999999999", "12abc", "-3"])
def test_ids_that_cannot_be_ids_are_refused_next_to_their_field(world, bad):
    # The database refused a number past bigint (SQLite: OverflowError): a 500 before.
    campaign, project = world.campaign, world.campaign.project_id
    client = logged_in(world.scientist)
    before = _state(world)
    runs = client.post(f"/projects/{project}/campaigns/new/",
                       _create_body(world, runs=[world.runs[0].pk, bad]))
    annotators = client.post(f"/projects/{project}/campaigns/new/",
                             {**_create_body(world), "annotators": [bad]})
    assert runs.status_code == annotators.status_code == 400
    assert _errors(runs, "runs") and _errors(annotators, "annotators")
    listed = client.post(f"/campaigns/{campaign.pk}/manage/annotators/", {"annotators": [bad]})
    gold = client.post(f"/campaigns/{campaign.pk}/manage/gold/",
                       {"image_a": bad, "image_b": world.tasks[0].image_b_id, "answer": "a"})
    assert listed.status_code == gold.status_code == 400
    assert _state(world) == before


# ---------------------------------------------------------------------------- status


def test_only_the_allowed_transitions_are_offered_and_a_stale_button_is_refused(world):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/"
    active = client.get(url).content.decode()
    assert 'data-action="paused"' in active and 'data-action="closed"' in active
    assert ">Resume<" not in active
    assert client.post(url + "status/", {"status": "paused", "current": "active"}
                       ).status_code == 302
    paused = client.get(url).content.decode()
    assert ">Resume<" in paused and ">Pause<" not in paused
    # A second tab still showing "Pause": refused with the reason, nothing changes.
    for body in ({"status": "bogus", "current": "paused"}, {"status": "x" * 50}, {}):
        refused = client.post(url + "status/", body)
        assert refused.status_code == 400 and 'id="status-error"' in refused.content.decode()
    stale = client.post(url + "status/", {"status": "paused", "current": "active"})
    assert stale.status_code == 400
    assert 'id="status-error"' in stale.content.decode()
    assert client.post(url + "status/", {"status": "active", "current": "paused"}
                       ).status_code == 302
    assert Campaign.objects.get(pk=world.campaign.pk).status == CampaignStatus.ACTIVE
    client.post(url + "status/", {"status": "closed", "current": "active", "confirm": "1"})
    closed = client.get(url).content.decode()
    assert 'data-action=' not in closed and "stays as it is" in closed
    assert client.post(url + "status/", {"status": "active", "current": "closed"}
                       ).status_code == 400


def test_close_asks_for_confirmation_on_its_own_page_first(world):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/"
    page = client.get(url).content.decode()
    # "Close" is a link to the confirmation page, not a button that closes.
    button = page.split('data-action="closed"', 1)[0].rsplit("<", 1)[1]
    assert button.startswith("a ") and f'href="{url}close/"' in button, button
    assert 'name="status" value="closed"' not in page

    confirm = client.get(url + "close/")
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "for good" in html and "pause it instead" in html
    assert 'id="close-form"' in html and 'name="confirm"' in html
    assert f'href="{url}"' in html  # Cancel
    assert Campaign.objects.get(pk=world.campaign.pk).status == CampaignStatus.ACTIVE

    # A close without the confirmation (an old page, a script) is sent to that page.
    unconfirmed = client.post(url + "status/", {"status": "closed", "current": "active"})
    assert unconfirmed.status_code == 302 and unconfirmed["Location"] == url + "close/"
    assert Campaign.objects.get(pk=world.campaign.pk).status == CampaignStatus.ACTIVE

    done = client.post(url + "status/", {"status": "closed", "current": "active",
                                         "confirm": "1"})
    assert done.status_code == 302 and done["Location"] == url
    assert Campaign.objects.get(pk=world.campaign.pk).status == CampaignStatus.CLOSED
    # Closed: nothing to confirm any more.
    again = client.get(url + "close/")
    assert again.status_code == 302 and again["Location"] == url


def test_progress_is_polled_as_json(world):
    cast(world.tasks[0], world.annotator, "a")
    data = logged_in(world.scientist).get(
        f"/campaigns/{world.campaign.pk}/manage/progress/").json()
    assert data["status"] == "active" and data["final"] is True
    assert (data["tasks"], data["votes_done"], data["votes_needed"], data["annotators"]) == (
        3, 1, 9, 1)


def test_a_build_with_nothing_to_ask_says_why_on_the_page_and_in_the_api():
    # Every K-set shows two runs' byte-identical files: no task, so no empty "active" campaign.
    world = build_campaign(runs=3, prompts=2, task_kind=TaskKind.BEST_OF_K, k=3,
                           image_bytes=lambda prompt, run: png_bytes(
                               color=(90 * prompt, 90 * max(run, 1), 0)))
    client = logged_in(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    not_asked = "2 sets not asked: two runs made the very same file"
    assert f'id="not-asked">{not_asked}</dd>' in page
    assert "Nothing to ask annotators, so the campaign was not opened." in page
    progress = client.get(f"/campaigns/{world.campaign.pk}/manage/progress/").json()
    assert (progress["status"], progress["skipped_identical"], progress["not_asked"]) == (
        "failed", 2, not_asked)
    api = APIClient()
    api.force_authenticate(world.scientist)
    report = api.get(f"/api/v1/campaigns/{world.campaign.pk}/").json()["build_report"]
    assert report["error"].startswith("Nothing to ask annotators")


def test_pairs_left_out_are_counted_on_the_page_by_reason(world):
    Campaign.objects.filter(pk=world.campaign.pk).update(build_report={
        "pairs": 10, "tasks_created": 5, "skipped_near_identical": 5, "skipped_identical": 1,
        "lpips_filter": True})
    page = logged_in(world.scientist).get(f"/campaigns/{world.campaign.pk}/manage/").content
    assert ("1 pair not asked: two runs made the very same file; 4 pairs not asked: too alike "
            "to judge") in page.decode()


# ---------------------------------------------------------------------------- metric judges


def test_a_metric_judge_is_queued_from_the_page_as_the_api_queues_it(
        world, sent_tasks, django_capture_on_commit_callbacks):
    client = logged_in(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert 'id="metric-judge-form"' in page and '<option value="clip_score"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/campaigns/{world.campaign.pk}/manage/metric-judge/",
                               {"metric": "clip_score", "epsilon": "0.5"})
    assert response.status_code == 302
    assert response["Location"].endswith("?judge_queued=clip_score#metric-judges")
    assert sent_tasks == [("evalhub.leaderboards.metric_judges",
                           [world.campaign.pk, "clip_score", 0.5])]
    after = client.get(response["Location"]).content.decode()
    assert 'id="judge-queued"' in after and "clip_score judge is queued" in after
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/campaigns/{world.campaign.pk}/manage/metric-judge/",
                    {"metric": "clip_score", "epsilon": ""})
    assert sent_tasks[-1] == ("evalhub.leaderboards.metric_judges",
                              [world.campaign.pk, "clip_score", None])  # the metric's default


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"metric": "fid"}, "metric", "Select a valid choice."),
    # The service's "epsilon must be …", in the words of the page: the field is "Tie below".
    ({"metric": "clip_score", "epsilon": "-1"}, "epsilon", "Tie below must be a number from 0"),
    ({"metric": "clip_score", "epsilon": "101"}, "epsilon", "Tie below must be a number from 0"),
    ({"metric": "clip_score", "epsilon": "nan"}, "epsilon", "Enter a number."),
    ({"metric": "clip_score", "epsilon": "abc"}, "epsilon", "Enter a number."),
])
def test_metric_judge_errors_are_next_to_their_field_and_queue_nothing(
        world, sent_tasks, django_capture_on_commit_callbacks, body, field, message):
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(world.scientist).post(
            f"/campaigns/{world.campaign.pk}/manage/metric-judge/", body)
    assert response.status_code == 400
    html = response.content.decode()
    error = html.split(f'id="id_{field}_error">', 1)[1].split("</div>", 1)[0]
    assert message in error and "epsilon" not in error
    assert sent_tasks == []


def test_a_best_of_k_campaign_says_why_it_has_no_metric_judge(
        sent_tasks, django_capture_on_commit_callbacks):
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    client = logged_in(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert 'id="metric-judge-form"' not in page
    assert "Metric judges compare pairs; this campaign shows best-of-K tasks." in page
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(f"/campaigns/{world.campaign.pk}/manage/metric-judge/",
                              {"metric": "clip_score"})
    assert refused.status_code == 400 and sent_tasks == []


class _FormsBySection(HTMLParser):
    """(section id, form action) of every POST form in a section of a page (the header's
    sign-out form is in none)."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.forms: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if tag == "section":
            self.sections.append(found.get("id") or "")
        elif tag == "form" and found.get("method") == "post" and self.sections:
            self.forms.append((self.sections[-1], found["action"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.sections.pop()


def test_every_form_of_the_page_comes_back_at_its_own_section(world):
    # A refused form is rendered at its POST URL: the action's fragment is what brings the
    # browser back to the form and its error, not to the top of an unchanged-looking page;
    # a form that succeeds redirects to the same section.
    Campaign.objects.filter(pk=world.campaign.pk).update(min_gold_for_flag=1)
    cast(_gold(world), world.annotator, "b")
    campaign_leaderboards_refresh(campaign=world.campaign)
    parser = _FormsBySection()
    parser.feed(logged_in(world.scientist).get(
        f"/campaigns/{world.campaign.pk}/manage/").content.decode())
    sections = {section for section, _ in parser.forms}
    assert sections == {"status-actions", "who-rates", "quality", "metric-judges", "gold"}
    for section, action in parser.forms:
        assert action.endswith(f"#{section}"), (section, action)


# ---------------------------------------------------------------------------- quality


def test_a_flagged_annotator_is_shown_and_excluded_then_included(world):
    Campaign.objects.filter(pk=world.campaign.pk).update(min_gold_for_flag=1)
    gold = _gold(world, answer="a")
    cast(gold, world.annotator, "b")  # wrong on the gold pair: accuracy 0
    cast(world.tasks[1], world.annotators[1], "a")
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/"
    page = client.get(url)
    flagged = [row.username for row in page.context["flagged"]]
    assert flagged == [world.annotator.username]
    assert "1 flagged or excluded" in page.content.decode()
    progress = {row.username: row.votes for row in page.context["annotators"]}
    assert progress == {world.annotator.username: 1, world.annotators[1].username: 1}
    client.post(url + "exclude/", {"annotator": world.annotator.pk, "excluded": "on"})
    assert AnnotatorFlag.objects.get(annotator=world.annotator).excluded
    assert 'data-action="include"' in client.get(url).content.decode()
    client.post(url + "exclude/", {"annotator": world.annotator.pk})
    assert not AnnotatorFlag.objects.get(annotator=world.annotator).excluded


def test_excluding_someone_outside_the_project_is_refused_like_a_missing_user(world, other):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/exclude/"
    foreign = client.post(url, {"annotator": other.annotator.pk, "excluded": "on"})
    missing = client.post(url, {"annotator": 999999999, "excluded": "on"})
    garbage = client.post(url, {"annotator": "x" * 30, "excluded": "on"})
    for response in (foreign, missing, garbage):
        assert response.status_code == 400
        assert "No such annotator in this project." in response.content.decode()
    assert AnnotatorFlag.objects.count() == 0


# ---------------------------------------------------------------------------- gold pairs


def test_gold_pairs_are_added_with_their_answer_and_removed(world):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/gold/"
    task = world.tasks[2]
    response = client.post(url, {"image_a": task.image_a_id, "image_b": task.image_b_id,
                                 "answer": "tie"})
    assert response.status_code == 302
    gold = ComparisonTask.objects.get(campaign=world.campaign, image_a=task.image_a,
                                      image_b=task.image_b)
    assert (gold.is_gold, gold.gold_answer) == (True, "tie")
    assert f'data-gold="{gold.pk}"' in client.get(
        f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert client.post(f"{url}{gold.pk}/remove/").status_code == 302
    assert not ComparisonTask.objects.filter(pk=gold.pk).exists()


def test_gold_errors_are_next_to_their_field_and_store_nothing(world, other):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/manage/gold/"
    first, second = world.tasks[0], world.tasks[1]
    before = ComparisonTask.objects.filter(is_gold=True).count()
    cases = [
        ({"image_a": first.image_a_id, "image_b": second.image_b_id, "answer": "a"},
         "image_b", "same prompt"),
        ({"image_a": other.tasks[0].image_a_id, "image_b": first.image_b_id, "answer": "a"},
         "image_a", "Select a valid choice"),
        ({"image_a": 999999999, "image_b": first.image_b_id, "answer": "a"},
         "image_a", "Select a valid choice"),
        ({"image_a": "9" * 25, "image_b": first.image_b_id, "answer": "a"},
         "image_a", "Select a valid choice"),
        ({"image_a": first.image_a_id, "image_b": first.image_b_id, "answer": "maybe"},
         "answer", "Select a valid choice"),
    ]
    for body, field, message in cases:
        response = client.post(url, body)
        assert response.status_code == 400
        errors = response.context["gold_form"].errors.get(field, [])
        assert any(message in error for error in errors), (body, errors)
        assert f'id="id_{field}_error"' in response.content.decode()
    assert ComparisonTask.objects.filter(is_gold=True).count() == before


def test_a_gold_pair_of_one_image_with_itself_is_refused_on_the_page(world):
    client = logged_in(world.scientist)
    image_id = world.tasks[0].image_a_id
    response = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/",
                           {"image_a": image_id, "image_b": image_id, "answer": "tie"})
    assert response.status_code == 400
    assert "image_a and image_b are the same image" in response.content.decode()
    assert not ComparisonTask.objects.filter(image_a_id=image_id, image_b_id=image_id).exists()


def test_a_gold_pair_of_two_rows_of_one_file_is_refused_in_the_service_and_on_the_page(world):
    # A run copied (imported twice): other Image rows, the same content-addressed blob.
    first = world.tasks[0]
    copy = GenerationRunFactory(checkpoint=first.run_a.checkpoint,
                                prompt_set=first.run_a.prompt_set)
    twin = ImageFactory(run=copy, prompt=first.prompt, seed=first.image_a.seed,
                        blob=first.image_a.blob)
    with pytest.raises(EvalHubError, match=f"images {first.image_a_id} and {twin.pk} are the "
                                           "same file"):
        gold_task_add(campaign=world.campaign, image_a=first.image_a, image_b=twin, answer="a")
    response = logged_in(world.scientist).post(
        f"/campaigns/{world.campaign.pk}/manage/gold/",
        {"image_a": twin.pk, "image_b": first.image_a_id, "answer": "tie"})
    assert response.status_code == 400
    assert any("same file" in error for error in response.context["gold_form"].errors["image_b"])
    assert not ComparisonTask.objects.filter(is_gold=True).exists()


def test_a_gold_pair_of_one_video_is_refused_but_two_videos_sharing_a_poster_are_not(world):
    data = [video_bytes(seed=seed) for seed in (1, 2)]
    clips = [video_store(data=clip, info=video_inspect(clip, name=f"{i}.mp4"), name=f"{i}.mp4")
             for i, clip in enumerate(data)]
    first = world.tasks[0]
    poster = clips[0].poster
    same, other_video = first.image_a, first.image_b
    Image.objects.filter(pk=same.pk).update(blob=poster, video=clips[0])
    copy = ImageFactory(run=GenerationRunFactory(checkpoint=first.run_a.checkpoint,
                                                 prompt_set=first.run_a.prompt_set),
                        prompt=first.prompt, seed=same.seed, blob=poster, video=clips[0])
    Image.objects.filter(pk=other_video.pk).update(blob=poster, video=clips[1])
    same.refresh_from_db()
    other_video.refresh_from_db()
    with pytest.raises(EvalHubError,
                       match=f"two different videos: videos {same.pk} and {copy.pk} are the"):
        gold_task_add(campaign=world.campaign, image_a=same, image_b=copy, answer="a")
    # One poster (the same middle frame), two different videos: a fair pair.
    gold = gold_task_add(campaign=world.campaign, image_a=same, image_b=other_video, answer="b")
    assert gold.is_gold


@pytest.mark.parametrize("status", [CampaignStatus.CLOSED, CampaignStatus.FAILED])
def test_a_campaign_that_is_over_takes_no_gold_pairs_and_a_failed_one_no_metric_judges(
        world, sent_tasks, django_capture_on_commit_callbacks, status):
    Campaign.objects.filter(pk=world.campaign.pk).update(status=status)
    world.campaign.refresh_from_db()
    task = world.tasks[0]
    failed = status == CampaignStatus.FAILED
    with pytest.raises(EvalHubError, match=f"is {status}: it takes no more gold pairs"):
        gold_task_add(campaign=world.campaign, image_a=task.image_a, image_b=task.image_b,
                      answer="a")
    client = logged_in(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert 'id="gold-form"' not in page and 'id="gold-over"' in page
    # A closed campaign's votes stay: a metric judge still reads them; a failed one has none.
    assert ('id="metric-judge-form"' in page) is not failed
    assert ('id="judges-refused"' in page) is failed
    with django_capture_on_commit_callbacks(execute=True):
        gold = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/",
                           {"image_a": task.image_a_id, "image_b": task.image_b_id,
                            "answer": "a"})
        judge = client.post(f"/campaigns/{world.campaign.pk}/manage/metric-judge/",
                            {"metric": "clip_score"})
    assert gold.status_code == 400
    assert f"is {status}: it takes no more gold pairs" in gold.content.decode()
    assert not ComparisonTask.objects.filter(is_gold=True).exists()
    api = APIClient()
    api.force_authenticate(world.scientist)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"/api/v1/campaigns/{world.campaign.pk}/metric-judges/",
                          {"metric": "clip_score"}, format="json")
    if failed:
        assert judge.status_code == answer.status_code == 400 and sent_tasks == []
        assert "failed: it has no tasks for a metric judge" in answer.json()["detail"]
    else:
        assert judge.status_code == 302 and answer.status_code == 202
        assert [name for name, _ in sent_tasks] == ["evalhub.leaderboards.metric_judges"] * 2


def test_a_voted_gold_pair_stays_and_another_campaigns_pair_is_refused(world, other):
    client = logged_in(world.scientist)
    gold = _gold(world)
    cast(gold, world.annotator, "a")
    voted = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/{gold.pk}/remove/")
    assert voted.status_code == 400 and "has 1 vote" in voted.content.decode()
    theirs = gold_task_add(campaign=other.campaign, image_a=other.tasks[0].image_a,
                           image_b=other.tasks[0].image_b, answer="a")
    foreign = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/{theirs.pk}/remove/")
    missing = client.post(f"/campaigns/{world.campaign.pk}/manage/gold/999999999/remove/")
    assert foreign.status_code == missing.status_code == 400
    assert ComparisonTask.objects.filter(pk__in=[gold.pk, theirs.pk]).count() == 2
