"""The workspace's pages (owners and scientists; annotators 403, others 404; anonymous callers
sign in first).

Thin: access.py checks the caller, forms.py reads the request, and every write is the API's
own path: its serializer validates the fields (lengths, uniqueness, references the caller can
see), its viewset's ``perform_create`` and the apps' services apply the business rules, so a
rule has one implementation. Refusals are shown next to their field (errors.py) with status
400, and nothing is stored (the writes of one form run in one transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from evalhub.blobs.sources import open_source
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import QueueUnavailable
from evalhub.core.text import counted
from evalhub.core.uploads import uploaded_file_path
from evalhub.evaluation import services as evaluation_services
from evalhub.evaluation.apis import MetricJobSerializer, MetricJobViewSet
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.generation.plan import format_seeds, parse_seeds
from evalhub.generation.services import generation_launch
from evalhub.projects.models import Project
from evalhub.projects.selectors import SCIENCE_ROLES, projects_for_user
from evalhub.prompts.apis import PromptSetImportSerializer
from evalhub.prompts.models import PromptSet
from evalhub.prompts.parsers import detect_format
from evalhub.prompts.services import prompt_set_import
from evalhub.runs.apis import (
    IMPORT_REPORT,
    CheckpointSerializer,
    GenerationRunSerializer,
    GenerationRunViewSet,
    GenModelSerializer,
    ReferenceSetSerializer,
)
from evalhub.runs.importing.answers import reference_import_lines, run_import_lines
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import (
    GENERATING_RUN_STATUSES,
    GenerationRun,
    GenModel,
    MediaKind,
    ReferenceSet,
    RunSource,
)
from evalhub.workspace import forms as wforms
from evalhub.workspace.access import (
    workspace_metric_job,
    workspace_object,
    workspace_project,
    workspace_run,
)
from evalhub.workspace.deletion import StillInUse, deletion_plan, object_delete
from evalhub.workspace.errors import add_serializer_errors, add_service_error
from evalhub.workspace.notices import notice_add, notice_lines, notice_query
from evalhub.workspace.progress import metric_job_progress, run_progress, unfinished_ids

GET_OR_POST = require_http_methods(["GET", "HEAD", "POST"])

logger = logging.getLogger(__name__)


def _page(request: HttpRequest, template: str, project: Project, tab: str,
          context: dict[str, Any], *, invalid: bool = False, status: int | None = None
          ) -> HttpResponse:
    return render(request, f"workspace/{template}", {
        "project": project, "tab": tab, "notice": notice_lines(request), **context},
        status=status or (400 if invalid else 200))


def _redirect_saying(request: HttpRequest, url: str, lines: list[str]) -> HttpResponse:
    """A redirect to ``url``, whose page shows ``lines`` (what an import said: notices.py)."""
    return redirect(url + notice_query(notice_add(request, lines)) if lines else url)


def _validated(form: forms.Form, serializer: serializers.Serializer) -> bool:
    """The API serializer's verdict on the form's values, its errors copied onto the form."""
    if serializer.is_valid():
        return True
    add_serializer_errors(form, serializer.errors)
    return False


def _write(form: forms.Form, action: Callable[[], Any], *, field: str | None,
           about: dict[str, str] | None = None) -> Any:
    """Run ``action`` in one transaction; a refusal (service or serializer) lands next to its
    field and leaves nothing stored. Returns the action's result, or None when refused.

    A broker that does not take the work queued at the commit (:class:`QueueUnavailable`) is
    no refusal: what the action wrote is committed, and the object's own page shows its state
    (a run "failed: could not be queued, launch it again", a metric job to resume), so the
    result is returned as saved; said as a refusal, a second submit would store it twice."""
    result = None
    try:
        with transaction.atomic():
            result = action()
        return result
    except QueueUnavailable:
        logger.warning("saved, but its work was not queued (broker unreachable)", exc_info=True)
        return result
    except ValidationError as exc:
        add_serializer_errors(form, exc.detail if isinstance(exc.detail, dict)
                              else {"non_field_errors": exc.detail})
    except EvalHubError as exc:
        add_service_error(form, exc, field=field, about=about)
    return None


def _api_view(viewset: type, request: HttpRequest) -> Any:
    """The API's viewset for this request, to call its ``perform_create`` (which reads only
    the request's user): the page creates exactly as ``POST`` to the API does."""
    return viewset(request=request, format_kwarg=None, action="create")


# ------------------------------------------------------------------------------ home


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The projects whose workspace the caller may use (owner or scientist)."""
    projects = projects_for_user(user=request.user, roles=SCIENCE_ROLES).order_by("name")
    return render(request, "workspace/home.html", {"projects": projects})


# ------------------------------------------------------------------------------ models


@login_required
@GET_OR_POST
def models_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = workspace_project(user=request.user, project_id=project_id)
    data = request.POST if request.method == "POST" else None
    which = request.POST.get("form") if data else None
    model_form = wforms.ModelForm(data if which == "model" else None, prefix="model")
    checkpoint_form = wforms.CheckpointForm(data if which == "checkpoint" else None,
                                            project=project, prefix="checkpoint")
    if which == "model" and model_form.is_valid():
        serializer = GenModelSerializer(data={"project": project.pk, **model_form.cleaned_data},
                                        context={"request": request})
        if _validated(model_form, serializer) and _write(model_form, serializer.save,
                                                         field="name"):
            return redirect("workspace-models", project_id=project.pk)
    elif which == "checkpoint" and checkpoint_form.is_valid():
        values = dict(checkpoint_form.cleaned_data)
        values["parameters"] = values.get("parameters") or {}
        if values.get("training_step") is None:
            values.pop("training_step", None)
        serializer = CheckpointSerializer(data=values, context={"request": request})
        if _validated(checkpoint_form, serializer) and _write(checkpoint_form, serializer.save,
                                                              field="name"):
            return redirect("workspace-models", project_id=project.pk)
    models = (GenModel.objects.filter(project=project).order_by("name")
              .prefetch_related("checkpoints"))
    return _page(request, "models.html", project, "models", {
        "models": models, "model_form": model_form, "checkpoint_form": checkpoint_form,
    }, invalid=which in ("model", "checkpoint"))


# ------------------------------------------------------------------------------ prompt sets


@login_required
@GET_OR_POST
def prompts_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = workspace_project(user=request.user, project_id=project_id)
    posted = request.method == "POST"
    form = wforms.PromptSetForm(request.POST if posted else None,
                                request.FILES if posted else None)
    if posted and form.is_valid():
        values = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        serializer = PromptSetImportSerializer(data={"project": project.pk, **values},
                                               context={"request": request})
        if _validated(form, serializer) and _write(
                form, lambda: _import_prompts(request, serializer.validated_data), field="file",
                about={"source image": "images", "zip": "images"}):
            return redirect("workspace-prompts", project_id=project.pk)
    prompt_sets = (PromptSet.objects.filter(project=project).order_by("name")
                   .annotate(prompt_count=Count("prompts")))
    return _page(request, "prompts.html", project, "prompts", {
        "prompt_sets": [(ps, ps.prompt_count) for ps in prompt_sets], "form": form,
    }, invalid=posted)


def _import_prompts(request: HttpRequest, data: dict[str, Any]) -> PromptSet:
    """The API's import (prompts.apis.PromptSetViewSet.import_file) of validated input."""
    upload = data["file"]
    with ExitStack() as stack:
        images = None
        if data.get("images") is not None:
            path = stack.enter_context(uploaded_file_path(data["images"]))
            images = stack.enter_context(
                open_source(path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES))
        return prompt_set_import(
            project=data["project"], name=data["name"], description=data["description"],
            data=upload.read(), fmt=data.get("format") or detect_format(upload.name or ""),
            created_by=request.user, images=images)


# ------------------------------------------------------------------------------ runs

RUN_ERRORS_ABOUT = {"seed": "seeds", "parameter": "parameters", "generator": "checkpoint",
                    "prompt set": "prompt_set", "manifest": "manifest", "checkpoint": "checkpoint"}

# Where a metric job's refusals go on a form that creates one (first match wins).
METRIC_ERRORS_ABOUT = {"reference set": "reference_set", "has no images": "run",
                       "metric job options": "options"}


def _create_run(request: HttpRequest, form: forms.Form, values: dict[str, Any],
                *, launch: bool, metric_job: dict[str, Any] | None = None,
                ) -> tuple[GenerationRun, list[str]] | None:
    """The API's ``POST /runs/`` (with ``archive`` for an import), then for a generated run
    its ``launch`` and, when ``metric_job`` names metrics, the API's ``POST /metric-jobs/``
    for it (a job that waits for the run): one transaction, so a run that cannot be launched,
    or whose metrics are refused, is not left behind. With the run, what its import or its
    metric job said (the command's lines; none for a generated run without metrics)."""
    serializer = GenerationRunSerializer(data=values, context={"request": request})
    if not _validated(form, serializer):
        return None

    def create() -> tuple[GenerationRun, list[str]]:
        _api_view(GenerationRunViewSet, request).perform_create(serializer)
        run = serializer.instance
        if launch:
            generation_launch(run=run)
        if metric_job and metric_job["metrics"]:
            job = _metric_job_create(request, {**metric_job, "run": run.pk})
            return run, [f"Metric job #{job.pk} ({', '.join(job.metrics)}) "
                         + ("waits for the run to finish." if job.status == JobStatus.WAITING
                            else f"is {job.get_status_display().lower()}.")]
        report = serializer.context.get(IMPORT_REPORT)
        return run, run_import_lines(run, report) if report is not None else []

    return _write(form, create, field="parameters" if launch else "archive",
                  about={**METRIC_ERRORS_ABOUT, **RUN_ERRORS_ABOUT} if metric_job
                  else RUN_ERRORS_ABOUT)


@login_required
@GET_OR_POST
def runs_page(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's runs, a form to create and launch a generated run, and one to import a
    zip (sent by static/js/workspace/upload.js with a progress bar, or as a plain form)."""
    project = workspace_project(user=request.user, project_id=project_id)
    which = request.POST.get("form") if request.method == "POST" else None
    generated = wforms.GeneratedRunForm(request.POST if which == "generated" else None,
                                        project=project, prefix="generated")
    imported = wforms.ImportedRunForm(request.POST if which == "imported" else None,
                                      request.FILES if which == "imported" else None,
                                      project=project, prefix="imported")
    created = None
    if which == "generated" and generated.is_valid():
        values = dict(generated.cleaned_data)
        try:
            values["seeds"] = parse_seeds(values["seeds"])
        except EvalHubError as exc:  # not seeds, an empty range, or too many
            generated.add_error("seeds", str(exc))
        else:
            values["parameters"] = values.get("parameters") or {}
            metric_job = {"metrics": values.pop("metrics"),
                          "reference_set": values.pop("reference_set")}
            created = _create_run(request, generated,
                                  {**values, "source": RunSource.GENERATED}, launch=True,
                                  metric_job=metric_job)
    elif which == "imported" and imported.is_valid():
        values = {k: v for k, v in imported.cleaned_data.items() if v is not None}
        created = _create_run(request, imported, {**values, "source": RunSource.IMPORTED},
                              launch=False)
    if created is not None:
        run, said = created
        return _redirect_saying(request, reverse("workspace-run", kwargs={"run_id": run.pk}),
                                said)
    runs = list(GenerationRun.objects.filter(project=project)
                .select_related("checkpoint__model", "prompt_set").order_by("-created_at"))
    # Unfinished rows update themselves from the run's progress JSON (progress.js).
    return _page(request, "runs.html", project, "runs", {
        "runs": runs, "unfinished": unfinished_ids(runs), "generated_form": generated,
        "imported_form": imported,
    }, invalid=which in ("generated", "imported"))


@login_required
@require_safe
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run's live progress (generation), its failures and its final state."""
    run = workspace_run(user=request.user, run_id=run_id)
    return _page(request, "run.html", run.project, "runs", _run_context(run))


def _run_context(run: GenerationRun, launch_error: str | None = None) -> dict:
    # Seeds as ranges (100 to 199 in one part): a run may hold 100,000 of them.
    jobs = list(MetricJob.objects.filter(run=run).select_related("run", "reference_set")
                .order_by("-created_at")[:50])
    return {"run": run, "progress": run_progress(run=run), "launch_error": launch_error,
            "seeds": format_seeds(run.seeds or []), "metric_jobs": jobs,
            "metric_jobs_unfinished": unfinished_ids(jobs)}


@login_required
@require_POST
def run_launch(request: HttpRequest, run_id: int) -> HttpResponse:
    """Launch a generated run again: only its missing items are queued (the API's launch)."""
    run = workspace_run(user=request.user, run_id=run_id)
    try:
        batches = generation_launch(run=run)
    except EvalHubError as exc:
        return _page(request, "run.html", run.project, "runs", _run_context(run, str(exc)),
                     invalid=True)
    return _redirect_saying(request, reverse("workspace-run", kwargs={"run_id": run.pk}),
                            [_launch_line(run, batches)])


def _launch_line(run: GenerationRun, batches: int) -> str:
    """What a launch did, said on the run's page (a finished run would otherwise reload with
    no word): ``"Nothing to generate: all 16 images are done."`` when no batch was queued,
    else ``"Queued 3 images to generate; 13 of 16 are done."``. Images here are the run's
    stored outputs (videos for a video run); queued = items of the run (``items_total``, set
    by the launch) with no stored output yet, failed ones included (they are tried again)."""
    total = run.items_total
    done = min(run.images.count(), total)
    if batches == 0:
        if total == 1:
            return f"Nothing to generate: its 1 {run.media_kind} is done."
        return f"Nothing to generate: all {counted(total, run.media_kind)} are done."
    return (f"Queued {counted(total - done, run.media_kind)} to generate; "
            f"{done:,} of {total:,} {'is' if done == 1 else 'are'} done.")


@login_required
@require_safe
def run_progress_json(request: HttpRequest, run_id: int) -> JsonResponse:
    run = workspace_run(user=request.user, run_id=run_id)
    return JsonResponse(run_progress(run=run).as_json())


# ------------------------------------------------------------------------------ references


@login_required
@GET_OR_POST
def references_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = workspace_project(user=request.user, project_id=project_id)
    posted = request.method == "POST"
    form = wforms.ReferenceSetForm(request.POST if posted else None,
                                   request.FILES if posted else None)
    if posted and form.is_valid():
        values = form.cleaned_data
        serializer = ReferenceSetSerializer(
            data={"project": project.pk, "name": values["name"],
                  "description": values["description"]}, context={"request": request})

        def create() -> list[str]:
            # Created in the import's transaction: a refused zip leaves no empty set behind.
            reference_set = serializer.save()
            with uploaded_file_path(values["archive"]) as path, open_source(
                    path, max_total_bytes=settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES) as source:
                report = reference_set_import(reference_set=reference_set, source=source)
            return reference_import_lines(reference_set, report)

        said = _validated(form, serializer) and _write(form, create, field="archive")
        if said:
            return _redirect_saying(
                request, reverse("workspace-references", kwargs={"project_id": project.pk}),
                said)
    reference_sets = (ReferenceSet.objects.filter(project=project).order_by("name")
                      .annotate(image_count=Count("images", distinct=True),
                                video_count=Count("videos", distinct=True)))
    return _page(request, "references.html", project, "references", {
        "reference_sets": [(rs, rs.video_count if rs.media_kind == MediaKind.VIDEO
                            else rs.image_count) for rs in reference_sets], "form": form,
    }, invalid=posted)


# ------------------------------------------------------------------------------ metric jobs


def _metric_job_create(request: HttpRequest, values: dict[str, Any]) -> MetricJob:
    """The API's ``POST /metric-jobs/`` of a form's values; its refusals are raised (a
    serializer's ValidationError, a service's EvalHubError) for :func:`_write` to place."""
    serializer = MetricJobSerializer(data=values, context={"request": request})
    serializer.is_valid(raise_exception=True)
    _api_view(MetricJobViewSet, request).perform_create(serializer)
    return serializer.instance


@login_required
@GET_OR_POST
def metrics_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = workspace_project(user=request.user, project_id=project_id)
    posted = request.method == "POST"
    # ?run=<id> (the run page's "Compute metrics" link): that run chosen in the form.
    form = wforms.MetricJobForm(request.POST if posted else None, project=project,
                                initial={"run": request.GET.get("run")})
    if posted and form.is_valid():
        job = _write(form, lambda: _metric_job_create(request, form.cleaned_data),
                     field="metrics", about=METRIC_ERRORS_ABOUT)
        if job:
            return redirect("workspace-metric-job", job_id=job.pk)
    jobs = list(MetricJob.objects.filter(project=project)
                .select_related("run", "reference_set").order_by("-created_at")[:50])
    # Unfinished rows update themselves from the job's progress JSON (progress.js).
    return _page(request, "metrics.html", project, "metrics", {
        "jobs": jobs, "unfinished": unfinished_ids(jobs), "form": form}, invalid=posted)


@login_required
@require_safe
def metric_job_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = workspace_metric_job(user=request.user, job_id=job_id)
    return _metric_job_page(request, job, resumed=request.GET.get("resumed") == "1")


def _metric_job_page(request: HttpRequest, job: MetricJob, *, resumed: bool = False,
                     resume_error: str | None = None, status: int | None = None
                     ) -> HttpResponse:
    # A job waiting for a run that still generates has nothing to resume; one whose run has
    # closed without starting it (its start lost) has: Resume starts it.
    waiting_for_run = (job.status == JobStatus.WAITING
                       and job.run.status in GENERATING_RUN_STATUSES)
    return _page(request, "metric_job.html", job.project, "metrics", {
        "job": job, "progress": metric_job_progress(job=job), "resume_error": resume_error,
        "resumed": resumed, "waiting_for_run": waiting_for_run}, status=status)


@login_required
@require_POST
def metric_job_resume(request: HttpRequest, job_id: int) -> HttpResponse:
    """Resume a job whose messages were lost: its shards not done are queued again (the API's
    resume). A finished job is refused with the reason on the page (409)."""
    job = workspace_metric_job(user=request.user, job_id=job_id)
    try:
        evaluation_services.metric_job_resume(job=job)
    except EvalHubError as exc:
        job.refresh_from_db()
        return _metric_job_page(request, job, resume_error=str(exc), status=exc.http_status)
    return redirect(reverse("workspace-metric-job", kwargs={"job_id": job.pk}) + "?resumed=1")


@login_required
@require_safe
def metric_job_progress_json(request: HttpRequest, job_id: int) -> JsonResponse:
    job = workspace_metric_job(user=request.user, job_id=job_id)
    return JsonResponse(metric_job_progress(job=job).as_json())


# ------------------------------------------------------------------------------ deletion

AFTER_DELETE = {"model": "workspace-models", "checkpoint": "workspace-models",
                "prompt-set": "workspace-prompts", "run": "workspace-runs",
                "reference-set": "workspace-references", "campaign": "campaigns-manage",
                "metric-job": "workspace-metrics"}


@login_required
@GET_OR_POST
def delete_page(request: HttpRequest, kind: str, object_id: int) -> HttpResponse:
    """Confirm, then delete, one object: what it removes with it is listed first; a refusal
    (still in use, still being worked on) is shown in its place with status 409."""
    obj, project = workspace_object(user=request.user, kind=kind, object_id=object_id)
    error = None
    if request.method == "POST":
        try:
            object_delete(kind=kind, obj=obj)
        except StillInUse as exc:
            error = exc.message
        else:
            return redirect(AFTER_DELETE[kind], project_id=project.pk)
    plan = deletion_plan(kind=kind, obj=obj)
    refused = error or plan.refused
    return _page(request, "delete.html", project, "", {
        "plan": plan, "refused": refused, "back": AFTER_DELETE[kind]},
        status=409 if error else 200)
