"""What every admin page that edits names shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models, router
from django.forms.models import InlineForeignKeyField
from django.http import HttpRequest

from evalhub.core.forms import NameFormField, NameSlugFormField
from evalhub.core.limits import NAME_FIELDS


class UniqueNamesForm(forms.ModelForm):
    """Checks a name's unique constraints whole, also where another field of the constraint
    is shown read-only (a run's project, a used checkpoint's model) or is an inline's foreign
    key: Django leaves such a field out of the check, and skips every constraint holding it,
    so a rename to a name the project already has (or its decomposed twin, once
    NFC-normalised) reached the database's constraint: a 500. The left-out field's stored
    value is checked instead.

    Each check runs once per submission: Django's ``_post_clean`` has already run every
    constraint none of whose fields it left out (``full_clean``), so only the name constraints
    it skipped are run here; the unique checks (``unique``, ``unique_together``) run only here,
    as this replaces the ``ModelForm.validate_unique`` that would run them."""

    def validate_unique(self) -> None:
        model = self._meta.model
        exclude = self._get_validation_exclusions()
        widened = exclude - _names_unique_with(model)
        try:
            self.instance.validate_unique(exclude=widened)
        except ValidationError as exc:
            self._update_errors(exc)
        # What _post_clean's full_clean left out: these exclusions and the inline formset's
        # foreign key (it adds that field to them itself).
        left_out = exclude | {name for name, field in self.fields.items()
                              if isinstance(field, InlineForeignKeyField)}
        using = router.db_for_write(model, instance=self.instance)
        errors: dict[str, list[ValidationError]] = {}
        for constraint in _name_constraints(model):
            if left_out.isdisjoint(constraint.fields):
                continue  # full_clean has checked it
            try:
                constraint.validate(model, self.instance, exclude=widened, using=using)
            except ValidationError as exc:
                # Keyed as Model.validate_constraints keys it.
                if getattr(exc, "code", None) == "unique" and len(constraint.fields) == 1:
                    errors.setdefault(constraint.fields[0], []).append(exc)
                else:
                    errors = exc.update_error_dict(errors)
        if errors:
            self._update_errors(ValidationError(errors))


def _name_constraints(model: type[models.Model]) -> list[models.UniqueConstraint]:
    """``model``'s unique constraints on plain fields (no condition, no expression) that
    hold a name field."""
    return [constraint for constraint in model._meta.total_unique_constraints
            if not NAME_FIELDS.isdisjoint(constraint.fields)]


def _names_unique_with(model: type[models.Model]) -> set[str]:
    """The fields that share a unique constraint (or ``unique_together``) with a name field
    of ``model``, the name fields included."""
    groups = [*model._meta.unique_together,
              *(constraint.fields for constraint in _name_constraints(model))]
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
