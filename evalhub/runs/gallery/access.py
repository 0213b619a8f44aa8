"""Who may open the gallery and image pages: owners and scientists of the project.

The rule of the API (``ProjectScopedMixin``, evalhub/projects/permissions.py) and of the
dashboards: non-members (and unknown ids) get 404, so a URL does not reveal what exists;
annotators get 403, because they rate blind and never see runs. Anonymous callers are sent
to the sign-in page by the views' ``login_required`` before this is asked.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from evalhub.projects.models import Project
from evalhub.projects.selectors import SCIENCE_ROLES, role_in_project
from evalhub.runs.models import Image

User = AbstractBaseUser | AnonymousUser


def _check(user: User, project_id: int, what: str) -> None:
    role = role_in_project(user=user, project_id=project_id)
    if role is None:
        raise Http404(f"No such {what}.")
    if role not in SCIENCE_ROLES:
        raise PermissionDenied(f"Your role in this project ({role}) cannot see runs.")


def project_for_science(*, user: User, project_id: int) -> Project:
    """The project, if ``user`` is one of its owners or scientists (else 404 / 403)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise Http404("No such project.")
    _check(user, project.pk, "project")
    return project


def image_for_science(*, user: User, image_id: int) -> Image:
    """The image with its run, checkpoint, model, project, prompt, blob and video (with its
    poster) if any, if ``user`` is an owner or scientist of its run's project (else 404 /
    403)."""
    image = (Image.objects.filter(pk=image_id)
             .select_related("run__checkpoint__model", "run__project", "prompt", "blob",
                             "video__poster")
             .first())
    if image is None:
        raise Http404("No such image.")
    _check(user, image.run.project_id, "image")
    return image
