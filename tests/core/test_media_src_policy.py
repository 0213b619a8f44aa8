"""Videos load under the Content-Security-Policy wherever images may: the rating page's
<video> renditions come from EvalHub's origin, or from the bucket a signed delivery redirects
to (EVALHUB_MEDIA_ORIGINS), and from nowhere else."""

from __future__ import annotations

from django.conf import settings


def test_media_src_admits_this_origin_and_the_media_origins_images_come_from():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    media = directives["media-src"]
    assert media[0] == "'self'"
    image_origins = [source for source in directives["img-src"]
                     if source not in ("'self'", "data:", "blob:")]
    assert media[1:] == image_origins
    assert "*" not in media and "'unsafe-inline'" not in media
