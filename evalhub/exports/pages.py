"""The export page: choose a format and filters, download the file (streamed).

The parameters are the export API's (``ExportQuerySerializer``, the same names, defaults and
limits), validated by that serializer and turned into the same ``ExportOptions``; a refusal
is shown next to its field. The download is the API's (``apis.download_response``). Who may
export is the API's rule too (``access.campaign_for_export``): owners and scientists
(annotators 403, others 404), raw usernames owners only.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from evalhub.campaigns.manage.errors import attach_service_error
from evalhub.campaigns.models import Campaign, Criterion, criterion_questions
from evalhub.campaigns.selectors import campaign_medium
from evalhub.core.errors import EvalHubError
from evalhub.core.text import isolated
from evalhub.exports.access import campaign_for_export
from evalhub.exports.apis import ExportQuerySerializer, download_response
from evalhub.exports.options import (
    AGGREGATES,
    DPO_JSONL,
    PICKAPIC_PARQUET,
    RAW_CSV,
    RAW_PARQUET,
)
from evalhub.exports.selectors import campaign_categories
from evalhub.projects.models import Role

FORMAT_LABELS = [
    (DPO_JSONL, "TRL DPO (JSONL)"), (PICKAPIC_PARQUET, "Pick-a-Pic (Parquet)"),
    (RAW_CSV, "Raw votes (CSV)"), (RAW_PARQUET, "Raw votes (Parquet)"),
]
KEEP_DROP = [("", "format's default"), ("keep", "keep"), ("drop", "drop")]
# ExportOptions' refusals -> the field they are about.
OPTION_HINTS = {"aggregat": "aggregate", "dpo rows": "ties", "min_gold_accuracy":
                "min_gold_accuracy", "min_agreement": "min_agreement", "since": "until",
                "base_url": "base_url", "format": "format"}


class ExportForm(forms.Form):
    """What the page shows; the values are checked by the API's serializer (``clean``)."""

    format = forms.ChoiceField(choices=FORMAT_LABELS, widget=forms.RadioSelect,
                               initial=DPO_JSONL)
    aggregate = forms.ChoiceField(choices=[(a, a) for a in AGGREGATES], initial="judgment",
                                  required=False,
                                  help_text="One row per vote, or one per pair (majority).")
    criterion = forms.MultipleChoiceField(choices=Criterion.choices, required=False,
                                          widget=forms.CheckboxSelectMultiple,
                                          label="Questions", help_text="None: all of them.")
    category = forms.ChoiceField(required=False, label="Prompt category")
    since = forms.CharField(required=False, help_text="Votes from (ISO date-time).",
                            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.CharField(required=False, help_text="Votes before (ISO date-time).",
                            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ties = forms.ChoiceField(choices=KEEP_DROP, required=False)
    both_bad = forms.ChoiceField(choices=KEEP_DROP, required=False, label="Both bad")
    min_gold_accuracy = forms.CharField(required=False, help_text="0 to 1; empty: no filter.")
    min_agreement = forms.CharField(required=False, help_text="0 to 1; empty: no filter.")
    include_excluded = forms.BooleanField(required=False,
                                          label="Include excluded annotators' votes")
    metric_judges = forms.BooleanField(required=False, label="Include metric judges")
    include_gold = forms.BooleanField(required=False, label="Include gold pairs")
    image_bytes = forms.BooleanField(required=False, initial=True,
                                     label="Image bytes in the file (Pick-a-Pic)")
    base_url = forms.CharField(required=False, label="Base URL for image references")
    bundle = forms.ChoiceField(choices=[("", "data file only"), ("zip", "zip with images")],
                               required=False)
    raw_usernames = forms.BooleanField(required=False, label="Raw usernames (owners only)")

    def __init__(self, *args, campaign: Campaign, owner: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # What this campaign asks and the categories of its prompts, not the whole project's;
        # a category isolated in its option's label (plain text: docs/accessibility.md).
        questions = criterion_questions(campaign_medium(campaign=campaign))
        self.fields["criterion"].choices = [(c, questions[c]) for c in campaign.criteria]
        self.fields["category"].choices = [
            ("", "all"), *((c, isolated(c)) for c in campaign_categories(campaign=campaign))]
        if not owner:
            del self.fields["raw_usernames"]
        self.options = None

    def validate_with_api(self, data) -> None:
        """Check the submitted values with the API's serializer and build ``self.options``;
        every refusal lands next to its field."""
        raw = {key: data.get(key) for key in data if key in self.fields and data.get(key) != ""}
        raw["criterion"] = data.getlist("criterion")
        for name in ("include_excluded", "metric_judges", "include_gold", "image_bytes",
                     "raw_usernames"):
            raw[name] = name in data
        query = ExportQuerySerializer(data=raw)
        if not query.is_valid():
            for name, messages in query.errors.items():
                field = name if name in self.fields else None
                for message in messages if isinstance(messages, list) else [messages]:
                    self.add_error(field, str(message))
            return
        try:
            self.options = query.to_options()
        except EvalHubError as error:
            attach_service_error(self, error, OPTION_HINTS)


@login_required
@require_safe
def export_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, role = campaign_for_export(user=request.user, campaign_id=campaign_id)
    owner = role == Role.OWNER
    if "download" not in request.GET:
        form = ExportForm(campaign=campaign, owner=owner)
        return render(request, "exports/export.html", {"campaign": campaign, "form": form})
    if "raw_usernames" in request.GET and not owner:
        raise PermissionDenied("Only project owners may export raw usernames.")
    form = ExportForm(request.GET, campaign=campaign, owner=owner)
    if form.is_valid():
        form.validate_with_api(request.GET)
    if form.errors or form.options is None:
        return render(request, "exports/export.html", {"campaign": campaign, "form": form},
                      status=400)
    return download_response(campaign=campaign, options=form.options)
