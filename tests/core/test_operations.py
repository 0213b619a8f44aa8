"""Operations: /healthz, /readyz, /metrics and request ids in JSON log lines.

Against the suite's real services: PostgreSQL (DATABASE_URL) and Redis (EVALHUB_TEST_REDIS_URL)
as the Celery broker. A live worker making the queue checks pass is in
tests/integration/test_readiness.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.urls import resolve
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from evalhub import celery_app
from evalhub.campaigns.models import Lease
from evalhub.core.health import forget_readiness
from evalhub.core.logging import ContextFilter, JsonFormatter, request_id_var
from tests.builders import build_campaign
from tests.conftest import REPO_ROOT
from tests.integration.fixtures import REDIS_URL
from tests.ports import free_port


@pytest.fixture(autouse=True)
def _fresh_readiness(settings):
    """Every request runs the checks (no result reused from another test)."""
    settings.EVALHUB_READYZ_CACHE_SECONDS = 0
    settings.EVALHUB_READYZ_TIMEOUT_MS = 500
    forget_readiness()
    yield
    forget_readiness()


def checks_of(response) -> dict[str, dict]:
    return {check["name"]: check for check in response.json()["checks"]}


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """``/metrics`` parsed: sample name -> {sorted label items: value}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


# /healthz


def test_healthz_answers_200_without_touching_the_database(client):
    # No db fixture: pytest-django would raise on any database access.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_probes_answer_by_address_over_http_where_pages_need_the_public_name_and_https(
        client, settings):
    # A deployment names its public host and redirects to HTTPS; the container's healthcheck
    # asks http://127.0.0.1:8000/healthz all the same, and Prometheus scrapes by address.
    settings.ALLOWED_HOSTS = ["evalhub.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.EVALHUB_METRICS_TOKEN = ""
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").json()["status"] == "ok"
    assert client.get("/metrics", HTTP_HOST="10.0.3.7:8000").status_code == 200
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400  # pages: the name
    assert client.get("/", HTTP_HOST="evalhub.example.org").status_code == 301  # and https
    assert client.post("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_carry_the_headers_every_answer_carries(client, settings, broker, path):
    # They answer before the security middleware; a probe's body is data, never a page.
    settings.EVALHUB_READYZ_QUEUES = []
    settings.EVALHUB_METRICS_TOKEN = ""
    response = client.get(path, HTTP_HOST="127.0.0.1:8000")
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "no-store"


# /readyz


@pytest.mark.django_db
def test_readyz_is_ready_with_postgresql_redis_and_free_disk(client, settings, broker):
    settings.EVALHUB_READYZ_QUEUES = []  # no worker asked for here (see the integration test)
    settings.EVALHUB_READYZ_MIN_FREE_MB = 1
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert response["Cache-Control"] == "no-store"
    checks = checks_of(response)
    assert set(checks) == {"database", "broker", "cache", "media_disk"}
    # Each process's own memory cache (no CACHE_URL here) cannot be down.
    assert (checks["cache"]["status"], checks["cache"]["required"]) == ("not_checkable", False)
    assert checks["database"] | {"duration_ms": 0} == {
        "name": "database", "status": "ok", "required": True, "duration_ms": 0,
        "detail": "postgresql"}
    assert (checks["broker"]["status"], checks["broker"]["detail"]) == ("ok", "redis")
    assert checks["media_disk"]["status"] == "ok"
    assert all(check["duration_ms"] >= 0 for check in checks.values())


@pytest.mark.django_db
def test_readyz_answers_503_when_the_broker_port_is_closed_and_reveals_no_url(
        client, settings, broker):
    settings.EVALHUB_READYZ_QUEUES = ["default", "gpu"]
    port = free_port()
    broker(f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    checks = checks_of(response)
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "failed"
    assert checks["broker"]["required"] is True
    assert checks["workers:default"] == {"name": "workers:default", "status": "failed",
                                         "required": True, "duration_ms": 0.0,
                                         "detail": "broker unreachable"}
    assert checks["workers:gpu"]["detail"] == "broker unreachable"
    for secret in ("hunter2-secret", str(port), "127.0.0.1"):
        assert secret not in response.content.decode()


@pytest.mark.django_db
def test_readyz_answers_503_when_the_shared_cache_is_down_and_reveals_no_url(
        client, settings, broker):
    """Sessions and the rating throttle live in CACHE_URL: with it down, sign-in and rating
    answered 500 while /readyz said ready."""
    settings.EVALHUB_READYZ_QUEUES = []
    settings.EVALHUB_READYZ_MIN_FREE_MB = 1
    port = free_port()
    settings.CACHES = {"default": {"BACKEND": "evalhub.core.cache.RedisCache",
                                   "LOCATION": f"redis://:hunter2-secret@127.0.0.1:{port}/9"}}
    response = client.get("/readyz")
    assert response.status_code == 503
    cache = checks_of(response)["cache"]
    assert (cache["status"], cache["required"], cache["detail"]) == (
        "failed", True, "ConnectionError")
    for secret in ("hunter2-secret", str(port)):
        assert secret not in response.content.decode()

    settings.CACHES = {"default": {"BACKEND": "evalhub.core.cache.RedisCache",
                                   "LOCATION": REDIS_URL}}
    forget_readiness()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert checks_of(response)["cache"] | {"duration_ms": 0} == {
        "name": "cache", "status": "ok", "required": True, "duration_ms": 0,
        "detail": "RedisCache"}


@pytest.mark.django_db
def test_readyz_answers_503_when_no_worker_consumes_the_queues(client, settings, broker):
    # Nothing consumes this database's queues during unit tests.
    settings.EVALHUB_READYZ_QUEUES = None  # the default: every queue Celery routes to
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = checks_of(response)
    assert checks["broker"]["status"] == "ok"
    assert [name for name in checks if name.startswith("workers:")] == [
        "workers:default", "workers:gpu"]
    assert checks["workers:gpu"]["status"] == "failed"
    assert checks["workers:gpu"]["detail"] == "no worker consuming 'gpu' answered within 0.5 s"


@pytest.mark.django_db
def test_readyz_answers_503_when_media_free_space_is_below_the_floor(client, settings, broker):
    settings.EVALHUB_READYZ_QUEUES = []
    settings.EVALHUB_READYZ_MIN_FREE_MB = 1024**3  # one pebibyte
    response = client.get("/readyz")
    assert response.status_code == 503
    disk = checks_of(response)["media_disk"]
    assert disk["status"] == "failed"
    assert disk["detail"].endswith("floor 1073741824 MiB")


@pytest.mark.django_db
def test_readyz_on_the_filesystem_broker_is_ready_and_says_workers_are_not_checkable(
        client, settings, broker, tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    broker("filesystem://", data_folder_in=str(folders["queue"]),
           data_folder_out=str(folders["queue"]), processed_folder=str(folders["processed"]),
           control_folder=str(folders["control"]))
    settings.EVALHUB_READYZ_QUEUES = None
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    checks = checks_of(response)
    assert checks["broker"]["status"] == "ok"
    for queue in ("default", "gpu"):
        assert checks[f"workers:{queue}"]["status"] == "not_checkable"
        assert checks[f"workers:{queue}"]["required"] is False
    assert list(folders["queue"].iterdir()) == []  # no ping left behind


@pytest.mark.django_db
def test_readyz_reuses_one_result_for_the_cache_period(client, settings, broker):
    settings.EVALHUB_READYZ_QUEUES = []
    settings.EVALHUB_READYZ_CACHE_SECONDS = 3600
    first = client.get("/readyz")
    broker(f"redis://127.0.0.1:{free_port()}/0")
    again = client.get("/readyz")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    forget_readiness()
    assert client.get("/readyz").status_code == 503


# /metrics


def _view_name(path: str) -> str:
    return resolve(path).view_name


@pytest.mark.django_db
def test_metrics_count_a_vote_its_request_and_show_queues_and_leases(client, api, broker):
    world = build_campaign(prompts=3)
    rate = f"/api/v1/rate/{world.campaign.pk}/"
    before = scrape(client)
    votes_before = before["evalhub_votes_recorded_total"][()]
    vote_view = _view_name(f"{rate}votes/")
    vote_key = (("status", "2xx"), ("view", vote_view))
    requests_before = before.get("evalhub_http_request_duration_seconds_count", {}).get(
        vote_key, 0)

    api.force_login(world.annotators[0])
    task = api.post(f"{rate}next/", {}, format="json").json()
    vote = api.post(f"{rate}votes/", {"client_id": str(uuid.uuid4()), "lease": task["lease"],
                                       "answers": {"overall": "left"}}, format="json")
    assert vote.status_code == 201
    api.post(f"{rate}next/", {}, format="json")  # a lease held now
    api.force_login(world.annotators[1])
    stale = api.post(f"{rate}next/", {}, format="json").json()  # and one left to expire
    Lease.objects.filter(pk=stale["lease"]).update(
        expires_at=timezone.now() - timedelta(minutes=1))

    after = scrape(client)
    assert after["evalhub_votes_recorded_total"][()] == votes_before + 1
    assert after["evalhub_http_request_duration_seconds_count"][vote_key] == requests_before + 1
    # The broker's real queue lengths (other tests may have left messages in the test broker).
    import redis

    queues = redis.Redis.from_url(REDIS_URL)
    assert after["evalhub_celery_queue_length"] == {
        (("queue", name),): float(queues.llen(name)) for name in ("default", "gpu")}
    assert after["evalhub_leases_open"] == {(("state", "held"),): 1.0,
                                            (("state", "expired"),): 1.0}
    assert after["evalhub_metrics_source_up"] == {(("source", "broker"),): 1.0,
                                                  (("source", "database"),): 1.0}


# Committed for real: the count is sent once the transaction that expired the lease commits.
@pytest.mark.django_db(transaction=True)
def test_a_lease_left_to_expire_is_counted_once_its_pair_is_served_again(client, api, broker):
    world = build_campaign(runs=2, prompts=1, judgments_per_pair=2)  # one pair
    rate = f"/api/v1/rate/{world.campaign.pk}/"
    expired_before = scrape(client)["evalhub_leases_expired_total"][()]
    api.force_login(world.annotators[0])
    left = api.post(f"{rate}next/", {}, format="json").json()  # the annotator walks away
    Lease.objects.filter(pk=left["lease"]).update(
        expires_at=timezone.now() - timedelta(minutes=1))
    assert scrape(client)["evalhub_leases_expired_total"][()] == expired_before  # not yet

    api.force_login(world.annotators[1])
    served = api.post(f"{rate}next/", {}, format="json").json()
    # The only pair, free again: its lease past expiry is closed as it is served.
    assert Lease.objects.get(pk=served["lease"]).task_id == Lease.objects.get(
        pk=left["lease"]).task_id
    assert Lease.objects.get(pk=left["lease"]).status == "expired"
    assert scrape(client)["evalhub_leases_expired_total"][()] == expired_before + 1


@pytest.mark.django_db
def test_queue_length_counts_messages_waiting_in_redis(client, broker):
    import redis

    redis.Redis.from_url(REDIS_URL).delete("gpu")
    for _ in range(3):
        celery_app.send_task("tests.operations.waiting", queue="gpu")
    try:
        assert scrape(client)["evalhub_celery_queue_length"][(("queue", "gpu"),)] == 3.0
    finally:
        redis.Redis.from_url(REDIS_URL).delete("gpu")


@pytest.mark.django_db
def test_metrics_report_an_unreachable_broker_as_a_source_down(client, broker):
    broker(f"redis://127.0.0.1:{free_port()}/0")
    samples = scrape(client)
    assert samples["evalhub_metrics_source_up"][(("source", "broker"),)] == 0.0
    assert "evalhub_celery_queue_length" not in samples


def test_metrics_ask_for_the_bearer_token_when_one_is_set(client, settings):
    settings.EVALHUB_METRICS_TOKEN = "s3cret-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token",
                      REMOTE_ADDR="10.1.2.3").status_code == 200


def test_metrics_without_a_token_answer_only_direct_local_connections(client, settings):
    settings.EVALHUB_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1",
                      HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


# Request ids and JSON log lines


@pytest.fixture
def json_log_lines():
    """JSON lines written through the settings' handler set-up (formatter + context filter)
    while the test runs, on Django's request logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_the_client_request_id_is_echoed_and_written_in_the_json_log_line(client,
                                                                         json_log_lines):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "lb-7f3a.42"
    (line,) = json_log_lines()
    assert line["request_id"] == "lb-7f3a.42"
    assert (line["level"], line["logger"]) == ("WARNING", "django.request")
    assert "/no-such-page/" in line["message"]
    assert line["ts"].endswith("Z")


def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(client, json_log_lines):
    plain = client.get("/no-such-page/")
    unsafe = client.get("/no-such-page/", HTTP_X_REQUEST_ID='x"\n{"level": "forged"}')
    ids = [plain["X-Request-ID"], unsafe["X-Request-ID"]]
    for request_id in ids:
        assert len(request_id) == 32
        int(request_id, 16)
    assert ids[0] != ids[1]
    assert [line["request_id"] for line in json_log_lines()] == ids
    assert request_id_var.get() is None  # cleared when the response was closed


def test_json_lines_carry_the_exception_and_extra_fields():
    record = logging.LogRecord("evalhub.test", logging.ERROR, __file__, 1, "failed %s", ("x",),
                               None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.campaign = 7
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x"
    assert line["campaign"] == 7
    assert line["exc"].startswith("Traceback") and line["exc"].endswith("ValueError: boom")
    assert "request_id" not in line and "task_id" not in line


def test_evalhub_log_json_switches_the_settings_to_json_lines():
    code = ("import logging; from django.conf import settings; "
            "logging.getLogger('evalhub.check').warning('hello %s', 'ops')")
    env = {**os.environ, "EVALHUB_LOG_JSON": "1"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"logger": "evalhub.check", "message": "hello ops", "level": "WARNING"}.items() \
        <= lines[-1].items()
    plain = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT,
                           env={**env, "EVALHUB_LOG_JSON": "0"}, capture_output=True,
                           text=True, timeout=120, check=True)
    assert plain.stderr.rstrip().endswith("WARNING evalhub.check: hello ops")
