"""Forms of the campaign pages.

Choices are the project's (or campaign's) own objects, so an id from another project is
refused exactly like an id that does not exist ("Select a valid choice"), next to its field.
Ranges and combinations are the services' rules: the views call the service and put its
refusal next to the field (errors.py), so no rule is written twice.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Case, OuterRef, Subquery, When
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from evalhub.campaigns.models import (
    DEFAULT_LEASE_SECONDS,
    MAX_K,
    MAX_LEASE_SECONDS,
    MAX_LPIPS_DISTANCE,
    MIN_K,
    MIN_LEASE_SECONDS,
    PAIR_POLICY_HELP,
    Campaign,
    Criterion,
    PairPolicy,
    TaskKind,
    criterion_questions,
)
from evalhub.core.converters import ID_REGEX
from evalhub.core.forms import NameFormField, TextBoxField
from evalhub.core.limits import MAX_INT64, MAX_TEXT_CHARS
from evalhub.core.text import isolated
from evalhub.leaderboards.services import JUDGE_METRICS
from evalhub.projects.models import Membership, Project, Role
from evalhub.runs.labels import run_label
from evalhub.runs.models import GenerationRun, Image, MediaKind

# Service refusals of campaign_create -> the field they are about (see errors.py).
CREATE_HINTS = {
    "each run once": "runs", "at least two runs": "runs", "share one prompt set": "runs",
    "criteria": "criteria", "gold_rate": "gold_rate", "judgments_per_pair":
    "judgments_per_pair", "pair policy": "pair_policy", "campaign named": "name",
    "task kind": "task_kind", "k (images": "k", "k is": "k", "rank_all": "rank_all",
    "no gold tasks": "gold_rate", "LPIPS filter": "min_lpips_distance",
    "balanced pair policy": "pair_policy", "be its annotators": "annotators",
    "all video runs": "runs", "lease_seconds": "lease_seconds",
}
GOLD_HINTS = {"same prompt": "image_b", "same file": "image_b", "gold answer": "answer"}


ID_PATTERN = re.compile(ID_REGEX)


def _is_id(value: Any) -> bool:
    return ID_PATTERN.fullmatch(str(value).strip()) is not None


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """Choices by id: a value that cannot be an id (letters, more digits than a database
    integer holds) is an invalid choice before any query (the database refused it: a 500)."""

    def _check_values(self, value: Any) -> Any:
        for item in value:
            if not _is_id(item):
                raise forms.ValidationError(self.error_messages["invalid_pk_value"],
                                            code="invalid_pk_value", params={"pk": item})
        return super()._check_values(value)


class IdChoiceField(forms.ModelChoiceField):
    """:class:`IdsChoiceField` for one choice."""

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not _is_id(value):
            raise forms.ValidationError(self.error_messages["invalid_choice"],
                                        code="invalid_choice")
        return super().to_python(value)


class RunChoiceField(IdsChoiceField):
    def label_from_instance(self, run: GenerationRun) -> str:
        # One label for a run in every picker (the gallery's too): runs.labels.run_label,
        # each name in a <bdi> (a checkbox's label is HTML: no invisible isolate character
        # to be copied with it, docs/accessibility.md). Safe: every name is escaped by
        # format_html, the rest is the label's own words and a number.
        checkpoint = run.checkpoint
        return mark_safe(run_label(
            model=_bdi(checkpoint.model.name), checkpoint=_bdi(checkpoint.name),
            step=checkpoint.training_step, run=_bdi(run.name),
            prompt_set=_bdi(run.prompt_set.name)))


def _bdi(name: str) -> SafeString:
    return format_html("<bdi>{}</bdi>", name)


class MemberChoiceField(IdsChoiceField):
    """Members of the project, ticked to be a campaign's annotators: "name (role)"."""

    def label_from_instance(self, user: Any) -> str:
        return f"{user.get_username()} ({user.project_role})"


ANNOTATORS_HELP = ("Who may rate this campaign. Tick none: every member of the project may "
                   "rate.")


def project_members(project: Project) -> Any:
    """The project's members with their role (``project_role``), annotators first."""
    role = Membership.objects.filter(project=project, user=OuterRef("pk")).values("role")[:1]
    return (get_user_model().objects.filter(memberships__project=project)
            .annotate(project_role=Subquery(role))
            .order_by(Case(When(project_role=Role.ANNOTATOR, then=0), default=1), "username"))


class PlainCheckboxes(forms.CheckboxSelectMultiple):
    """Django's checkbox list written in Python: its per-option templates cost about 1 ms a
    member, a tenth of the campaign page with 100 annotators. The same HTML (the list's id,
    one ``<div><label><input></label></div>`` per choice, each input with the field's
    attributes), escaped by ``format_html``."""

    def render(self, name: str, value: Any, attrs: dict | None = None,
               renderer: Any = None) -> SafeString:
        chosen = {str(v) for v in self.format_value(value)}
        final = self.build_attrs(self.attrs, attrs)
        base_id = final.pop("id", None) or f"id_{name}"
        items = format_html_join("", '<div><label for="{}"><input type="checkbox" name="{}" '
                                 'value="{}"{} id="{}"{}> {}</label></div>', (
                                     (f"{base_id}_{i}", name, key, flatatt(final),
                                      f"{base_id}_{i}",
                                      mark_safe(" checked") if str(key) in chosen else "",
                                      label)
                                     for i, (key, label) in enumerate(self.choices)))
        return format_html('<div id="{}">{}</div>', base_id, items)


def _annotators_field() -> MemberChoiceField:
    return MemberChoiceField(queryset=get_user_model().objects.none(), required=False,
                             widget=PlainCheckboxes, label="Annotators",
                             help_text=ANNOTATORS_HELP)


class AnnotatorsForm(forms.Form):
    """The campaign page's form: who may rate (campaign_set_annotators)."""

    annotators = _annotators_field()

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"annotators": list(campaign.annotators.all())})
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = project_members(campaign.project)


def _name_field() -> NameFormField:
    """A campaign's name: the name rule, then its column's length."""
    return NameFormField(max_length=Campaign._meta.get_field("name").max_length)


def _instructions_field() -> forms.CharField:
    """What annotators read before rating: free text in any script, so the box takes its
    direction from what is typed (docs/accessibility.md, "User-written text")."""
    return TextBoxField(required=False, max_length=MAX_TEXT_CHARS, rows=4)


class CampaignEditForm(forms.Form):
    """The campaign's name and instructions, the two things that change once it is created
    (``services.campaign_update``; its other settings say what its tasks are); shown as
    stored."""

    name = _name_field()
    instructions = _instructions_field()

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"name": campaign.name,
                                      "instructions": campaign.instructions})
        super().__init__(*args, **kwargs)
        # The values shown travel with the form (hidden), so that what the user left as shown
        # is told apart from what changed since (changed_data; the view saves only that).
        for field in self.fields.values():
            field.show_hidden_initial = True
        self.fields["name"].help_text = "Unique in the project."
        self.fields["name"].widget.attrs["dir"] = "auto"
        self.fields["instructions"].help_text = (
            "Shown to annotators before they rate; they see the new text when they next load "
            "the rating page. Empty: no instructions.")
        self.fields["instructions"].widget.attrs["rows"] = 8


class CampaignCreateForm(forms.Form):
    name = _name_field()
    runs = RunChoiceField(queryset=GenerationRun.objects.none(),
                          widget=forms.CheckboxSelectMultiple,
                          help_text="At least two runs of one prompt set.")
    criteria = forms.MultipleChoiceField(
        choices=Criterion.choices, widget=forms.CheckboxSelectMultiple, required=False,
        initial=[Criterion.OVERALL], label="Questions (criteria)",
        help_text="“overall” is always asked; add the others to ask them too.")
    task_kind = forms.ChoiceField(choices=TaskKind.choices, initial=TaskKind.PAIR,
                                  required=False, label="Task kind",
                                  help_text="Pairs, or best of K (K images of one prompt).")
    k = forms.IntegerField(required=False, min_value=MIN_K, max_value=MAX_K,
                           label="K (best of K)",
                           help_text=f"Images per task, {MIN_K} to {MAX_K}, one per run; "
                                     "best of K only.")
    rank_all = forms.BooleanField(required=False, label="Rank all K",
                                  help_text="Best of K: annotators rank all K images by "
                                            "successive picks instead of picking one.")
    pair_policy = forms.ChoiceField(
        choices=PairPolicy.choices, initial=PairPolicy.BALANCED,
        help_text=PAIR_POLICY_HELP)
    judgments_per_pair = forms.IntegerField(initial=3, help_text="Between 1 and 50.")
    gold_rate = forms.FloatField(initial=0.0, label="Gold share",
                                 help_text="Share of served pairs that are gold, 0 to 0.5.")
    min_lpips_distance = forms.FloatField(
        required=False, min_value=0, max_value=MAX_LPIPS_DISTANCE,
        label="LPIPS near-duplicate threshold",
        help_text=f"Pairs closer than this LPIPS distance (0 to {MAX_LPIPS_DISTANCE:g}) are "
                  "not asked; empty: keep all.")
    prompt_category = forms.ChoiceField(required=False, label="Prompt category")
    lease_seconds = forms.IntegerField(initial=DEFAULT_LEASE_SECONDS, min_value=MIN_LEASE_SECONDS,
                                       max_value=MAX_LEASE_SECONDS,
                                       help_text="How long a pair is held for an annotator.")
    instructions = _instructions_field()
    annotators = _annotators_field()
    open_when_built = forms.BooleanField(required=False, initial=True,
                                         help_text="Open for rating once built; "
                                                   "otherwise it stays a draft.")

    def clean_task_kind(self) -> str:
        return self.cleaned_data["task_kind"] or TaskKind.PAIR  # absent: pairs, as before

    def __init__(self, *args: Any, project: Project, categories: list[str],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["runs"].queryset = (
            GenerationRun.objects.filter(project=project)
            .select_related("checkpoint__model", "prompt_set").order_by("-id"))
        self.fields["annotators"].queryset = project_members(project)
        self.fields["prompt_category"].choices = [("", "all prompts"),
                                                  *((c, isolated(c)) for c in categories)]
        # The questions in the words of the project's outputs (a campaign asks about one
        # medium; which one is known once its runs are picked).
        kinds = set(GenerationRun.objects.filter(project=project)
                    .values_list("media_kind", flat=True).distinct())
        medium = ("video" if kinds == {MediaKind.VIDEO} else "image or video"
                  if MediaKind.VIDEO in kinds else "image")
        self.fields["criteria"].choices = list(criterion_questions(medium).items())


STATUS_LABELS = {
    ("draft", "active"): "Open for rating",
    ("paused", "active"): "Resume",
    ("active", "paused"): "Pause",
}


def status_actions(campaign: Campaign, transitions: dict[str, frozenset[str]]
                   ) -> list[tuple[str, str]]:
    """(target status, button label) for the moves ``transitions`` allows from the
    campaign's status, in a fixed order (close last)."""
    allowed = transitions.get(campaign.status, frozenset())
    order = ["active", "paused", "closed"]
    return [(target, STATUS_LABELS.get((campaign.status, target), "Close"))
            for target in order if target in allowed]


class StatusForm(forms.Form):
    status = forms.CharField(max_length=20)
    current = forms.CharField(max_length=20, help_text="The status the button was shown for.")


class ExcludeForm(forms.Form):
    annotator = forms.IntegerField(min_value=1, max_value=MAX_INT64)
    excluded = forms.BooleanField(required=False)
    note = forms.CharField(required=False, max_length=MAX_TEXT_CHARS)


class GoldAddForm(forms.Form):
    image_a = IdChoiceField(queryset=Image.objects.none(), widget=forms.NumberInput,
                                     label="Image A (id)")
    image_b = IdChoiceField(queryset=Image.objects.none(), widget=forms.NumberInput,
                                     label="Image B (id)")
    answer = forms.ChoiceField(choices=[("a", "A is better"), ("b", "B is better"),
                                        ("tie", "Tie")])

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        images = Image.objects.filter(run__project_id=campaign.project_id)
        self.fields["image_a"].queryset = images
        self.fields["image_b"].queryset = images


class MetricJudgeForm(forms.Form):
    """Run a metric judge on the campaign's pairs: the API's choices (``JUDGE_METRICS``); the
    tie threshold's range is the service's rule (``metric_judge_epsilon``), put next to it."""

    metric = forms.ChoiceField(label="Metric", initial="clip_score",
                               help_text="The per-image metric that judges each pair: the "
                                         "image with the higher score wins.")
    epsilon = forms.FloatField(
        required=False, label="Tie below",
        help_text="A score difference under this is a tie; empty: the metric's default "
                  "(0.25 CLIP-score points for clip_score).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["metric"].choices = [(name, name) for name in sorted(JUDGE_METRICS)]

    def add_error(self, field: str | None, error: Any) -> None:
        # The service words its refusal for the API, whose field is "epsilon" ("epsilon must
        # be a number from 0 to …"); next to this field the page calls it by its label.
        if field == "epsilon" and isinstance(error, str) and error.startswith("epsilon "):
            error = self.fields["epsilon"].label + error.removeprefix("epsilon")
        super().add_error(field, error)
