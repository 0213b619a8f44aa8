from django.db import models


class ImageBlob(models.Model):
    """One stored image file, addressed by the sha256 of its bytes (so duplicates exist once)."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to="blobs/", max_length=255)
    format = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    mode = models.CharField(max_length=16, help_text="PIL mode: RGB, RGBA, L, I;16 ...")
    size_bytes = models.BigIntegerField()
    preview = models.FileField(
        upload_to="previews/", max_length=255, blank=True,
        help_text="Downscaled WebP for dashboards and lists, made by a worker.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height} {self.format}"
