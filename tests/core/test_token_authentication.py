"""API tokens authenticate as DRF's TokenAuthentication does, through one compiled lookup."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/projects/"


def _get(token: str, **headers) -> tuple[int, dict]:
    response = Client().get(ME, HTTP_AUTHORIZATION=f"Token {token}", **headers)
    return response.status_code, response.json()


def test_a_valid_token_authenticates_its_user_on_every_request():
    first, second = (Token.objects.create(user=UserFactory()) for _ in range(2))
    for token in (first, second, first):
        assert _get(token.key)[0] == 200


def test_an_unknown_token_is_refused_with_drfs_message():
    status, body = _get("0" * 40)
    assert status == 401
    assert body["detail"] == "Invalid token."


def test_the_token_of_an_inactive_user_is_refused():
    token = Token.objects.create(user=UserFactory(is_active=False))
    status, body = _get(token.key)
    assert status == 401
    assert body["detail"] == "User inactive or deleted."


def test_a_deleted_token_stops_working_at_once():
    token = Token.objects.create(user=UserFactory())
    assert _get(token.key)[0] == 200
    token.delete()
    assert _get(token.key)[0] == 401


@pytest.mark.parametrize("header", ["Token", "Token a b"])
def test_malformed_headers_are_refused_not_crashed(header):
    response = Client().get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
