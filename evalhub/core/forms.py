"""Form fields every page shares."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

from evalhub.core.limits import MAX_PASSWORD_CHARS, json_problem, name_text


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


class StorableJSONField(forms.JSONField):
    """A JSON box whose value the database can hold: a NUL or a lone surrogate (``"\\ud800"``)
    in a key or string is refused at the field, as the API refuses it, and the box shows such a
    value escaped (Django writes it raw, which no page can encode: a 500)."""

    def to_python(self, value: Any) -> Any:
        converted = super().to_python(value)
        problem = json_problem(converted)
        if problem:
            raise forms.ValidationError(problem)
        return converted

    def prepare_value(self, value: Any) -> Any:
        shown = super().prepare_value(value)
        if isinstance(shown, str) and not isinstance(value, forms.fields.InvalidJSONInput) \
                and json_problem(shown):
            return json.dumps(value, cls=self.encoder)
        return shown


class NameSlugFormField(NameFormField, forms.SlugField):
    """A slug under the name rule (:class:`NameFormField`) and a slug's own validation."""


class TextBoxField(forms.CharField):
    """Free text typed in a ``<textarea>`` (a description, instructions). Browsers send its
    line breaks as CRLF (HTML's form encoding); they are stored as ``\\n``, as the API and the
    commands store them, so the same text typed on a page or sent by a script is the same
    (and ``max_length`` counts a line break once)."""

    def __init__(self, *, rows: int = 3, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "dir": "auto"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n")


class LengthsChecked(forms.Form):
    """A sign-in form with the lengths the API's token endpoint checks checked before
    ``authenticate``: the username's (the accounts' column) and the password's
    (``MAX_PASSWORD_CHARS``).

    ``AuthenticationForm`` sets the username field's ``max_length`` after the field is built,
    so no validator checks it: a 20,000-character username reached ``authenticate``, and
    django-axes then stored the failed attempt's username in its 255-character column (a
    DataError: a 500 on the login pages, for anyone). Either too long is refused at its field
    and never tried."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
        self.fields["password"].validators.append(MaxLengthValidator(MAX_PASSWORD_CHARS))


class LoginForm(LengthsChecked, AuthenticationForm):
    """The login page's form."""


class AdminLoginForm(LengthsChecked, AdminAuthenticationForm):
    """The admin's login form."""
