"""POST /api/v1/auth/token/: a username and password for the caller's API token.

Sign-in limits (django-axes, settings.py) apply here as on the login page: DRF's token view
calls ``authenticate()``, which axes watches. Axes flags a refused attempt on the request it
was given, which here is DRF's wrapper, not the Django request its middleware answers for;
this view reads that flag and answers 429 itself instead of the generic 400.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.core.limits import MAX_PASSWORD_CHARS

LOCKED_OUT = (
    "Too many failed sign-ins for this account or from this address. "
    "Try again after {minutes} minute(s) without failed attempts."
)


class LockedOut(serializers.Serializer):
    detail = serializers.CharField()


class TokenRequestSerializer(AuthTokenSerializer):
    username = serializers.CharField(label="Username", write_only=True,
                                     max_length=get_user_model()._meta.get_field("username").max_length)
    password = serializers.CharField(label="Password", style={"input_type": "password"},
                                     trim_whitespace=False, write_only=True,
                                     max_length=MAX_PASSWORD_CHARS)


class TokenApi(ObtainAuthToken):
    """The API token of the user whose username and password are posted."""

    serializer_class = TokenRequestSerializer

    @extend_schema(responses={
        200: inline_serializer("Token", {"token": serializers.CharField()}),
        400: OpenApiResponse(description="Wrong username or password."),
        429: OpenApiResponse(LockedOut, description="Too many failed sign-ins."),
    })
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if not getattr(request, "axes_locked_out", False):
                raise
        seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
        return Response({"detail": LOCKED_OUT.format(minutes=math.ceil(seconds / 60))},
                        status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(seconds)})


urlpatterns = [path("", TokenApi.as_view(), name="api-token")]
