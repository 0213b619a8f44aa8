from celery import shared_task

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview


@shared_task(
    name="evalhub.blobs.make_previews",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def blobs_make_previews(blob_ids: list[int]) -> int:
    """Make missing previews for the given blobs; returns how many were made."""
    made = 0
    for blob in ImageBlob.objects.filter(id__in=blob_ids, preview=""):
        made += blob_make_preview(blob)
    return made
