"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery

from evalhub.config.env import env_bool
from evalhub.core.receivers import connect_task_receivers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")

app = Celery("evalhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Operations (docs/operations.md): task durations and failures, task ids in worker log lines,
# the sending request's id carried to its tasks; with EVALHUB_LOG_JSON=1 the worker logs JSON
# lines through the settings' LOGGING instead of Celery's own set-up.
connect_task_receivers(json_logs=env_bool("EVALHUB_LOG_JSON", default=False))
