"""A ViewSet base for everything that lives inside a project."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.serializers import BaseSerializer

from evalhub.core.converters import fits_id_column, whole_number
from evalhub.projects.models import Role
from evalhub.projects.permissions import ProjectObjectPermission, require_project_role
from evalhub.projects.references import check_same_project, relation_references
from evalhub.projects.selectors import projects_for_user, role_in_project


def resolve_attr_path(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj


class ProjectScopedMixin:
    """Querysets are limited to projects where the user holds one of ``read_roles``.

    Subclasses set ``project_path``: the ORM path from the model to its project id
    (``"project_id"``, ``"model__project_id"``...). List filters by id filter that queryset
    without looking the id up elsewhere (``core/filters.py``): another project's object and
    an id never used give the same answer.
    """

    project_path: str = "project_id"
    read_roles: tuple[str, ...] = (Role.OWNER, Role.SCIENTIST)
    write_roles: tuple[str, ...] = (Role.OWNER, Role.SCIENTIST)
    permission_classes = [IsAuthenticated, ProjectObjectPermission]

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        visible = projects_for_user(user=self.request.user, roles=self.read_roles)
        return self.base_queryset().filter(**{f"{self.project_path}__in": visible.values("id")})

    def get_project_id(self, obj: Model) -> int:
        return resolve_attr_path(obj, self.project_path)

    def project_id_from_validated(self, serializer: BaseSerializer) -> int:
        """The project a new object will belong to, from the validated input."""
        path, _, rest = self.project_path.partition("__")
        related = serializer.validated_data[path.removesuffix("_id")]
        return resolve_attr_path(related, rest) if rest else related.id

    def check_write(self, serializer: BaseSerializer, instance: Model | None = None) -> int:
        """The project the write lands in, once the caller's role there and every object the
        input points at (references.check_same_project) are checked.

        An existing object stays in its project: the relation that names its project (a
        model's project, a checkpoint's model, a run's checkpoint) is checked like any other.
        Moving it would leave what already points at it (runs at a prompt set or checkpoint,
        campaigns at runs) pointing across projects, and a run moved with its checkpoint
        would show its project's prompts to the other project.
        """
        if instance is None:
            project_id = self.project_id_from_validated(serializer)
            require_project_role(request=self.request, project_id=project_id,
                                 roles=self.write_roles)
        else:
            # ProjectObjectPermission has checked the caller's role in this project.
            project_id = self.get_project_id(instance)
        check_same_project(project_id, **relation_references(serializer))
        return project_id

    def check_role_first(self, data: Any) -> None:
        """403 for a member whose role may not write here, before the body is validated.

        Only for a body that names its project itself (``project_path`` is ``project_id``):
        a member of that project without one of ``write_roles`` is refused at once, as with a
        valid body, rather than told what is wrong with the rest of it (400). A body naming an
        object the row hangs from (a model, a run) is not looked at: to an annotator those do
        not exist (docs/security.md, "blind"), and a 403 would tell them one does. Nor is a
        body naming no readable id, or a project the caller is no member of: validation's
        "does not exist" reveals nothing. :meth:`check_write` checks the role again on the
        validated input.
        """
        if self.project_path != "project_id":
            return
        # Read as the relation field reads it (``references``), so the same ids are checked.
        pk = whole_number(data.get("project")) if hasattr(data, "get") else None
        if pk is None or not fits_id_column(pk):
            return
        role = role_in_project(user=self.request.user, project_id=pk)
        if role is not None and role not in self.write_roles:
            require_project_role(request=self.request, project_id=pk, roles=self.write_roles)

    def perform_create(self, serializer: BaseSerializer) -> None:
        self.check_write(serializer)
        serializer.save()

    def perform_update(self, serializer: BaseSerializer) -> None:
        self.check_write(serializer, serializer.instance)
        serializer.save()


class ProjectScopedViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    def create(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.check_role_first(request.data)
        return super().create(request, *args, **kwargs)


class ProjectScopedReadOnlyViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    pass
