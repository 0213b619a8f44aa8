"""Campaigns, their pairs and their votes in Django's admin: read-only.

Every change goes through the services (campaign states, vote counters, undo), so the admin only
shows: no add, change or delete. Thumbnails are the display derivatives, through the one
access-checked media view (evalhub/blobs/views.py), which lets superusers receive them.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from evalhub.campaigns.models import Campaign, ComparisonTask, Judgment
from evalhub.runs.admin import thumbnail


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing only: writes belong to the services, which keep counters and states right."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "status", "pair_policy", "judgments_per_pair",
                    "gold_rate", "created_by", "created_at"]
    list_filter = ["status", "pair_policy", "project", "created_at"]
    list_select_related = ["project", "created_by"]
    search_fields = ["name", "project__name"]
    date_hierarchy = "created_at"


@admin.register(ComparisonTask)
class ComparisonTaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "prompt_text", "image_a_thumbnail", "image_b_thumbnail",
                    "run_a", "run_b", "is_gold", "votes", "lpips_distance"]
    list_filter = ["is_gold", "campaign__status", "campaign__project", "campaign"]
    list_select_related = ["campaign", "prompt", "run_a", "run_b", "image_a__blob",
                           "image_b__blob"]
    search_fields = ["prompt__text", "campaign__name"]
    readonly_fields = ["image_a_thumbnail", "image_b_thumbnail"]

    @admin.display(description="prompt")
    def prompt_text(self, task: ComparisonTask) -> str:
        return task.prompt.text

    @admin.display(description="image A")
    def image_a_thumbnail(self, task: ComparisonTask) -> SafeString | str:
        return thumbnail(task.image_a, task.campaign.project_id)

    @admin.display(description="image B")
    def image_b_thumbnail(self, task: ComparisonTask) -> SafeString | str:
        return thumbnail(task.image_b, task.campaign.project_id)

    @admin.display(description="judgments")
    def votes(self, task: ComparisonTask) -> str:
        return f"{task.judgments_count}/{task.judgments_needed}"


class RetractedFilter(admin.SimpleListFilter):
    title = "retracted (undo)"
    parameter_name = "retracted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("no", "live"), ("yes", "retracted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(retracted_at__isnull=self.value() == "no")
        return queryset


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "task", "criterion", "outcome", "judge_kind",
                    "annotator", "metric_name", "a_side", "latency_ms", "retracted_at",
                    "created_at"]
    list_filter = ["judge_kind", "criterion", "outcome", RetractedFilter, "a_side",
                   "campaign__project", "campaign"]
    list_select_related = ["campaign", "annotator"]
    search_fields = ["annotator__username", "metric_name", "campaign__name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["task", "lease", "annotator"]
