import re

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView

from evalhub.blobs.views import media_file
from evalhub.core.converters import IdConverter
from evalhub.core.forms import AdminLoginForm, LoginForm

# Registered before any URLconf that uses it is imported (by include() below).
register_converter(IdConverter, "id")

handler404 = "evalhub.core.api_errors.page_not_found"
admin.site.login_form = AdminLoginForm  # the lengths checked before authenticate (core.forms)

urlpatterns = [
    path("admin/", admin.site.urls),
    # Django's login view with our form (lengths checked first: core.forms.LengthsChecked).
    path("accounts/login/", LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("evalhub.config.api_urls")),
    path("", include("evalhub.campaigns.page.urls")),
    path("", include("evalhub.evaluation.urls")),
    path("", include("evalhub.leaderboards.urls")),
    path("", include("evalhub.runs.gallery.urls")),
    path("", include("evalhub.campaigns.manage.urls")),
    path("", include("evalhub.projects.pages")),
    path("", include("evalhub.workspace.urls")),
    path("", include("evalhub.exports.urls")),
    path("", include("evalhub.core.urls")),
]

# Media: always through the access-checked view (evalhub/blobs/views.py), which streams the file,
# hands it to nginx (X-Accel-Redirect) or redirects to a signed S3 URL (docs/deployment.md).
# When MEDIA_URL is a full URL (a bucket's domain), the view still lives under /media/.
_MEDIA_PREFIX = settings.MEDIA_URL.strip("/") if settings.MEDIA_URL.startswith("/") else "media"
urlpatterns += [
    re_path(rf"^{re.escape(_MEDIA_PREFIX)}/(?P<path>.+)$", media_file, name="media"),
]
