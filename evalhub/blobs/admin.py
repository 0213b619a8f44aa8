from django.contrib import admin

from evalhub.blobs.models import ImageBlob


@admin.register(ImageBlob)
class ImageBlobAdmin(admin.ModelAdmin):
    list_display = ["sha256", "format", "width", "height", "size_bytes", "created_at"]
    search_fields = ["sha256"]
    list_filter = ["format"]
    readonly_fields = [f.name for f in ImageBlob._meta.fields]
