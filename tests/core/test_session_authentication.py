"""Signed-in pages read their user through EvalHub's ModelBackend: one compiled query, with
every check of Django's (active user, the password hash in the session); sessions signed in
through Django's own ModelBackend before it stay signed in and are carried over."""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from evalhub.core.authentication import DJANGO_MODEL_BACKEND, MODEL_BACKEND, ModelBackend
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/projects/"  # any page that needs a signed-in user
PASSWORD = "pw"  # tests.factories.UserFactory's password


def _signed_in(user, backend: str = MODEL_BACKEND) -> Client:
    """A browser holding a session as signing in leaves it, naming ``backend``."""
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: backend})
    session.create()
    client = Client()
    client.cookies["sessionid"] = session.session_key
    return client


def _stored_backend(client: Client) -> str:
    return SessionStore(client.cookies["sessionid"].value).load()[BACKEND_SESSION_KEY]


def test_signing_in_on_the_login_page_names_evalhubs_backend_and_serves_the_user():
    user = UserFactory()
    client = Client()
    assert client.post("/accounts/login/", {"username": user.username,
                                            "password": PASSWORD}).status_code == 302
    assert _stored_backend(client) == MODEL_BACKEND
    assert client.get(ME).status_code == 200


def test_a_wrong_password_is_refused():
    user = UserFactory()
    response = Client().post("/accounts/login/", {"username": user.username,
                                                  "password": "wrong"})
    assert response.status_code == 200  # the form again
    assert "sessionid" not in response.cookies


def test_a_session_signed_in_through_djangos_backend_stays_signed_in_and_is_carried_over():
    user = UserFactory()
    client = _signed_in(user, backend=DJANGO_MODEL_BACKEND)
    assert client.get(ME).status_code == 200
    assert _stored_backend(client) == MODEL_BACKEND
    assert client.get(ME).status_code == 200


def test_the_session_of_a_deactivated_user_is_refused():
    user = UserFactory()
    client = _signed_in(user)
    assert client.get(ME).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(ME).status_code == 401  # DRF: not signed in


def test_a_password_change_elsewhere_ends_the_session():
    user = UserFactory()
    client = _signed_in(user)
    assert client.get(ME).status_code == 200
    user.set_password("another password")
    user.save()
    assert client.get(ME).status_code == 401  # DRF: not signed in
    # Flushed: the old session is gone for good, even once the hash would match again.
    assert not SessionStore().exists(client.cookies["sessionid"].value)


def test_the_session_of_a_deleted_user_is_anonymous():
    user = UserFactory()
    client = _signed_in(user)
    user.delete()
    assert client.get(ME).status_code == 401  # DRF: not signed in


def test_a_session_naming_an_unlisted_backend_is_anonymous():
    client = _signed_in(UserFactory(), backend="django.contrib.auth.backends.RemoteUserBackend")
    assert client.get(ME).status_code == 401  # DRF: not signed in


def test_get_user_reads_one_row_with_one_query_and_returns_nothing_for_an_unknown_id():
    user = UserFactory()
    backend = ModelBackend()
    with CaptureQueriesContext(connection) as queries:
        found = backend.get_user(user.pk)
    assert found == user and len(queries) == 1
    assert found.password == user.password  # the whole row: the session hash needs it
    assert backend.get_user(user.pk + 1000) is None
    user.is_active = False
    user.save()
    assert backend.get_user(user.pk) is None


@pytest.mark.parametrize(("next_url", "lands_on"), [
    ("https://evil.example/", "/accounts/login/"),  # refused: off the site
    ("/campaigns/", "/campaigns/"),
])
def test_signing_out_lands_on_a_page_even_when_next_points_off_the_site(next_url, lands_on):
    client = Client()
    client.force_login(UserFactory())
    response = client.post(f"/accounts/logout/?next={next_url}")
    assert response.status_code == 302
    assert response["Location"] == lands_on
    assert SESSION_KEY not in client.session
