"""EvalHub: evaluate generative image models with humans in the loop."""

from evalhub.config.celery import app as celery_app

__all__ = ["celery_app"]
