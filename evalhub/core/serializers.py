"""Serializer behaviour every write endpoint of the API shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Model
from django.db.models.manager import BaseManager
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.validators import UniqueTogetherValidator

from evalhub.core.limits import NAME_FIELDS, json_problem, name_text
from evalhub.core.schema import ErrorSerializer

# The keys of an error answer: no field's errors go there.
ERROR_KEYS = frozenset(ErrorSerializer().fields)


class RejectUnknownFields(serializers.Serializer):
    """Refuses a body key that names no field of the serializer, and a read-only field's key
    whose value is not the object's (400, each key named). DRF drops both silently, so a typo
    (``judgments_per_pairs``) used to create an object with the default instead, and a run
    posted with ``"project": 2`` was created in its checkpoint's project 1 without a word.

    On an update, a read-only key that identifies the object (its ``id``, the project or other
    object it belongs to) is accepted when its value is the stored one as this serializer
    represents it, and refused otherwise; the other read-only keys (status, counters, times:
    what the server keeps up to date, which may have moved since the body was fetched) are
    ignored, so a body fetched, edited and sent back is accepted. On a create, only the keys
    ``derived_read_only`` says the server derives from the other fields are accepted, with the
    same value (a run's ``project``, its checkpoint's); any other read-only key is refused.
    The CSRF token that DRF's browsable API forms send with every POST is not a field and is
    accepted."""

    NOT_FIELDS = frozenset({"csrfmiddlewaretoken"})
    #: Text fields that name an object: :func:`evalhub.core.limits.name_text` applies.
    NAME_FIELDS: frozenset[str] = NAME_FIELDS
    #: Read-only keys the serializer checks itself in its own words (membership changes).
    CHECKS_OWN_READ_ONLY: frozenset[str] = frozenset()
    #: Read-only keys an update compares besides those that identify the object: settings
    #: fixed at creation (a campaign's criteria), which a client may believe it changes.
    FIXED_ON_UPDATE: frozenset[str] = frozenset()

    def get_fields(self) -> dict[str, serializers.Field]:
        """Every writable JSON field refuses a NUL or a lone surrogate in its keys and strings
        (:class:`StorableJSONField`), every writable name field follows the name rule
        (:class:`NameField`): one place for every write serializer, generated fields included."""
        fields = super().get_fields()
        for key, field in fields.items():
            if field.read_only:
                continue
            if type(field) is serializers.JSONField:
                fields[key] = StorableJSONField(*field._args, **field._kwargs)
            elif type(field) is serializers.CharField and key in self.NAME_FIELDS:
                fields[key] = NameField(*field._args, **field._kwargs)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        unknown = sorted(str(key) for key in data
                         if key not in self.fields and key not in self.NOT_FIELDS)
        if unknown:
            takes = f"This endpoint takes: {self._takes()}."
            refusal: dict[str, Any] = {key: [f"Unknown field. {takes}"] for key in unknown
                                       if key not in ERROR_KEYS}
            # Under its own name, a key "detail" would make the answer's `detail` a list (the
            # schema says a sentence): such keys are named in `detail` instead.
            if taken := [key for key in unknown if key in ERROR_KEYS]:
                plural = "s" if len(taken) > 1 else ""
                refusal["detail"] = f"Unknown field{plural}: {', '.join(taken)}. {takes}"
            raise serializers.ValidationError(refusal)
        read_only = [key for key, field in self.fields.items() if key in data and field.read_only
                     and key not in self.CHECKS_OWN_READ_ONLY]
        errors: dict[str, list[str]] = {}
        if self.instance is not None:
            # On an update only what identifies the object is compared: its id and the objects
            # it belongs to. What the server keeps up to date (status, counters, times, counts)
            # may have moved since the body was fetched, and its text form may differ (a time
            # written back by another library): those keys are left out, as DRF leaves them.
            read_only = [key for key in read_only if _identifies(key, self.fields[key])
                         or key in self.FIXED_ON_UPDATE]
            if read_only:
                stored = self.to_representation(self.instance)
                errors = {key: [self._read_only_refusal(key, sent, stored.get(key))]
                          for key in read_only
                          if not _same_value(sent := _sent(data, key, self.fields[key]),
                                             stored.get(key), self.fields[key])}
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if errors and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**errors, **exc.detail}) from exc
            raise
        if errors:
            raise serializers.ValidationError(errors)
        if read_only and self.instance is None:
            derived = self.derived_read_only(attrs)
            for key in read_only:
                if key not in derived:
                    errors[key] = [f"{key} is read-only: the server sets it, so a new object "
                                   f"takes no value for it. This endpoint takes: "
                                   f"{self._takes()}."]
                elif not _same(data[key], derived[key][0]):
                    errors[key] = [derived[key][1]]
            if errors:
                raise serializers.ValidationError(errors)
        return attrs

    def run_validators(self, value: Any) -> None:
        """A unique-together validator's refusal ("This project already has a model with this
        name.") under the field it is about, the validator's last one (``name``), not
        ``non_field_errors``: a duplicate is answered alike wherever it is found
        (:func:`duplicate`)."""
        try:
            super().run_validators(value)
        except serializers.ValidationError as exc:
            together = [validator for validator in self.get_validators()
                        if isinstance(validator, UniqueTogetherValidator)]
            problems = exc.detail if isinstance(exc.detail, list) else []
            if (len(together) == 1 and problems
                    and all(getattr(p, "code", None) == "unique" for p in problems)):
                raise serializers.ValidationError({together[0].fields[-1]: problems}) from exc
            raise

    def derived_read_only(self, attrs: dict) -> dict[str, tuple[Any, str]]:
        """For a create: the read-only keys whose value the server derives from ``attrs`` (the
        validated fields), each with that value as the API represents it and the refusal of
        any other value. None by default: a create refuses every read-only key."""
        return {}

    def _takes(self) -> str:
        return ", ".join(name for name, field in self.fields.items() if not field.read_only)

    @staticmethod
    def _read_only_refusal(key: str, sent: Any, stored: Any) -> str:
        return (f"{key} is read-only: this object's is {_as_json(stored)}, not "
                f"{_as_json(sent)}. Leave it out, or send it as fetched.")


class StorableJSONField(serializers.JSONField):
    """A JSON value the database can hold: no NUL character (jsonb refuses it) and no lone
    surrogate (``"\\ud800"``, which has no UTF-8 form) in any key or string; 400 in DRF's
    words ("Surrogate characters are not allowed: U+D800."), not a 500 at the save."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        problem = json_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class NameField(serializers.CharField):
    """A name, NFC-normalised and without control or format characters
    (:func:`evalhub.core.limits.name_text`), before its length and uniqueness are checked."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return name_text(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


def _identifies(key: str, field: serializers.Field) -> bool:
    """Whether a read-only field names what the object is (its id, the project or other
    object it belongs to) rather than state the server keeps."""
    return key == "id" or isinstance(field, serializers.RelatedField | serializers.ManyRelatedField)


def _sent(data: Mapping[str, Any], key: str, field: serializers.Field) -> Any:
    """The value sent for ``key``: every value of a list field from a form body (a list goes
    out as repeated keys, and ``data[key]`` is the last one)."""
    if isinstance(field, serializers.ManyRelatedField) and hasattr(data, "getlist"):
        return data.getlist(key)
    return data[key]


def _same_value(sent: Any, stored: Any, field: serializers.Field) -> bool:
    """:func:`_same`, where a list of related objects is a set: its ids in any order, as
    numbers (JSON) or as text (a form body)."""
    if isinstance(field, serializers.ManyRelatedField):
        return (isinstance(sent, list) and isinstance(stored, list)
                and sorted(str(item) for item in sent) == sorted(str(item) for item in stored))
    return _same(sent, stored)


def duplicate(field: str, message: str) -> serializers.ValidationError:
    """The refusal of a name (slug, username) another object already has, under ``field``,
    with DRF's ``unique`` code, as its unique validators give it: the API answers every such
    refusal 409 ``duplicate`` (evalhub/core/api_errors.py), a form shows it at the field."""
    return serializers.ValidationError({field: [ErrorDetail(message, code="unique")]})


def _normal(value: Any) -> Any:
    """``value`` as a JSON answer carries it (dates as text, lists for tuples)."""
    return json.loads(json.dumps(value, cls=JSONEncoder))


def _as_json(value: Any) -> str:
    try:
        return json.dumps(_normal(value))[:200]
    except (TypeError, ValueError):
        return repr(value)[:200]


def _same(sent: Any, stored: Any) -> bool:
    """Whether a value sent for a read-only field is the stored one: equal as JSON, or, from a
    form (every value text), equal to its text (a number, ``true``/``false``, empty for null)."""
    try:
        stored = _normal(stored)
        if _normal(sent) == stored:
            return True
    except (TypeError, ValueError):
        return False
    if isinstance(sent, str) and not isinstance(stored, dict | list):
        if stored is None:
            return sent == ""
        if isinstance(stored, bool):
            return sent.lower() == str(stored).lower()
        return sent == (stored if isinstance(stored, str) else json.dumps(stored))
    return False


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
