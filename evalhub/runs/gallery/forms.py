"""The gallery's parameters (a GET form): which two runs, filters, sort, page.

Choices are the project's own runs, categories and models, so an id of another project is
refused exactly like an id that does not exist ("Select a valid choice"), next to its field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from evalhub.campaigns.models import Criterion
from evalhub.core.text import isolated
from evalhub.leaderboards.services import JUDGE_METRICS
from evalhub.runs.gallery.selectors import (
    DEFAULT_CRITERION,
    DEFAULT_JUDGE,
    OUTCOME_FILTERS,
    SORTS,
    GalleryQuery,
    RunOption,
    mixed_media_kinds,
)
from evalhub.runs.labels import run_label

# A page number past any real page is clamped to the last page; this bound only keeps the
# number an integer the database and Python handle without surprise.
MAX_PAGE = 10**9


def _page_field() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE,
                              widget=forms.HiddenInput)


def page_number(raw: str | None) -> tuple[int, str | None]:
    """The page a link asks for, and a note when it names no page (``-1``, ``abc``): page 1
    then. A hidden field's error would show nowhere on the page, and the form would carry the
    bad number into its next submission, so the page falls back and says so instead."""
    try:
        return _page_field().clean(raw) or 1, None
    except forms.ValidationError:
        return 1, f"“{raw}” is not a page number (pages count from 1): showing page 1."


class PlainSelect(forms.Select):
    """A ``<select>`` written in Python: Django renders each option through a template, which
    cost about 1 ms per run option (two pickers of 50 runs made half of a gallery page's
    server time). Same HTML, options and groups, escaped by ``format_html``."""

    def render(self, name: str, value: Any, attrs: dict | None = None,
               renderer: Any = None) -> SafeString:
        chosen = set(self.format_value(value))
        final = {**self.build_attrs(self.attrs, attrs), "name": name}

        def options(choices: Iterable[tuple[Any, Any]]) -> SafeString:
            return format_html_join("", '<option value="{}"{}>{}</option>', (
                (key, mark_safe(" selected") if str(key) in chosen else "", label)
                for key, label in choices))

        parts = [format_html('<optgroup label="{}">{}</optgroup>', key, options(label))
                 if isinstance(label, list | tuple) else options([(key, label)])
                 for key, label in self.choices]
        return format_html("<select{}>{}</select>", flatatt(final), mark_safe("".join(parts)))


class GalleryForm(forms.Form):
    model = forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                   label="Model", widget=PlainSelect)
    a = forms.TypedChoiceField(coerce=int, label="Left run", widget=PlainSelect)
    b = forms.TypedChoiceField(coerce=int, label="Right run", widget=PlainSelect)
    category = forms.ChoiceField(required=False, label="Category", widget=PlainSelect)
    outcome = forms.ChoiceField(required=False, label="Human outcome", widget=PlainSelect,
                                choices=[("", "any"), *OUTCOME_FILTERS.items()])
    sort = forms.ChoiceField(required=False, label="Sort", choices=list(SORTS.items()),
                             widget=PlainSelect)
    criterion = forms.ChoiceField(required=False, label="Criterion", widget=PlainSelect,
                                  choices=list(Criterion.choices))
    judge = forms.ChoiceField(required=False, label="Metric judge", widget=PlainSelect,
                              choices=[(name, name) for name in sorted(JUDGE_METRICS)])
    page = _page_field()

    def __init__(self, *args: Any, runs: list[RunOption], models: list[tuple[int, str]],
                 categories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set when the parameters named a page that is none (see :func:`page_number`).
        self.page_note: str | None = None
        if self.is_bound:
            _, self.page_note = page_number(self.data.get("page"))
            if self.page_note is not None:
                self.data = self.data.copy()
                self.data.pop("page")
        self.runs = {run.id: run for run in runs}
        # Labels are plain text, which cannot hold the <bdi> that pages put around a name:
        # each name is isolated with Unicode's isolates instead (docs/accessibility.md).
        self.fields["model"].choices = [("", "all models"),
                                        *((pk, isolated(name)) for pk, name in models)]
        grouped: dict[str, list[tuple[int, str]]] = {}
        for run in runs:
            # The campaign form's label, model included: runs of two models share
            # checkpoint and run names.
            label = run_label(model=isolated(run.model), checkpoint=isolated(run.checkpoint),
                              step=run.step, run=isolated(run.name),
                              prompt_set=isolated(run.prompt_set))
            grouped.setdefault(isolated(run.model), []).append((run.id, label))
        run_choices = [("", "choose a run"), *grouped.items()]
        self.fields["a"].choices = run_choices
        self.fields["b"].choices = run_choices
        self.fields["category"].choices = [("", "all"), *((c, isolated(c)) for c in categories)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        left, right = self.runs.get(data.get("a")), self.runs.get(data.get("b"))
        if data.get("a") is not None and data.get("a") == data.get("b"):
            self.add_error("b", "Pick a run other than the left one.")
        elif left is not None and right is not None and mixed_media_kinds(left, right):
            self.add_error("b", f"The left run's outputs are {left.media_kind}s and this run's "
                                f"are {right.media_kind}s: pick a run of {left.media_kind}s.")
        return data

    def query(self) -> GalleryQuery:
        """The validated parameters (call after ``is_valid()``)."""
        data = self.cleaned_data
        return GalleryQuery(
            left=data["a"], right=data["b"], category=data.get("category") or "",
            outcome=data.get("outcome") or "", sort=data.get("sort") or "prompt",
            criterion=data.get("criterion") or DEFAULT_CRITERION,
            judge=data.get("judge") or DEFAULT_JUDGE, page=data.get("page") or 1)
