"""Write-side operations on projects and their members."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from evalhub.core.errors import EvalHubError
from evalhub.projects.models import Membership, Project, Role


@transaction.atomic
def project_create(
    *, name: str, owner: AbstractBaseUser, description: str = "", slug: str | None = None
) -> Project:
    """Create a project and make ``owner`` its first owner."""
    slug = slug or slugify(name)[:100]
    if not slug:
        raise EvalHubError(f"Project name {name!r} gives an empty slug; choose another name.")
    if Project.objects.filter(slug=slug).exists():
        raise EvalHubError(f"A project with slug {slug!r} already exists.")
    project = Project.objects.create(name=name, slug=slug, description=description)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` ``role`` in ``project`` (adding or changing the membership)."""
    if role not in Role.values:
        raise EvalHubError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
