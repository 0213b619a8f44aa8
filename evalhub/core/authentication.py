"""API token authentication, with its one lookup compiled once per connection.

DRF's ``TokenAuthentication`` builds and compiles ``Token.objects.select_related("user")
.get(key=...)`` on every request; for the rating API (a vote every few seconds per annotator)
that was the largest single piece of the web process's CPU per vote after the rating services
themselves. This class runs the same queryset as a :class:`~evalhub.core.prepared.PreparedQuery`
and answers exactly as DRF's does (the same errors, the same ``(user, token)``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from evalhub.core.prepared import Param, PreparedQuery


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
