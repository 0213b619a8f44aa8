import pytest


@pytest.fixture(autouse=True)
def _random_weights(monkeypatch):
    """Unit tests use deterministic random backbones (no weights files here)."""
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent by name (core.queueing.enqueue_on_commit) as (name, args), recorded instead
    of reaching the broker."""
    from evalhub.config.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **options:
                        sent.append((name, list(args or []))))
    return sent
