"""Limits on guessing and on flooding: sign-in (django-axes) and the rating API (DRF throttle).

Sign-in: after ``AXES_FAILURE_LIMIT`` failed attempts for one username, or from one address,
every attempt for that username or from that address is refused with 429, the right password
included, on the login page and on the API token endpoint alike, until the cool-off passes
(or an operator resets it). Rating: an annotator's requests to ``next/`` and ``votes/`` are
counted together; past the rate they are answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import Judgment
from tests.builders import build_campaign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw"  # tests.factories.UserFactory's password
ALICE_IP, BOB_IP, CAROL_IP = "203.0.113.10", "198.51.100.20", "192.0.2.30"


def _login(username: str, password: str, ip: str):
    return Client(REMOTE_ADDR=ip).post("/accounts/login/",
                                       {"username": username, "password": password})


def _token(username: str, password: str, ip: str):
    return Client(REMOTE_ADDR=ip).post("/api/v1/auth/token/",
                                       {"username": username, "password": password},
                                       content_type="application/json")


def _fail_until_locked(username: str, ip: str, attempt=_login) -> list[int]:
    """Post a wrong password as many times as the limit allows; the answers' status codes."""
    return [attempt(username, "wrong", ip).status_code
            for _ in range(settings.AXES_FAILURE_LIMIT)]


def test_the_login_page_refuses_even_the_right_password_after_the_failure_limit():
    alice = UserFactory()
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302  # signs in
    codes = _fail_until_locked(alice.username, ALICE_IP)
    # Each failure but the last shows the form again; the last one starts the lockout.
    assert codes[:-1] == [200] * (len(codes) - 1) and codes[-1] == 429
    refused = _login(alice.username, PASSWORD, ALICE_IP)
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Sign-in paused" in page and "even with the right password" in page
    assert "sessionid" not in refused.cookies


def test_the_token_endpoint_refuses_even_the_right_password_after_the_failure_limit():
    alice = UserFactory()
    assert _token(alice.username, PASSWORD, ALICE_IP).status_code == 200
    codes = _fail_until_locked(alice.username, ALICE_IP, attempt=_token)
    assert codes[:-1] == [400] * (len(codes) - 1) and codes[-1] == 429
    refused = _token(alice.username, PASSWORD, ALICE_IP)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.json()["detail"]
    assert "token" not in refused.json()
    assert int(refused["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()


def test_failures_on_one_endpoint_count_on_the_other():
    alice = UserFactory()
    half = settings.AXES_FAILURE_LIMIT // 2
    for _ in range(half):
        _token(alice.username, "wrong", ALICE_IP)
    for _ in range(settings.AXES_FAILURE_LIMIT - half):
        _login(alice.username, "wrong", ALICE_IP)
    assert _token(alice.username, PASSWORD, ALICE_IP).status_code == 429


def test_a_locked_account_is_locked_from_every_address_and_a_locked_address_for_every_user():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    _fail_until_locked(alice.username, ALICE_IP)
    # Per account: alice's password guessed from elsewhere is refused too.
    assert _login(alice.username, PASSWORD, CAROL_IP).status_code == 429
    # Per address: the guessing address may not try another account either.
    assert _login(bob.username, PASSWORD, ALICE_IP).status_code == 429
    # Another user from another address is not affected.
    assert _login(bob.username, PASSWORD, BOB_IP).status_code == 302
    assert _token(carol.username, PASSWORD, BOB_IP).status_code == 200


def test_a_wrong_password_below_the_limit_does_not_lock():
    alice = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(alice.username, "wrong", ALICE_IP).status_code == 200
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302


@pytest.mark.parametrize(("field", "value", "error"), [
    ("username", "x" * 20_000, "at most 150 characters (it has 20000)"),
    ("password", "p" * 4097, "at most 4096 characters (it has 4097)"),
])
def test_a_username_or_password_longer_than_any_is_refused_at_its_field_and_never_tried(
        field, value, error):
    # The username reached authenticate() and django-axes's 255-character column: a 500 that
    # anyone could cause; the token endpoint had these limits already.
    alice = UserFactory()
    body = {"username": alice.username, "password": PASSWORD} | {field: value}
    page = Client(REMOTE_ADDR=ALICE_IP).post("/accounts/login/", body)
    assert page.status_code == 200
    assert error in str(page.context["form"].errors[field])
    assert "Wrong username or password." in page.content.decode()  # the page's one message
    assert not AccessAttempt.objects.exists()  # never tried: no failure counted
    token = _token(body["username"], body["password"], ALICE_IP)
    assert token.status_code == 400 and list(token.json()) == [field]
    admin = Client(REMOTE_ADDR=ALICE_IP).post("/admin/login/", body)
    assert admin.status_code == 200 and error in str(admin.context["form"].errors[field])
    assert not AccessAttempt.objects.exists()
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302


def test_the_lockout_ends_after_the_cool_off():
    alice = UserFactory()
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=1)):
        _fail_until_locked(alice.username, ALICE_IP)
        assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 429
        # A refused attempt restarts the cool-off: wait it out from the last attempt.
        time.sleep(1.2)
        assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302


def test_an_operator_lifts_a_lockout_with_axes_commands():
    alice = UserFactory()
    quiet = {"stdout": io.StringIO()}
    _fail_until_locked(alice.username, ALICE_IP)
    call_command("axes_reset_username", alice.username, **quiet)
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302
    _fail_until_locked(alice.username, ALICE_IP)
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 429
    call_command("axes_reset_ip", ALICE_IP, **quiet)
    assert _login(alice.username, PASSWORD, ALICE_IP).status_code == 302


@override_settings(EVALHUB_PROXY_COUNT=1)
def test_behind_one_proxy_the_address_is_the_one_the_proxy_saw():
    alice, bob = UserFactory(), UserFactory()
    proxy = Client(REMOTE_ADDR="10.0.0.2")  # every request arrives from the proxy
    for _ in range(settings.AXES_FAILURE_LIMIT):
        # The client forges a first X-Forwarded-For entry; the proxy appends the real one.
        proxy.post("/accounts/login/", {"username": alice.username, "password": "wrong"},
                   HTTP_X_FORWARDED_FOR=f"{BOB_IP}, {ALICE_IP}")
    # The real address is locked; the forged one and the proxy's own are not.
    assert proxy.post("/accounts/login/", {"username": bob.username, "password": PASSWORD},
                      HTTP_X_FORWARDED_FOR=ALICE_IP).status_code == 429
    assert proxy.post("/accounts/login/", {"username": bob.username, "password": PASSWORD},
                      HTTP_X_FORWARDED_FOR=BOB_IP).status_code == 302


def _rating_limit() -> int:
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["rating"]
    if rate is None:
        pytest.skip("EVALHUB_RATING_THROTTLE is empty: the rating API is not throttled")
    return int(rate.split("/")[0])


def test_an_annotator_past_the_rating_rate_is_answered_429_and_others_are_not(api):
    limit = _rating_limit()
    world = build_campaign(prompts=6, annotators=2)
    fast, other = world.annotators
    url = f"/api/v1/rate/{world.campaign.pk}/"
    api.force_login(fast)
    lease = api.post(f"{url}next/", {}, format="json").json()["lease"]
    for _ in range(limit - 1):
        assert api.post(f"{url}next/", {"exclude": [lease]}, format="json").status_code < 429
    # next/ and votes/ share one count: the vote is over the limit too.
    vote = api.post(f"{url}votes/", {"client_id": str(uuid.uuid4()), "lease": lease,
                                     "answers": {"overall": "left"}}, format="json")
    assert vote.status_code == 429
    assert 0 < int(vote["Retry-After"]) <= 60
    assert not Judgment.objects.filter(campaign=world.campaign).exists()
    assert api.post(f"{url}next/", {}, format="json").status_code == 429
    # Per annotator: another one (here by API token) rates on.
    api.logout()
    token = Token.objects.create(user=other)
    answer = api.post(f"{url}next/", {}, format="json", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert answer.status_code == 201
