from django.apps import AppConfig


class BlobsConfig(AppConfig):
    name = "evalhub.blobs"
    label = "blobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # PIL's own bomb guard must agree with ours, or it refuses legitimate 16K images.
        Image.MAX_IMAGE_PIXELS = settings.EVALHUB_MAX_IMAGE_PIXELS
