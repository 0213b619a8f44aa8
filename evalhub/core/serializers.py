"""Serializer behaviour every write endpoint of the API shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class RejectUnknownFields(serializers.Serializer):
    """Refuses a body key that names no field of the serializer (400, the key named, with the
    fields the endpoint takes). DRF drops such keys silently, so a typo (``judgments_per_pairs``)
    used to create an object with the default instead. Read-only fields are fields: a body
    fetched, edited and sent back is still accepted (they are ignored, as before), and so is
    the CSRF token that DRF's browsable API forms send with every POST."""

    NOT_FIELDS = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data
                             if key not in self.fields and key not in self.NOT_FIELDS)
            if unknown:
                takes = ", ".join(name for name, field in self.fields.items()
                                  if not field.read_only)
                raise serializers.ValidationError(
                    {key: [f"Unknown field. This endpoint takes: {takes}."] for key in unknown})
        return super().to_internal_value(data)
