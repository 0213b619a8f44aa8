from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from evalhub.core.media import serve_media

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("evalhub.config.api_urls")),
    path("", include("evalhub.campaigns.page.urls")),
    path("", include("evalhub.evaluation.urls")),
    path("", include("evalhub.leaderboards.urls")),
    path("", include("evalhub.exports.urls")),
    path("", include("evalhub.core.urls")),
]

if settings.EVALHUB_SERVE_MEDIA:
    # Embedded default and development: Django serves MEDIA_ROOT itself. A deployment puts a web
    # server or the object store in front (docs/deployment.md).
    urlpatterns += [
        re_path(
            rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$",
            serve_media,
        )
    ]
