"""Form fields every page shares."""

from __future__ import annotations

from typing import Any

from django import forms

from evalhub.core.limits import name_text


class NameFormField(forms.CharField):
    """A name on a page, under the rule of every input path (:func:`evalhub.core.limits.name_text`,
    docs/security.md): NFC-normalised, no control or format character.

    The rule is applied in ``to_python``, before the validators, so that ``max_length`` is
    checked on the name as it is stored: NFC can make a name longer (U+0958, which has no
    composed form, becomes two characters), and a name checked before it grew reached the
    column's ``varchar`` too long (a 500). The API's ``NameField`` and the commands' ``--name``
    check the length after normalising too."""

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return name_text(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc
