"""Values every page's layout reads (templates/base.html)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from evalhub.projects.models import Membership
from evalhub.projects.selectors import SCIENCE_ROLES


def navigation(request: HttpRequest) -> dict[str, object]:
    """``nav_science``: whether the user is an owner or scientist of some project, the roles
    the dashboards admit (annotators would meet a 403 there, so the layout hides the link).

    Lazy: one ``EXISTS`` query, and only on pages whose template reads it (the rating page
    and JSON answers never do).
    """
    user = getattr(request, "user", None)

    def science() -> bool:
        if user is None or not user.is_authenticated:
            return False
        return Membership.objects.filter(user=user, role__in=list(SCIENCE_ROLES)).exists()

    return {"nav_science": SimpleLazyObject(science)}
