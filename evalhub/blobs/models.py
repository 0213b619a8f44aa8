from django.db import models

from evalhub.blobs.names import display_token, video_token


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
    display_token = models.CharField(
        max_length=64, unique=True, editable=False,
        help_text="Keyed hash of sha256 (blobs/names.py): the derivative's internal storage "
                  "name, shared by every project, never sent to a browser (clients see a "
                  "per-project name).",
    )
    display = models.FileField(
        upload_to="display/", max_length=255, blank=True,
        help_text="The derivative annotators receive: the pixels as lossless WebP, encoded "
                  "the same way for every image, no metadata (blobs/display.py), made by a "
                  "worker. Its name holds the rule it was written by.",
    )
    tiles_built_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the Deep Zoom pyramid (blobs/tiles.py) was complete; null: none yet. "
                  "Only images above the tiling threshold get one, built by a worker.",
    )
    # ``db_default``: processes of the release before it insert rows without it (deploys).
    tiles_format = models.CharField(
        max_length=8, blank=True, default="", db_default="",
        help_text="The pyramid's tile format, chosen by its build from the pixels: jpeg (all "
                  "opaque) or webp (some transparent); blank while it has none (a pyramid "
                  "recorded without it is built again, blobs/tiles.py).",
    )
    tiles_claimed_until = models.DateTimeField(
        null=True, blank=True,
        help_text="A worker is building the pyramid until then (one build at a time, across "
                  "hosts); a crashed build's claim simply runs out.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height} {self.format}"

    def save(self, *args, **kwargs) -> None:
        # Every row gets its internal token at creation: the derivative's storage name, fixed
        # even if SECRET_KEY changes later (the per-project names are computed, names.py).
        if not self.display_token:
            self.display_token = display_token(self.sha256)
        super().save(*args, **kwargs)


class VideoBlob(models.Model):
    """One stored video file, addressed by the sha256 of its bytes, with what validation
    measured (blobs/video_validation.py) and the derivatives a worker writes from it
    (blobs/video_display.py): the web rendition annotators receive and a thumbnail strip.

    Its still, the ``poster`` (the middle frame, an ordinary ``ImageBlob``), is what a run's
    ``Image`` row points at, so lists, pairs and image metrics see a video as its poster.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to="videos/", max_length=255)
    container = models.CharField(max_length=16, help_text="mp4, mov, webm or mkv")
    codec = models.CharField(max_length=16, help_text="FFmpeg codec name: h264, vp9 ...")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.FloatField(help_text="Frames per second (the stream's average rate).")
    frame_count = models.PositiveIntegerField()
    duration_s = models.FloatField(help_text="frame_count / fps, in seconds.")
    size_bytes = models.BigIntegerField()
    poster = models.ForeignKey(
        ImageBlob, on_delete=models.PROTECT, related_name="poster_of",
        help_text="The middle frame as an image (PNG).",
    )
    rendition_token = models.CharField(
        max_length=64, unique=True, editable=False,
        help_text="Keyed hash of sha256 (blobs/names.py): the rendition's internal storage "
                  "name, never sent to a browser (clients see a per-project name).",
    )
    rendition = models.FileField(
        upload_to="video/", max_length=255, blank=True,
        help_text="VP9 WebM annotators receive: pictures only, no audio, no metadata; "
                  "made by a worker.",
    )
    thumbnails = models.FileField(
        upload_to="video/", max_length=255, blank=True,
        help_text="A strip of evenly spaced frames (WebP), made by a worker.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return (f"{self.sha256[:12]} {self.width}x{self.height} {self.codec} "
                f"{self.frame_count}f@{self.fps:g}")

    def save(self, *args, **kwargs) -> None:
        if not self.rendition_token:
            self.rendition_token = video_token(self.sha256)
        super().save(*args, **kwargs)
