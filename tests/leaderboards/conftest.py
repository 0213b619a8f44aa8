import pytest


@pytest.fixture(autouse=True)
def _fast_bootstrap(settings):
    """Fewer bootstrap rounds keep the suite fast; one test checks the 1000-round default."""
    settings.EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS = 200
