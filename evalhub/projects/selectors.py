"""Read-side queries about projects and roles."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value

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


def _role_of(user: AbstractBaseUser, project_id: int | OuterRef) -> QuerySet:
    """The role ``user`` holds in the project: the one rule of both readers below."""
    return Membership.objects.filter(user=user, project_id=project_id).order_by("pk").values(
        "role")


def role_in_project(*, user: AbstractBaseUser | AnonymousUser, project_id: int) -> str | None:
    if not user.is_authenticated:
        return None
    return _role_of(user, project_id).values_list("role", flat=True).first()


def with_role_of(
    projects: QuerySet[Project], *, user: AbstractBaseUser | AnonymousUser
) -> QuerySet[Project]:
    """``projects``, each annotated with ``user_role``: what :func:`role_in_project` answers
    for it, as a subquery of the list's one query rather than a query per project."""
    if not user.is_authenticated:
        return projects.annotate(user_role=Value(None, output_field=CharField()))
    return projects.annotate(user_role=Subquery(_role_of(user, OuterRef("pk"))[:1]))
