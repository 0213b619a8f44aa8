"""Object permissions: every object belongs to a project; a role in it decides access.

Non-members get 404 (objects are filtered out of every queryset, so their existence does not
leak); members without a sufficient role get 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from evalhub.projects.models import Role
from evalhub.projects.selectors import role_in_project


def require_project_role(
    *, request: Request, project_id: int, roles: tuple[str, ...]
) -> str:
    """Return the user's role in the project, raising 404 for non-members, 403 for others."""
    role = role_in_project(user=request.user, project_id=project_id)
    if role is None:
        raise NotFound("No such project.")
    if role not in roles:
        raise PermissionDenied(f"Your role in this project ({role}) does not allow this.")
    return role


class ProjectObjectPermission(BasePermission):
    """Reads need any of ``read_roles``; writes need owner or scientist.

    Views declare ``read_roles`` and implement ``get_project_id(obj)``.
    """

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        project_id = view.get_project_id(obj)
        if request.method in SAFE_METHODS:
            roles = getattr(view, "read_roles", (Role.OWNER, Role.SCIENTIST))
        else:
            roles = getattr(view, "write_roles", (Role.OWNER, Role.SCIENTIST))
        require_project_role(request=request, project_id=project_id, roles=tuple(roles))
        return True
