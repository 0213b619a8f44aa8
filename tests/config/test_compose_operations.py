"""docker-compose.yml sets what docs/operations.md asks of a deployment with several processes.

- ``CACHE_URL``: one Redis cache for every web process (the rating throttle's counts), on its
  own Redis database, not the broker's;
- ``EVALHUB_METRICS_TOKEN``: required (compose refuses to start without it), since behind
  nginx no scrape comes from the loopback address;
- ``PROMETHEUS_MULTIPROC_DIR``: a tmpfs in each app container, so it is empty at every start;
  workers serve their own ``/metrics`` on the compose network, not published.
"""

import pytest
import yaml

from tests.integration.workers import REPO_ROOT

APP_SERVICES = ("web", "worker", "gpu-worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_every_app_process_shares_one_redis_cache_apart_from_the_broker(compose):
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["CACHE_URL"].startswith("redis://redis:6379/")
        assert env["CACHE_URL"] != env["CELERY_BROKER_URL"]


def test_the_metrics_token_must_be_set(compose):
    for name in APP_SERVICES:
        token = compose["services"][name]["environment"]["EVALHUB_METRICS_TOKEN"]
        assert token.startswith("${EVALHUB_METRICS_TOKEN:?")  # compose: error when unset


def test_the_multiprocess_folder_is_a_fresh_tmpfs_in_each_app_container(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] in service["tmpfs"]


def test_workers_serve_their_metrics_inside_the_compose_network_only(compose):
    for name in ("worker", "gpu-worker"):
        service = compose["services"][name]
        port = service["environment"]["EVALHUB_WORKER_METRICS_ADDR"].rsplit(":", 1)[1]
        assert port in service["expose"] and "ports" not in service
