import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
application = get_wsgi_application()

# Import every view now rather than on the first request, so that with `gunicorn --preload`
# workers fork warm and the first annotator does not wait for the imports.
from django.urls import get_resolver  # noqa: E402

_warm = get_resolver().url_patterns
