"""What every admin page that edits names shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest

from evalhub.core.forms import NameFormField, NameSlugFormField
from evalhub.core.limits import NAME_FIELDS


class UniqueNamesForm(forms.ModelForm):
    """Checks a name's unique constraints whole, also where another field of the constraint
    is shown read-only (a run's project, a used checkpoint's model): Django leaves a field that
    is not in the form out of the check, and skips every constraint holding it, so a rename to
    a name the project already has (or its decomposed twin, once NFC-normalised) reached the
    database's constraint: a 500. The read-only field's stored value is checked instead."""

    def validate_unique(self) -> None:
        exclude = self._get_validation_exclusions() - _names_unique_with(self._meta.model)
        try:
            self.instance.validate_unique(exclude=exclude)
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as exc:
            self._update_errors(exc)


def _names_unique_with(model: type[models.Model]) -> set[str]:
    """The fields that share a unique constraint (or ``unique_together``) with a name field
    of ``model``, the name fields included."""
    meta = model._meta
    groups = [*meta.unique_together,
              *(constraint.fields for constraint in meta.total_unique_constraints)]
    return {field for group in groups if NAME_FIELDS & set(group) for field in group}


class NameRuleAdmin:
    """A mixin for a ``ModelAdmin`` or an inline: its name fields (``NAME_FIELDS``) follow the
    name rule of every other input path (:func:`evalhub.core.limits.name_text`), so the admin
    cannot store a decomposed twin of a name or one with a bidi override, which
    ``manage.py check_names`` would then have to find; a name another object has is refused
    at the form (:class:`UniqueNamesForm`), not by the database."""

    form = UniqueNamesForm

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest,
                              **kwargs: Any) -> forms.Field | None:
        if db_field.name in NAME_FIELDS and isinstance(db_field, models.CharField):
            kwargs["form_class"] = (NameSlugFormField if isinstance(db_field, models.SlugField)
                                    else NameFormField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
