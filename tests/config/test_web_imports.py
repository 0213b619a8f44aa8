"""Web processes stay light: serving pages and sending tasks never loads torch."""

import os
import subprocess
import sys

from tests.integration.workers import REPO_ROOT

PROBE = """
import sys
import django
django.setup()
import evalhub.config.urls
from evalhub import celery_app
celery_app.loader.import_default_modules()
heavy = sorted(m for m in ("torch", "open_clip", "lpips", "torchmetrics", "diffusers")
               if m in sys.modules)
print("heavy=" + ",".join(heavy))
"""


def test_urls_and_task_modules_import_without_torch():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "evalhub.config.settings"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "heavy=\n" in result.stdout, result.stdout
