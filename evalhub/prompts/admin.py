from django.contrib import admin

from evalhub.prompts.models import Prompt, PromptSet


class PromptInline(admin.TabularInline):
    model = Prompt
    extra = 0
    fields = ["position", "text", "category", "tags"]
    show_change_link = True


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
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
