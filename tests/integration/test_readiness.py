"""Operations with real worker processes: /readyz sees them, they log JSON lines with task ids
and their task metrics reach Prometheus through the multiprocess folder."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from evalhub import celery_app
from evalhub.core.health import forget_readiness
from evalhub.core.logging import request_id_var
from tests.integration.workers import wait_until
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_readiness(settings):
    settings.EVALHUB_READYZ_CACHE_SECONDS = 0
    # Generous: a worker on a loaded test machine answers within milliseconds to seconds.
    settings.EVALHUB_READYZ_TIMEOUT_MS = 2000
    settings.EVALHUB_READYZ_QUEUES = ["default", "gpu"]
    forget_readiness()
    yield
    forget_readiness()


def _workers(response) -> dict[str, tuple[str, str]]:
    return {check["name"]: (check["status"], check["detail"])
            for check in response.json()["checks"] if check["name"].startswith("workers:")}


def test_readyz_is_ready_once_a_live_worker_answers_on_every_queue(client, start_worker):
    start_worker("cpu", queues="default")
    partial = client.get("/readyz")
    assert partial.status_code == 503
    assert _workers(partial) == {
        "workers:default": ("ok", "1 worker(s) answered"),
        "workers:gpu": ("failed", "no worker consuming 'gpu' answered within 2 s"),
    }

    start_worker("gpu", queues="gpu")
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert _workers(ready) == {"workers:default": ("ok", "1 worker(s) answered"),
                               "workers:gpu": ("ok", "1 worker(s) answered")}
    assert {c["name"]: c["status"] for c in ready.json()["checks"]} == {
        "database": "ok", "broker": "ok", "workers:default": "ok", "workers:gpu": "ok",
        "cache": "not_checkable", "media_disk": "ok"}


def _samples(folder) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect() for sample in family.samples}


def test_a_worker_logs_json_lines_with_task_and_request_ids_and_counts_its_tasks(
        start_worker, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    worker = start_worker("json", EVALHUB_LOG_JSON="1", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                          EVALHUB_WORKER_METRICS_ADDR=f"127.0.0.1:{port}")
    # Sent as from inside a request: the request id travels with the messages.
    token = request_id_var.set("req-ops-1")
    try:
        succeeded = celery_app.send_task("evalhub.blobs.make_previews", args=[[]])
        failed = celery_app.send_task("evalhub.blobs.make_previews", args=[["not-an-id"]])
    finally:
        request_id_var.reset(token)

    def lines() -> list[dict]:
        return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]

    def of(task_id: str) -> list[dict]:
        return [line for line in lines() if line.get("task_id") == task_id]

    wait_until(lambda: any(line["level"] == "ERROR" for line in of(failed.id)), timeout=60,
               what="the failing task's error line", on_timeout=worker.log)
    wait_until(lambda: any("succeeded" in line["message"] for line in of(succeeded.id)),
               timeout=60, what="the task's success line", on_timeout=worker.log)
    # Celery's banner (ASCII art and a configuration dump on stdout) is one JSON line instead.
    assert "[config]" not in worker.log() and "[queues]" not in worker.log()
    (started,) = [line for line in lines() if line["logger"] == "evalhub.worker"]
    assert started["queues"] == ["default", "gpu"] and started["hostname"].startswith("json@")
    (error,) = [line for line in of(failed.id) if line["level"] == "ERROR"]
    assert error["task_name"] == "evalhub.blobs.make_previews"
    assert error["request_id"] == "req-ops-1"
    assert "ValueError" in error["exc"]
    assert all(line["request_id"] == "req-ops-1" for line in of(succeeded.id))

    task = ("task", "evalhub.blobs.make_previews")
    wait_until(lambda: _samples(metrics_dir).get(
        ("evalhub_celery_task_duration_seconds_count", (("state", "FAILURE"), task))) == 1,
        timeout=30, what="the failed task's duration", on_timeout=worker.log)
    samples = _samples(metrics_dir)
    assert samples[("evalhub_celery_task_duration_seconds_count",
                    (("state", "SUCCESS"), task))] == 1
    assert samples[("evalhub_celery_task_failures_total",
                    (("exception", "ValueError"), task))] == 1
    # The worker's own /metrics (for workers on other hosts) serves the same folder.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        served = response.read().decode()
    assert ('evalhub_celery_task_failures_total{exception="ValueError",'
            'task="evalhub.blobs.make_previews"} 1.0') in served

    # Celery's shutdown notice, printed from its signal handler, is JSON too.
    worker.stop()
    (shutdown,) = [line for line in lines() if "Warm shutdown" in line["message"]]
    assert (shutdown["logger"], shutdown["level"]) == ("celery.worker", "WARNING")
    assert [line for line in worker.log().splitlines()
            if line.strip() and not line.startswith("{")] == []
