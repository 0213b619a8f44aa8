import pytest

from evalhub.config.celery import app


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent by name (core.queueing.enqueue_on_commit) as (name, args), recorded instead
    of reaching the broker."""
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **options:
                        sent.append((name, list(args or []))))
    return sent
