"""List filters by id that answer the same for every id, whoever's object it names.

django-filter makes a ``ModelChoiceFilter`` for every relation in a viewset's
``filterset_fields``: it looks the id up in the model's whole table, so ``?run=<id>`` answered
400 "Select a valid choice" for an id never used and an empty page for another project's run,
telling the two apart (docs/security.md: an answer never says whether another project's object
exists), and a number past 64 bits reached the database driver (a 500).

Here a relation (and a primary key) is filtered by its id alone: any whole number that fits an
id column filters the viewset's queryset, which holds only what the caller may see, so an id of
another project and an id never used both give an empty list; anything else is 400, whatever
the value. Every list viewset filters with :class:`IdFilterBackend` (the default filter
backend, ``REST_FRAMEWORK`` in the settings); a ``filterset_class`` of its own derives from
:class:`IdFilterSet`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from evalhub.core.converters import fits_id_column, whole_number


class IdFormField(forms.Field):
    """An object id: a whole number that fits a 64-bit id column."""

    default_error_messages = {
        "invalid": "Enter an id: a whole number of at most 64 bits.",
    }

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = whole_number(value)
        if number is None or not fits_id_column(number):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.Filter):
    """Objects whose relation (or primary key) is this id; no lookup of the id itself."""

    field_class = IdFormField


_BY_ID = {"filter_class": IdFilter}


class IdFilterSet(filters.FilterSet):
    """A FilterSet whose generated filters on relations and primary keys are :class:`IdFilter`
    (django-filter's default for them is a ModelChoiceFilter over the whole table)."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: _BY_ID,
        models.OneToOneField: _BY_ID,
        models.AutoField: _BY_ID,
        models.BigAutoField: _BY_ID,
    }


class IdFilterBackend(filters.DjangoFilterBackend):
    """DjangoFilterBackend whose filter sets built from ``filterset_fields`` are
    :class:`IdFilterSet`."""

    filterset_base = IdFilterSet
