"""The rating page's rating tokens: signed for one user and one campaign, short-lived, and
checked against the account and the membership on every vote, on both rating paths."""

from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace

import pytest
from django.core import signing
from django.test import Client

from evalhub.campaigns.models import Judgment
from evalhub.campaigns.raters import BadCredentials
from evalhub.campaigns.rating_tokens import (
    EXPIRED,
    INVALID,
    OTHER_CAMPAIGN,
    RATING_TOKEN_SECONDS,
    rating_token_issue,
    rating_token_user_id,
)
from evalhub.config.wsgi import application, django_application
from evalhub.projects.models import Membership
from tests.campaigns.builders import build_campaign
from tests.campaigns.test_rating_fast_path import wsgi_post


def _issued_seconds_ago(monkeypatch, seconds: float, **claims) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(signing, "time", SimpleNamespace(time=lambda: time.time() - seconds))
        return rating_token_issue(**claims)


# ---------------------------------------------------------------- the token itself


def test_a_token_names_the_user_it_was_issued_to():
    token = rating_token_issue(user_id=41, campaign_id=7)
    assert rating_token_user_id(token, campaign_id=7) == 41


def test_a_token_is_good_for_its_lifetime_and_not_after(monkeypatch):
    fresh = _issued_seconds_ago(monkeypatch, RATING_TOKEN_SECONDS - 60, user_id=1, campaign_id=2)
    stale = _issued_seconds_ago(monkeypatch, RATING_TOKEN_SECONDS + 1, user_id=1, campaign_id=2)
    assert rating_token_user_id(fresh, campaign_id=2) == 1
    with pytest.raises(BadCredentials, match=EXPIRED):
        rating_token_user_id(stale, campaign_id=2)


def test_a_token_for_one_campaign_does_not_open_another():
    token = rating_token_issue(user_id=1, campaign_id=2)
    with pytest.raises(BadCredentials, match=OTHER_CAMPAIGN):
        rating_token_user_id(token, campaign_id=3)


@pytest.mark.parametrize("forge", [
    lambda token: token.replace("1:2:", "9:2:", 1),  # another user, same signature
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature edited
    lambda token: signing.TimestampSigner(salt="another purpose").sign("1:2"),
    lambda token: signing.TimestampSigner(key="not our secret", salt="x").sign("1:2"),
    lambda token: "1:2",
])
def test_a_forged_or_edited_token_is_refused(forge):
    token = rating_token_issue(user_id=1, campaign_id=2)
    with pytest.raises(BadCredentials, match=INVALID):
        rating_token_user_id(forge(token), campaign_id=2)


# ---------------------------------------------------------------- rating with it

@pytest.fixture
def world():
    return build_campaign(prompts=4, annotators=2)


def _rating(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Rating {token}"}


def _paths(world):
    base = f"/api/v1/rate/{world.campaign.pk}"
    return f"{base}/next/", f"{base}/votes/"


def _token(world, annotator=0) -> str:
    return rating_token_issue(user_id=world.annotators[annotator].pk,
                              campaign_id=world.campaign.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("rating_path")
def test_the_page_rates_with_its_token_alone_no_session_no_csrf(world):
    next_path, votes_path = _paths(world)
    auth = _rating(_token(world))
    task = wsgi_post(application, next_path, **auth)
    assert task.status_code == 201
    vote = {"client_id": str(uuid.uuid4()), "lease": task.json()["lease"],
            "answers": {"overall": "left"}, "latency_ms": 800}
    first = wsgi_post(application, votes_path, vote, **auth)
    retry = wsgi_post(application, votes_path, vote, **auth)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["progress"]["my_votes"] == 1
    assert Judgment.objects.get(client_id=vote["client_id"]).annotator == world.annotators[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("rating_path")
def test_rating_token_requests_skip_the_full_django_stack(world, monkeypatch):
    def full_stack(environ, start_response):
        raise AssertionError("a rating-token vote reached the full Django stack")

    monkeypatch.setattr(application, "django_app", full_stack)
    next_path, _ = _paths(world)
    assert wsgi_post(application, next_path, **_rating(_token(world))).status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("rating_path")
@pytest.mark.parametrize("case", ["expired", "edited", "other_campaign", "malformed"])
def test_a_bad_rating_token_is_answered_401_alike_by_both_stacks(world, monkeypatch, case):
    _, votes_path = _paths(world)
    user, campaign = world.annotators[0].pk, world.campaign.pk
    tokens = {
        "expired": _issued_seconds_ago(monkeypatch, RATING_TOKEN_SECONDS + 5, user_id=user,
                                       campaign_id=campaign),
        "edited": _token(world)[:-1] + "#",
        "other_campaign": rating_token_issue(user_id=user, campaign_id=campaign + 1),
        "malformed": "two words",
    }
    vote = {"client_id": str(uuid.uuid4()), "lease": str(uuid.uuid4()),
            "answers": {"overall": "left"}}
    fast = wsgi_post(application, votes_path, vote, **_rating(tokens[case]))
    full = wsgi_post(django_application, votes_path, vote, **_rating(tokens[case]))
    assert fast.status_code == full.status_code == 401
    assert fast.json() == full.json()
    assert fast.headers["WWW-Authenticate"] == full.headers["WWW-Authenticate"] == "Rating"
    expected = {"expired": EXPIRED, "edited": INVALID, "other_campaign": OTHER_CAMPAIGN,
                "malformed": "Invalid token header."}
    assert fast.json()["detail"] == expected[case]
    assert not Judgment.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("rating_path")
def test_a_deactivated_annotators_token_stops_working_at_once(world):
    next_path, votes_path = _paths(world)
    auth = _rating(_token(world))
    task = wsgi_post(application, next_path, **auth).json()
    annotator = world.annotators[0]
    annotator.is_active = False
    annotator.save(update_fields=["is_active"])
    vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": "left"}}
    refused = wsgi_post(application, votes_path, vote, **auth)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Rating"
    # Bad input does not tell a deactivated account anything else.
    assert wsgi_post(application, votes_path, {}, **auth).status_code == 401
    assert wsgi_post(application, next_path, **auth).status_code == 401
    assert not Judgment.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("rating_path")
def test_an_annotator_removed_from_the_project_is_told_the_campaign_is_gone(world):
    next_path, _ = _paths(world)
    auth = _rating(_token(world))
    Membership.objects.filter(user=world.annotators[0]).delete()
    answer = wsgi_post(application, next_path, **auth)
    assert answer.status_code == 404 and answer.json() == {"detail": "No such campaign."}


# ---------------------------------------------------------------- where the page gets it


@pytest.mark.django_db
def test_the_rating_page_embeds_a_token_for_its_user_and_campaign(world, client):
    annotator = world.annotators[1]
    client.force_login(annotator)
    page = client.get(f"/rate/{world.campaign.pk}/")
    assert page.status_code == 200
    config = json.loads(page.content.decode().split('id="rate-config" type="application/json">')
                        [1].split("</script>")[0])
    assert rating_token_user_id(config["rating_token"],
                                campaign_id=world.campaign.pk) == annotator.pk


@pytest.mark.django_db
def test_a_signed_in_member_gets_a_fresh_token_through_the_session(world, client):
    client.force_login(world.annotators[0])
    answer = client.post(f"/api/v1/rate/{world.campaign.pk}/rating-token/",
                         content_type="application/json")
    assert answer.status_code == 201
    assert answer.json()["expires_in"] == RATING_TOKEN_SECONDS
    assert rating_token_user_id(answer.json()["token"],
                                campaign_id=world.campaign.pk) == world.annotators[0].pk


@pytest.mark.django_db
def test_no_token_for_outsiders_or_anonymous_callers(world, client, django_user_model):
    url = f"/api/v1/rate/{world.campaign.pk}/rating-token/"
    assert client.post(url).status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("outsider", password="x"))
    assert client.post(url).status_code == 404


@pytest.mark.django_db
def test_the_token_endpoint_keeps_the_csrf_check_for_sessions(world):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.annotators[0])
    answer = browser.post(f"/api/v1/rate/{world.campaign.pk}/rating-token/")
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
