import pytest

from evalhub.config.celery import app


@pytest.fixture(autouse=True)
def _fast_bootstrap(settings):
    """Fewer bootstrap rounds keep the suite fast; one test checks the 1000-round default."""
    settings.EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS = 200


@pytest.fixture
def sent_with_countdown(monkeypatch):
    """Tasks sent by name (core.queueing.enqueue_on_commit) as (name, args, countdown),
    recorded instead of reaching the broker."""
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, countdown=None, **kw:
                        sent.append((name, list(args or []), countdown)))
    return sent


@pytest.fixture
def tasks_run_inline(monkeypatch):
    """Tasks sent by name run at once in this process, as a worker would run them."""
    monkeypatch.setattr(app, "send_task", lambda name, args=None, countdown=None, **kw:
                        app.tasks[name](*(args or [])))
