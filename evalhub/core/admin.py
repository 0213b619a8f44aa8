"""What every admin page that edits names shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.http import HttpRequest

from evalhub.core.forms import NameFormField, NameSlugFormField
from evalhub.core.limits import NAME_FIELDS


class NameRuleAdmin:
    """A mixin for a ``ModelAdmin`` or an inline: its name fields (``NAME_FIELDS``) follow the
    name rule of every other input path (:func:`evalhub.core.limits.name_text`), so the admin
    cannot store a decomposed twin of a name or one with a bidi override, which
    ``manage.py check_names`` would then have to find."""

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest,
                              **kwargs: Any) -> forms.Field | None:
        if db_field.name in NAME_FIELDS and isinstance(db_field, models.CharField):
            kwargs["form_class"] = (NameSlugFormField if isinstance(db_field, models.SlugField)
                                    else NameFormField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
