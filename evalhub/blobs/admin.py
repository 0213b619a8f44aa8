from django.contrib import admin

from evalhub.blobs.models import ImageBlob, VideoBlob


@admin.register(ImageBlob)
class ImageBlobAdmin(admin.ModelAdmin):
    list_display = ["sha256", "format", "width", "height", "size_bytes", "created_at"]
    search_fields = ["sha256"]
    list_filter = ["format"]
    readonly_fields = [f.name for f in ImageBlob._meta.fields]


@admin.register(VideoBlob)
class VideoBlobAdmin(admin.ModelAdmin):
    list_display = ["sha256", "container", "codec", "width", "height", "fps", "frame_count",
                    "size_bytes", "created_at"]
    search_fields = ["sha256"]
    list_filter = ["container", "codec"]
    readonly_fields = [f.name for f in VideoBlob._meta.fields]
