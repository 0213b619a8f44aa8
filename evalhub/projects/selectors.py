"""Read-side queries about projects and roles."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from evalhub.projects.models import Membership, Project, Role

# Roles that may see and change runs, models, metrics; annotators only rate (and stay blind).
SCIENCE_ROLES = (Role.OWNER, Role.SCIENTIST)


def projects_for_user(
    *, user: AbstractBaseUser | AnonymousUser, roles: Iterable[str] | None = None
) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return Project.objects.filter(id__in=memberships.values("project_id"))


def role_in_project(*, user: AbstractBaseUser | AnonymousUser, project_id: int) -> str | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, project_id=project_id)
        .values_list("role", flat=True)
        .first()
    )
