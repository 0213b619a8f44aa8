"""Serializer behaviour every write endpoint of the API shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Model
from django.db.models.manager import BaseManager
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


class ReadForPage(serializers.ListSerializer):
    """A list (``Meta.list_serializer_class``) whose rows need a value read from other tables
    (a campaign's progress, a prompt set's categories): the child serializer's
    ``read_page(ids) -> {id: value}`` reads it for the whole page in its few queries, not once
    a row; the child's field reads a row's value with :func:`read_for`."""

    def to_representation(self, data: Iterable[Model]) -> list[dict]:
        objects = list(data.all() if isinstance(data, BaseManager) else data)
        self.read = self.child.read_page([obj.pk for obj in objects])
        return super().to_representation(objects)


def read_for(serializer: serializers.Serializer, obj: Model) -> Any:
    """``obj``'s value of ``serializer.read_page``: as its list read it, or, serialised alone
    (a detail, a create), read for it alone by the same function."""
    listed = getattr(serializer.parent, "read", None)
    if listed is not None and obj.pk in listed:
        return listed[obj.pk]
    return serializer.read_page([obj.pk])[obj.pk]


def counted_or_count(instance: Model, annotation: str, related: str) -> int:
    """``instance.<annotation>``, where a list's queryset counted the related rows for the
    whole page in its one query; else (an object just created, imported or launched) the count
    of its ``related`` manager."""
    counted = getattr(instance, annotation, None)
    return getattr(instance, related).count() if counted is None else counted
