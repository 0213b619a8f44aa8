"""Authentication with its per-request lookups compiled once per connection.

Every authenticated request reads its user: an API client by its token, a signed-in page by
the user id in its session. DRF's ``TokenAuthentication`` and Django's ``ModelBackend`` build
and compile that one-row query on every request (``Token.objects.select_related("user")
.get(key=...)``, ``User.objects.get(pk=...)``); for the rating API (a vote every few seconds
per annotator) each was among the largest pieces of the web process's CPU per vote after the
rating services themselves. The classes here run the same querysets as
:class:`~evalhub.core.prepared.PreparedQuery` and answer exactly as Django's and DRF's do (the
same errors, the same ``(user, token)``; the session's password hash is still checked by
Django's ``auth.get_user`` against the row read on this request).

Sessions name the backend that signed them in (``_auth_user_backend``), and Django serves a
session only through a backend still listed in ``AUTHENTICATION_BACKENDS``. Sessions signed in
before this backend name ``django.contrib.auth.backends.ModelBackend``: rather than list that
class too (``authenticate()`` would then check a wrong password twice), the
:class:`AuthenticationMiddleware` here renames it to :data:`MODEL_BACKEND` in the session the
first time such a session is read (the session is saved once more), so no one is signed out.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, backends, get_user_model
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from evalhub.core.prepared import Param, PreparedQuery

# The backend that checks passwords and reads the session's user (settings.py lists it after
# django-axes' guard), and the name sessions signed in before it carry.
MODEL_BACKEND = "evalhub.core.authentication.ModelBackend"
DJANGO_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _token() -> QuerySet[Token]:
    """Values (bound by :data:`_TOKEN`): key (the primary key: one row or none)."""
    return Token.objects.select_related("user").filter(key=Param("key", Token._meta.pk))


_TOKEN = PreparedQuery(_token)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's class (which the OpenAPI schema names)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        found = _TOKEN.run(key=key)
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = found[0]
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token


def _user() -> QuerySet:
    """Values (bound by :data:`_USER`): user_id (the primary key: one row or none)."""
    user_model = get_user_model()
    return user_model._default_manager.filter(pk=Param("user_id", user_model._meta.pk))


_USER = PreparedQuery(_user)


class ModelBackend(backends.ModelBackend):
    """Django's ``ModelBackend`` (passwords, permissions, ``is_active``), whose ``get_user``
    (the session's user, read on every signed-in request) is one compiled query."""

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        found = _USER.run(user_id=user_id)
        if not found:
            return None
        user = found[0]
        return user if self.user_can_authenticate(user) else None


def upgrade_session_backend(request: HttpRequest) -> None:
    """Rename Django's ``ModelBackend`` to :data:`MODEL_BACKEND` in a session signed in before
    this backend existed, so it stays signed in (Django serves a session only through a
    listed backend). Only while Django's is not listed itself and ours is."""
    session = request.session
    if (session.get(BACKEND_SESSION_KEY) == DJANGO_MODEL_BACKEND
            and DJANGO_MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS
            and MODEL_BACKEND in settings.AUTHENTICATION_BACKENDS):
        session[BACKEND_SESSION_KEY] = MODEL_BACKEND


def _get_user(request: HttpRequest) -> Any:
    if not hasattr(request, "_cached_user"):
        upgrade_session_backend(request)
    return auth_middleware.get_user(request)


async def _auser(request: HttpRequest) -> Any:
    if not hasattr(request, "_acached_user"):
        from asgiref.sync import sync_to_async

        await sync_to_async(upgrade_session_backend)(request)
    return await auth_middleware.auser(request)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with sessions of Django's ``ModelBackend`` carried over to ours
    (:func:`upgrade_session_backend`) before the user is read."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)  # its checks (a session middleware before it)
        request.user = SimpleLazyObject(lambda: _get_user(request))
        request.auser = partial(_auser, request)
