"""The annotator API: blind payloads, idempotent votes, leases that are not yours."""

import json
import uuid

import pytest

from evalhub.campaigns.models import ImageReport, Judgment, Lease, LeaseStatus
from tests.builders import build_campaign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET_NAMES = ["sdxl-secret-finetune", "flux-hidden-ablation"]


@pytest.fixture
def world():
    return build_campaign(prompts=3, run_names=SECRET_NAMES, instructions="Pick the better one.")


def _url(world, suffix=""):
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


def test_the_rating_api_never_reveals_run_checkpoint_or_model_names(api, world):
    api.force_login(world.annotators[0])
    bodies = [api.get(_url(world)).content, api.post(_url(world, "next/"), {}, format="json")
              .content, api.get(_url(world, "leases/")).content]
    names = SECRET_NAMES + [r.checkpoint.name for r in world.runs] + [
        world.runs[0].checkpoint.model.name]
    for body in bodies:
        for name in names:
            assert name.encode() not in body


def test_next_returns_a_task_with_two_images_and_the_prompt(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    assert task["prompt"] in {p.text for p in world.prompts}
    assert task["left"]["url"] != task["right"]["url"]
    assert task["left"]["tiles"] is None
    assert api.get(_url(world, "leases/")).json()[0]["lease"] == task["lease"]


def test_a_vote_is_201_then_200_for_the_same_client_id(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": "right"}, "latency_ms": 1234}
    first = api.post(_url(world, "votes/"), vote, format="json")
    second = api.post(_url(world, "votes/"), vote, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert Judgment.objects.count() == 1
    assert first.json()["progress"]["my_votes"] == 1


def test_voting_on_someone_elses_lease_is_forbidden(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    api.force_login(world.annotators[1])
    response = api.post(_url(world, "votes/"), {
        "client_id": str(uuid.uuid4()), "lease": task["lease"], "answers": {"overall": "left"}},
        format="json")
    assert response.status_code == 403
    assert "not leased to you" in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_a_non_member_cannot_see_or_rate_the_campaign(api, world):
    api.force_login(UserFactory())
    assert api.get(_url(world)).status_code == 404
    assert api.post(_url(world, "next/"), {}, format="json").status_code == 404


def test_malformed_votes_are_refused_clearly(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    bad = api.post(_url(world, "votes/"), {"client_id": "nope", "lease": task["lease"],
                                           "answers": {"overall": "up"}}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) >= {"client_id", "answers"}


def test_skip_and_report_close_the_lease(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    skipped = api.post(_url(world, f"leases/{task['lease']}/skip/"))
    assert skipped.json()["status"] == "skipped"
    task = api.post(_url(world, "next/"), {}, format="json").json()
    report = api.post(_url(world, f"leases/{task['lease']}/report/"),
                      {"side": "left", "note": "all black"}, format="json")
    assert report.json()["status"] == "reported"
    assert ImageReport.objects.get().note == "all black"


def test_reporting_the_source_image_of_a_task_without_one_is_refused(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    assert task["source_image"] is None
    report = api.post(_url(world, f"leases/{task['lease']}/report/"), {"side": "source"},
                      format="json")
    assert report.status_code == 400
    assert report.json()["detail"] == "This task has no source image to report."
    assert not ImageReport.objects.exists()
    assert Lease.objects.get(pk=task["lease"]).status == LeaseStatus.ACTIVE


def test_undo_gives_the_task_back(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    client_id = str(uuid.uuid4())
    api.post(_url(world, "votes/"), {"client_id": client_id, "lease": task["lease"],
                                     "answers": {"overall": "left"}}, format="json")
    answer = api.post(_url(world, "votes/undo/"), {"client_id": client_id}, format="json")
    assert answer.status_code == 201
    back = answer.json()
    assert (back["prompt"], back["left"], back["right"]) == (task["prompt"], task["left"],
                                                             task["right"])
    assert Judgment.objects.filter(retracted_at__isnull=True).count() == 0


def test_undo_of_a_pair_someone_else_now_holds_only_retracts_the_vote(api):
    world = build_campaign(prompts=1, annotators=2, judgments_per_pair=2)
    first, second = world.annotators
    api.force_login(first)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    client_id = str(uuid.uuid4())
    api.post(_url(world, "votes/"), {"client_id": client_id, "lease": task["lease"],
                                     "answers": {"overall": "left"}}, format="json")
    api.force_login(second)
    assert api.post(_url(world, "next/"), {}, format="json").status_code == 201
    api.force_login(first)
    answer = api.post(_url(world, "votes/undo/"), {"client_id": client_id}, format="json")
    assert answer.status_code == 200
    assert answer.json()["retracted"] is True
    assert "Another annotator is rating this pair" in answer.json()["detail"]
    assert Judgment.objects.filter(retracted_at__isnull=True).count() == 0


def test_when_everything_is_rated_the_api_says_so(api, world):
    api.force_login(world.annotators[0])
    for _ in range(3):
        task = api.post(_url(world, "next/"), {}, format="json").json()
        api.post(_url(world, "votes/"), {"client_id": str(uuid.uuid4()), "lease": task["lease"],
                                         "answers": {"overall": "tie"}}, format="json")
    done = api.post(_url(world, "next/"), {}, format="json")
    assert done.status_code == 200 and done.json()["done"] is True


def test_the_rate_page_is_for_members_only(client, world):
    client.force_login(world.annotators[0])
    page = client.get(f"/rate/{world.campaign.pk}/")
    assert page.status_code == 200
    for name in SECRET_NAMES:
        assert name not in page.content.decode()
    client.force_login(UserFactory())
    assert client.get(f"/rate/{world.campaign.pk}/").status_code == 404


def test_scientists_create_campaigns_and_read_quality(api, world):
    api.force_login(world.scientist)
    created = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "second",
        "runs": [r.pk for r in world.runs], "criteria": ["overall", "alignment"],
        "judgments_per_pair": 2}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "building"
    quality = api.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    assert set(quality) == {"annotators", "agreement", "latency_outliers"}
    api.force_login(world.annotators[0])
    assert api.get(f"/api/v1/campaigns/{world.campaign.pk}/").status_code == 404
    denied = api.post("/api/v1/campaigns/", {"project": world.campaign.project_id,
                                             "name": "x", "runs": [r.pk for r in world.runs]},
                      format="json")
    # Refused by role before the runs are read: nothing about them is told.
    assert denied.status_code == 403
    assert denied.json()["detail"] == "Your role in this project (annotator) does not allow this."
    assert world.campaign.project.campaigns.count() == 2
    assert json.dumps(created.json()).count("alignment") == 1


def test_a_vote_can_fetch_the_next_task_in_the_same_round_trip(api, world):
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json").json()
    response = api.post(_url(world, "votes/"), {
        "client_id": str(uuid.uuid4()), "lease": task["lease"], "answers": {"overall": "left"},
        "next": {"exclude": [task["lease"]]}}, format="json").json()
    assert response["next"]["lease"] != task["lease"]
    assert response["next"]["prompt"]


def test_the_vote_endpoint_takes_an_api_token(api, world):
    from rest_framework.authtoken.models import Token

    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.annotators[0])}")
    task = api.post(_url(world, "next/"), {}, format="json").json()
    response = api.post(_url(world, "votes/"), {"client_id": str(uuid.uuid4()),
                                                "lease": task["lease"],
                                                "answers": {"overall": "both_bad"}},
                        format="json")
    assert response.status_code == 201
    assert Judgment.objects.get().annotator == world.annotators[0]


def test_rating_without_valid_credentials_is_401(api, world):
    assert api.post(_url(world, "next/"), {}, format="json").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    refused = api.post(_url(world, "votes/"), {}, format="json")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"


def test_a_session_vote_without_the_csrf_token_is_refused(world):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.annotators[0])
    refused = browser.post(_url(world, "next/"), {}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get(f"/rate/{world.campaign.pk}/")  # the page sets the csrftoken cookie
    allowed = browser.post(_url(world, "next/"), {}, format="json",
                           HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert allowed.status_code == 201


def test_the_best_of_k_payload_never_reveals_run_checkpoint_or_model_names(api):
    from evalhub.campaigns.models import TaskKind

    names = [*SECRET_NAMES, "kandinsky-private", "pixart-internal"]
    world = build_campaign(runs=4, prompts=2, run_names=names, task_kind=TaskKind.BEST_OF_K,
                           k=4)
    api.force_login(world.annotators[0])
    task = api.post(_url(world, "next/"), {}, format="json")
    assert len(task.json()["images"]) == 4
    vote = api.post(_url(world, "votes/"), {
        "client_id": str(uuid.uuid4()), "lease": task.json()["lease"],
        "rankings": {"overall": [1]}, "next": {"exclude": []}}, format="json")
    bodies = [api.get(_url(world)).content, task.content, vote.content,
              api.get(_url(world, "leases/")).content]
    secrets = names + [r.checkpoint.name for r in world.runs] + [
        world.runs[0].checkpoint.model.name]
    for body in bodies:
        for name in secrets:
            assert name.encode() not in body
        # Nor anything that would name a run or an image: ids, positions, hashes.
        for key in (b'"run', b'"image_id"', b'"position"', b'"sha256"', b'"order"'):
            assert key not in body

