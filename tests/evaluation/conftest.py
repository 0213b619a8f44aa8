import pytest


@pytest.fixture(autouse=True)
def _random_weights(monkeypatch):
    """Unit tests use deterministic random backbones (no weights files here)."""
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")
