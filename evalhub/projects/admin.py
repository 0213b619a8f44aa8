from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from evalhub.core.admin import NameRuleAdmin
from evalhub.projects.models import Membership, Project
from evalhub.projects.references import project_path


def project_fixed_fields(obj: Model | None) -> list[str]:
    """The field naming ``obj``'s project, for an existing object that names it itself
    (``PROJECT_PATHS``: ``project_id``): the API never moves an object to another project
    (``ProjectScopedMixin.check_write`` keeps an existing object's project), as what already
    points at it (runs, campaigns, votes) would then point across projects."""
    if obj is None or project_path(type(obj)) != "project_id":
        return []
    return ["project"]


class ProjectFixedAdmin(NameRuleAdmin, admin.ModelAdmin):
    """Shows an existing object's project read-only (:func:`project_fixed_fields`); a new
    object's project is chosen on the add page as before."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None
                            ) -> list[str]:
        return [*super().get_readonly_fields(request, obj), *project_fixed_fields(obj)]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(NameRuleAdmin, admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ProjectFixedAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    autocomplete_fields = ["user", "project"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None
                            ) -> list[str]:
        # The API's rule (projects.services.membership_fixed_check): only the role changes;
        # the project comes from ProjectFixedAdmin.
        person = ["user"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *person]
