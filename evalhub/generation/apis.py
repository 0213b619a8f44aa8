from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generators import available_generators


class GeneratorListApi(APIView):
    """Generator plugins this deployment can run, with their parameter schemas."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Generator", {
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "parameters": serializers.DictField(),
    }, many=True))
    def get(self, request: Request) -> Response:
        return Response(available_generators(settings.EVALHUB_GENERATORS))
