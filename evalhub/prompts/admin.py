from django.contrib import admin
from django.http import HttpRequest

from evalhub.projects.admin import ProjectFixedAdmin
from evalhub.prompts.models import Prompt, PromptSet

# Everything a prompt holds. The API never changes a prompt (PromptViewSet is read-only, its
# serializer all read-only fields): images were made from its text and source, votes and
# per-category results were given on them, and exports read the prompt as it is now. So an
# existing prompt is shown, not edited, here too; new prompts are still added.
PROMPT_FIXED_FIELDS = tuple(field.name for field in Prompt._meta.concrete_fields
                            if field.editable and not field.primary_key)


class PromptInline(admin.TabularInline):
    model = Prompt
    extra = 0
    fields = ["position", "text", "category", "tags"]
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: PromptSet | None = None
                            ) -> list[str]:
        # ``obj`` is the prompt set: on its add page its prompts are written, on its change
        # page the existing ones are shown (PROMPT_FIXED_FIELDS). A tabular inline's read-only
        # fields hold for the blank rows too, so rows are not added there either (the prompt
        # add page still adds one).
        fixed = PROMPT_FIXED_FIELDS if obj is not None else ()
        return [*super().get_readonly_fields(request, obj), *fixed]

    def has_add_permission(self, request: HttpRequest, obj: PromptSet | None = None) -> bool:
        return obj is None and super().has_add_permission(request, obj)


@admin.register(PromptSet)
class PromptSetAdmin(ProjectFixedAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["name"]
    inlines = [PromptInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["text", "category", "prompt_set", "position"]
    list_filter = ["category", "prompt_set__project"]
    search_fields = ["text"]
    raw_id_fields = ["source_image"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Prompts come with their set (the set's add page, the API's import): one added to a
        # set later would change what its runs were planned over.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Prompt | None = None
                            ) -> list[str]:
        fixed = PROMPT_FIXED_FIELDS if obj is not None else ()
        return [*super().get_readonly_fields(request, obj), *fixed]
