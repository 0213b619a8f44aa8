"""Who may open the workspace pages: owners and scientists of the object's project.

The rule of the API (``ProjectScopedMixin``) as the gallery applies it (runs/gallery/access.py):
non-members and unknown ids 404, annotators 403; anonymous callers are sent to sign in by the
views' ``login_required`` first. Writes (POST) need the same roles as reads here, as in the API.
"""

from __future__ import annotations

from django.db.models import Model
from django.http import Http404

from evalhub.evaluation.models import MetricJob
from evalhub.projects.models import Project
from evalhub.runs.gallery.access import User, project_for_science
from evalhub.runs.models import GenerationRun
from evalhub.workspace.deletion import KINDS


def workspace_project(*, user: User, project_id: int) -> Project:
    """The project, if ``user`` is one of its owners or scientists (else 404 / 403)."""
    return project_for_science(user=user, project_id=project_id)


def workspace_run(*, user: User, run_id: int) -> GenerationRun:
    """The run with its checkpoint, model and prompt set, for owners and scientists of its
    project (else 404 / 403)."""
    run = (GenerationRun.objects.filter(pk=run_id)
           .select_related("checkpoint__model", "prompt_set", "project").first())
    if run is None:
        raise Http404("No such run.")
    project_for_science(user=user, project_id=run.project_id)
    return run


def workspace_metric_job(*, user: User, job_id: int) -> MetricJob:
    """The metric job with its run and reference set, for owners and scientists of its project
    (else 404 / 403)."""
    job = (MetricJob.objects.filter(pk=job_id)
           .select_related("run", "reference_set", "project").first())
    if job is None:
        raise Http404("No such metric job.")
    project_for_science(user=user, project_id=job.project_id)
    return job


def workspace_object(*, user: User, kind: str, object_id: int) -> tuple[Model, Project]:
    """The object of URL kind ``kind`` (deletion.KINDS) and its project, for owners and
    scientists of that project (else 404 / 403; an unknown kind is 404 too)."""
    if kind not in KINDS:
        raise Http404("No such kind of object.")
    model, label, project_lookup = KINDS[kind]
    found = model.objects.filter(pk=object_id).values_list(project_lookup, flat=True).first()
    if found is None:
        raise Http404(f"No such {label}.")
    project = project_for_science(user=user, project_id=found)
    return model.objects.get(pk=object_id), project
