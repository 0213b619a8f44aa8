"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery

from evalhub.config.env import ImproperlyConfiguredEnv, env_bool, exit_for_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")

app = Celery("evalhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Operations (docs/operations.md): task durations and failures, task ids in worker log lines,
# the sending request's id carried to its tasks; with EVALHUB_LOG_JSON=1 the worker logs JSON
# lines through the settings' LOGGING instead of Celery's own set-up.
# Both read settings while `celery -A evalhub` imports this module, where Celery would catch
# the refusal and print "Unable to load celery application" and a traceback (exit 2): the
# settings' one line and exit 1 instead, as for every other setting.
try:
    from evalhub.core.receivers import connect_task_receivers  # metrics: PROMETHEUS_MULTIPROC_DIR

    connect_task_receivers(json_logs=env_bool("EVALHUB_LOG_JSON", default=False))
except ImproperlyConfiguredEnv as exc:
    exit_for_configuration_error(exc)
