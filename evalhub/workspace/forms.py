"""The workspace's forms: what the pages show and parse. The rules about the values (lengths,
uniqueness, references inside the project, generator parameters, file contents) are the API's
serializers' and the services', applied by the views; these forms only read the request."""

from __future__ import annotations

from django import forms
from django.conf import settings

from evalhub.core.forms import StorableJSONField, TextBoxField
from evalhub.core.text import isolated
from evalhub.evaluation.definitions import JOB_METRICS, METRIC_LABELS
from evalhub.projects.models import Project
from evalhub.prompts.models import PromptSet
from evalhub.prompts.parsers import FORMATS
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, ReferenceSet
from generators import available_generators


def _name(obj) -> str:
    # An option's label is plain text, which cannot hold the <bdi> that pages put around a
    # name: the name is isolated with Unicode's isolates instead (docs/accessibility.md).
    return isolated(obj.name)


def _choices(queryset, label=_name) -> list[tuple[int, str]]:
    return [(obj.pk, label(obj)) for obj in queryset]


class ModelForm(forms.Form):
    form_name = "model"
    name = forms.CharField()
    description = TextBoxField(required=False, rows=2)


class CheckpointForm(forms.Form):
    form_name = "checkpoint"
    model = forms.TypedChoiceField(coerce=int)
    name = forms.CharField()
    training_step = forms.IntegerField(required=False, help_text="Optimizer steps at which "
                                       "the weights were saved.")
    generator = forms.ChoiceField(help_text="The plugin that draws this checkpoint's images "
                                  "('imported' for runs whose images come from elsewhere).")
    weights_uri = forms.CharField(required=False, label="Weights URI")
    parameters = StorableJSONField(required=False, initial=dict,
                                 help_text="Generator parameters (JSON object).")

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = _choices(GenModel.objects.filter(project=project)
                                                .order_by("name"))
        self.fields["generator"].choices = [("imported", "imported")] + [
            (g["name"], f"{g['name']}: {g['description']}")
            for g in available_generators(settings.EVALHUB_GENERATORS)]


class PromptSetForm(forms.Form):
    name = forms.CharField()
    description = TextBoxField(required=False, rows=2)
    file = forms.FileField(help_text="CSV, JSONL or text (one prompt a line).")
    format = forms.ChoiceField(required=False, choices=[("", "from the file name")]
                               + [(f, f) for f in FORMATS])
    images = forms.FileField(required=False, help_text="Zip of source images named by the "
                             "source_image column (editing prompts).")


def _checkpoint_label(checkpoint: Checkpoint) -> str:
    step = "" if checkpoint.training_step is None else f" (step {checkpoint.training_step})"
    return f"{_name(checkpoint.model)} / {_name(checkpoint)}{step} · {checkpoint.generator}"


class _RunForm(forms.Form):
    name = forms.CharField()
    checkpoint = forms.TypedChoiceField(coerce=int)
    prompt_set = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["checkpoint"].choices = _choices(
            Checkpoint.objects.filter(model__project=project).select_related("model")
            .order_by("model__name", "training_step", "name"), _checkpoint_label)
        self.fields["prompt_set"].choices = _choices(
            PromptSet.objects.filter(project=project).order_by("name"))


def _metrics_field(*, required: bool = True, **kwargs) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(choices=[(m, METRIC_LABELS[m]) for m in JOB_METRICS],
                                     widget=forms.CheckboxSelectMultiple, required=required,
                                     **kwargs)


def _reference_set_field() -> forms.TypedChoiceField:
    return forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                  help_text="Needed by metrics that compare with real images "
                                  "(FID, KID, CMMD) or real videos (FVD).")


def _reference_set_choices(project: Project) -> list[tuple[object, str]]:
    return [("", "none"), *_choices(ReferenceSet.objects.filter(project=project)
                                    .order_by("name"))]


class GeneratedRunForm(_RunForm):
    seeds = forms.CharField(initial="0-3", help_text="e.g. 0-3,10")
    parameters = StorableJSONField(required=False, initial=dict,
                                 help_text="Generator parameters for this run (JSON object), "
                                 "over the checkpoint's.")
    # A metric job created with the launch waits for the run and starts on all its outputs
    # when it finishes (evaluation.services.metric_job_create), as the Metrics page's would.
    metrics = _metrics_field(required=False, label="Compute when it finishes",
                             help_text="Metrics computed on all the run's outputs once it has "
                             "finished (one metric job; the Metrics page shows it).")
    reference_set = _reference_set_field()

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, project=project, **kwargs)
        self.fields["reference_set"].choices = _reference_set_choices(project)


class ImportedRunForm(_RunForm):
    archive = forms.FileField(help_text="Zip of the run's images or videos (with "
                              "manifest.csv/jsonl inside, or the manifest below).")
    manifest = forms.FileField(required=False, help_text="CSV or JSONL with columns file, "
                               "prompt (or prompt_id), seed.")


class ReferenceSetForm(forms.Form):
    name = forms.CharField()
    description = TextBoxField(required=False, rows=2)
    archive = forms.FileField(help_text="Zip of real images (FID, KID, CMMD) or of real "
                               "videos (FVD); one kind per set.")



class OptionalJSONField(StorableJSONField):
    """A JSON field that shows nothing when empty: Django writes ``null`` into the box, which
    hid its placeholder (and read as a value to type over)."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class MetricJobForm(forms.Form):
    run = forms.TypedChoiceField(coerce=int)
    metrics = _metrics_field()
    reference_set = _reference_set_field()
    # The API's job options, for what the defaults do not suit (a small reference set's
    # rank-deficient FID, another FID feature layer, frames sampled per video): the same
    # service checks them, and a failed metric's message names the option to set here.
    options = OptionalJSONField(
        required=False, label="Options (advanced)",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"fid_feature": 768}'}),
        help_text='A JSON object of job options, e.g. {"fid_allow_rank_deficient": true} for '
                  "a reference set under 2,049 images; every option: docs/metrics.md. Empty: "
                  "the defaults.")

    def clean_options(self) -> dict:
        options = self.cleaned_data.get("options")
        if options in (None, ""):
            return {}
        if not isinstance(options, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"fid_feature": 768}.')
        return options

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["run"].choices = _choices(
            GenerationRun.objects.filter(project=project).order_by("-created_at"))
        self.fields["reference_set"].choices = _reference_set_choices(project)
