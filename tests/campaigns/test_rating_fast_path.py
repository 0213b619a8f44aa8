"""API-token votes skip Django's middleware, and answer exactly as through the full stack.

These tests call the deployed WSGI application (evalhub.config.wsgi.application, what gunicorn
serves) with real WSGI requests, and the same requests to Django's own handler behind it.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable

import pytest
from django.middleware.csrf import get_token
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import Judgment
from evalhub.config.wsgi import application, django_application
from tests.campaigns.builders import build_campaign

# Real requests open and close their own database connections: no wrapping test transaction.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("rating_path")]


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


def wsgi_post(app: Callable, path: str, body: object = None, *, raw: bytes | None = None,
              host: str = "testserver", **headers: str) -> Answer:
    data = raw if raw is not None else json.dumps(body or {}).encode()
    environ = RequestFactory().generic("POST", path, data, content_type="application/json",
                                       HTTP_HOST=host, **headers).environ
    environ["wsgi.input"] = io.BytesIO(data)
    started = {}

    def start_response(status, response_headers):
        started.update(status=status, headers=response_headers)

    response = app(environ, start_response)
    try:
        content = b"".join(response)
    finally:
        response.close()
    return Answer(started["status"], started["headers"], content)


@pytest.fixture
def world():
    return build_campaign(prompts=4, annotators=2)


@pytest.fixture
def token(world):
    return Token.objects.create(user=world.annotators[0]).key


def _paths(world):
    base = f"/api/v1/rate/{world.campaign.pk}"
    return f"{base}/next/", f"{base}/votes/"


def test_a_token_annotator_rates_through_the_deployed_application(world, token):
    next_path, votes_path = _paths(world)
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    task = wsgi_post(application, next_path, **auth)
    assert task.status_code == 201 and task.json()["lease"]
    vote = {"client_id": str(uuid.uuid4()), "lease": task.json()["lease"],
            "answers": {"overall": "left"}, "latency_ms": 900,
            "next": {"exclude": [task.json()["lease"]]}}
    first = wsgi_post(application, votes_path, vote, **auth)
    retry = wsgi_post(application, votes_path, vote, **auth)
    assert first.status_code == 201 and retry.status_code == 200
    assert first.json()["progress"]["my_votes"] == 1
    assert first.json()["next"]["lease"] != task.json()["lease"]
    assert Judgment.objects.filter(client_id=vote["client_id"]).count() == 1
    # The length lets gunicorn keep the connection alive without chunked encoding.
    assert first.headers["Content-Length"] == str(len(first.body))
    # The security headers of every other response.
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("case", ["bad_token", "malformed_token", "not_your_lease",
                                  "invalid_json", "missing_fields", "unknown_campaign"])
def test_refusals_are_word_for_word_those_of_the_full_django_stack(world, token, case):
    next_path, votes_path = _paths(world)
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    other = Token.objects.create(user=world.annotators[1]).key
    others_lease = wsgi_post(application, next_path, HTTP_AUTHORIZATION=f"Token {other}")
    vote = {"client_id": str(uuid.uuid4()), "lease": others_lease.json()["lease"],
            "answers": {"overall": "left"}}
    requests = {
        "bad_token": (votes_path, vote, None, {"HTTP_AUTHORIZATION": "Token nope"}),
        "malformed_token": (votes_path, vote, None, {"HTTP_AUTHORIZATION": "Token a b"}),
        "not_your_lease": (votes_path, vote, None, auth),
        "invalid_json": (votes_path, None, b"{not json", auth),
        "missing_fields": (votes_path, {"answers": {"overall": "left"}}, None, auth),
        "unknown_campaign": ("/api/v1/rate/999999/votes/", vote, None, auth),
    }
    path, body, raw, headers = requests[case]
    fast = wsgi_post(application, path, body, raw=raw, **headers)
    full = wsgi_post(django_application, path, body, raw=raw, **headers)
    assert fast.status_code == full.status_code >= 400
    assert fast.json() == full.json()
    assert fast.headers.get("WWW-Authenticate") == full.headers.get("WWW-Authenticate")
    assert not Judgment.objects.exists()


def test_the_rating_pages_session_requests_go_through_django_and_its_csrf_check(world,
                                                                            client):
    next_path, votes_path = _paths(world)
    client.force_login(world.annotators[0])
    session = {"HTTP_COOKIE": f"sessionid={client.cookies['sessionid'].value}"}
    refused = wsgi_post(application, next_path, **session)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    csrf = get_token(RequestFactory().get("/"))
    page = {"HTTP_X_CSRFTOKEN": csrf, "HTTP_COOKIE": f"{session['HTTP_COOKIE']}; csrftoken={csrf}"}
    task = wsgi_post(application, next_path, **page)
    assert task.status_code == 201 and task.json()["lease"]
    vote = {"client_id": str(uuid.uuid4()), "lease": task.json()["lease"],
            "answers": {"overall": "right"}}
    assert wsgi_post(application, votes_path, vote, **page).status_code == 201
    assert Judgment.objects.get(client_id=vote["client_id"]).annotator == world.annotators[0]


def test_a_host_not_in_allowed_hosts_is_refused_before_any_work(world, token):
    next_path, _ = _paths(world)
    answer = wsgi_post(application, next_path, host="evil.example",
                       HTTP_AUTHORIZATION=f"Token {token}")
    assert answer.status_code == 400
    assert not world.campaign.leases.exists()


def test_an_unexpected_error_is_logged_and_answered_500_in_json(world, token, monkeypatch,
                                                               caplog):
    import evalhub.campaigns.rating_views as views

    def broken(**kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(views, "rate_next", broken)
    next_path, _ = _paths(world)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = wsgi_post(application, next_path, HTTP_AUTHORIZATION=f"Token {token}")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "A server error occurred."}
    assert "the disk is on fire" in caplog.text
