import os

from django.core.wsgi import get_wsgi_application

from evalhub.config.env import ImproperlyConfiguredEnv, exit_for_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
# The settings are read here. gunicorn prints a traceback for an error while it loads the app
# (--check-config) or "Error: ..." (a start): the settings' one line and exit 1 instead, as
# manage.py and the worker print (gunicorn lets SystemExit through).
try:
    application = get_wsgi_application()

    # Import every view now rather than on the first request, so that with `gunicorn --preload`
    # workers fork warm and the first annotator does not wait for the imports.
    from django.urls import get_resolver

    _warm = get_resolver().url_patterns
except ImproperlyConfiguredEnv as exc:
    exit_for_configuration_error(exc)
