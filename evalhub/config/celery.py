"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery

from evalhub.config.env import ImproperlyConfiguredEnv, env_bool, exit_for_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
# Celery's Django fix-up runs Django's system checks when a worker starts; they import every
# URLconf, view and API module (pandas, pyarrow and plotly through the exports and charts), which
# a worker never uses: 0.65 s of a 1.9 s start (bench/worker_start.py). gunicorn runs no checks
# either; `manage.py check` and `migrate` do. CELERY_SKIP_CHECKS= (empty) runs them again.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

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
