"""The embedded default (``manage.py run_embedded``) recovers what a stopped or killed worker
left unfinished, and stops its worker warm.

Its filesystem broker deletes a message when a worker fetches it and never hands it out again:
a worker killed in a generation batch or a metric shard (SIGKILL, a crash, a stop that ran
out of time) lost that task for good, and the run or job stayed ``running`` (and could not be
deleted). At the next start, before its one worker runs, the command resumes every such run,
metric job and campaign build through the services the API's launch and resume use; unless
the last stop was warm (nothing lost, the queued messages still in the broker's folder).

The stop: Ctrl-C or SIGTERM lets the worker finish the task in hand (``--stop-timeout``), a
second one stops it now (Celery's cold shutdown, SIGQUIT), a third kills it. Tested with
stand-in children that record the signals they get.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from evalhub.core.management.commands import run_embedded
from evalhub.core.recovery import Resumed, Work
from tests.integration.workers import REPO_ROOT, wait_until
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# --- stopping ------------------------------------------------------------------------------

# A worker stand-in: records each signal; SIGTERM (warm) lets it finish its "task" once the
# test releases it; SIGQUIT (cold) ends it at once, with exit status 3.
_WORKER = r"""
import pathlib, signal, sys, time
log, release = map(pathlib.Path, sys.argv[1:3])
def record(line):
    with log.open("a") as f:
        f.write(line + "\n")
signal.signal(signal.SIGTERM, lambda *_: record("SIGTERM"))
signal.signal(signal.SIGQUIT, lambda *_: (record("SIGQUIT"), sys.exit(3)))
signal.signal(signal.SIGINT, signal.SIG_IGN)
record("ready")
while not (release.exists() and "SIGTERM" in log.read_text()):
    time.sleep(0.02)
record("finished its task")
"""


def _children(tmp_path: Path) -> dict[str, subprocess.Popen]:
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / "worker.log"),
                               str(tmp_path / "release")])
    web = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    return {"worker": worker, "web": web}


def _signals(tmp_path: Path) -> list[str]:
    path = tmp_path / "worker.log"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def _then(*steps: tuple[Callable[[], bool], Callable[[], None]]) -> threading.Thread:
    """In the background: for each (condition, action), wait for the condition, then act."""
    def run() -> None:
        try:
            for condition, action in steps:
                wait_until(condition, timeout=30, what="the stand-in worker")
                action()
        except AssertionError:
            for _ in range(3):  # the supervisor kills the children and returns: the test fails
                os.kill(os.getpid(), signal.SIGINT)
            raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _interrupt(sig: int = signal.SIGINT) -> Callable[[], None]:
    """Send ``sig`` to this process: the supervisor's handler runs in the main thread."""
    return lambda: os.kill(os.getpid(), sig)


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    """The clean-stop mark goes to the test's own folder."""
    settings.VAR_DIR = tmp_path


def _marked(tmp_path: Path) -> bool:
    return (tmp_path / run_embedded.CLEAN_STOP_MARK).exists()


def _supervise(tmp_path: Path, children: dict[str, subprocess.Popen], *,
               stop_timeout: float) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    command = run_embedded.Command(stdout=out, stderr=err)
    command._stop_timeout = stop_timeout
    try:
        command._supervise(children)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return out.getvalue(), err.getvalue()


def test_a_stop_lets_the_worker_finish_the_task_in_hand(tmp_path):
    children = _children(tmp_path)
    _then((lambda: "ready" in _signals(tmp_path), _interrupt(signal.SIGTERM)),
          (lambda: "SIGTERM" in _signals(tmp_path), (tmp_path / "release").touch))
    out, err = _supervise(tmp_path, children, stop_timeout=120)

    assert _signals(tmp_path) == ["ready", "SIGTERM", "finished its task"]
    assert children["worker"].returncode == 0
    assert "the workers finish the tasks in hand first (up to 120 s)" in out
    assert "Press Ctrl-C again to stop them now" in out
    assert not err
    assert _marked(tmp_path)  # nothing lost: the next start resumes nothing


def test_a_second_ctrl_c_stops_the_worker_now_as_celery_s_cold_shutdown(tmp_path):
    children = _children(tmp_path)
    _then((lambda: "ready" in _signals(tmp_path), _interrupt()),
          (lambda: "SIGTERM" in _signals(tmp_path), _interrupt()))
    out, err = _supervise(tmp_path, children, stop_timeout=120)

    assert _signals(tmp_path) == ["ready", "SIGTERM", "SIGQUIT"]
    assert children["worker"].returncode == 3
    assert "Stopping now" in out
    assert not err
    assert not _marked(tmp_path)  # its task cancelled: resumed at the next start


def test_a_worker_still_busy_after_the_stop_timeout_is_killed(tmp_path):
    children = _children(tmp_path)
    _then((lambda: "ready" in _signals(tmp_path), _interrupt()))
    out, err = _supervise(tmp_path, children, stop_timeout=1)

    assert "(up to 1 s)" in out
    assert _signals(tmp_path) == ["ready", "SIGTERM"]
    assert children["worker"].returncode == -signal.SIGKILL
    assert "worker killed; its unfinished work is resumed at the next start." in err
    assert not _marked(tmp_path)


def test_the_supervisor_gives_back_the_signal_handlers_it_replaced(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    children = _children(tmp_path)
    _then((lambda: "ready" in _signals(tmp_path), _interrupt()),
          (lambda: "SIGTERM" in _signals(tmp_path), (tmp_path / "release").touch))
    _supervise(tmp_path, children, stop_timeout=120)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# --- resuming at start ------------------------------------------------------------------------


def test_a_start_after_a_warm_stop_resumes_nothing_and_the_next_one_does(settings, tmp_path,
                                                                        monkeypatch):
    """After a warm stop every unfinished run's messages wait in the broker's folder: a
    launch would queue each batch twice. The mark is for one start only."""
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    monkeypatch.setattr(run_embedded, "unfinished_work", Work)
    monkeypatch.setattr(run_embedded, "resume_work",
                        lambda work: [Resumed("run", True, "Resumed something.")])
    (tmp_path / run_embedded.CLEAN_STOP_MARK).touch()

    def start() -> str:
        out = io.StringIO()
        run_embedded.Command(stdout=out)._resume()
        return out.getvalue()

    assert start() == ""
    assert not _marked(tmp_path)
    assert start() == "Resumed something.\n"


def test_with_another_broker_nothing_is_resumed_at_start(settings, monkeypatch):
    """Other workers may hold those tasks, and Redis hands a dead worker's out again."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    monkeypatch.setattr(run_embedded, "unfinished_work",
                        lambda: pytest.fail("looked for work to resume with Redis"))
    run_embedded.Command(stdout=io.StringIO())._resume()

# Run in the embedded default's own database (SQLite under the test's var folder) before the
# command starts: what a worker killed mid-task leaves, with no message left in the broker
# (nothing here is queued).
_LEFT_UNFINISHED = r"""
import json

import django

django.setup()
from django.utils import timezone
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import CampaignStatus
from evalhub.evaluation.services import metric_job_create, metric_shard_run
from evalhub.generation.services import generation_run_batch
from evalhub.projects.models import Role
from evalhub.runs.models import GenerationRun, RunSource, RunStatus
from tests.factories import (
    CampaignFactory, CheckpointFactory, GenerationRunFactory, GenModelFactory,
    MembershipFactory, PromptFactory, PromptSetFactory,
)

member = MembershipFactory(role=Role.OWNER)
project = member.project
prompts = PromptSetFactory(project=project)
for text in ("a red circle", "a blue square"):
    PromptFactory(prompt_set=prompts, text=text)


def running(name, quality):
    # 2 prompts x 2 seeds, 2 items per batch (EVALHUB_GENERATION_BATCH_ITEMS): two batches.
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project), generator="shapes",
                                   parameters={"quality": quality})
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompts, name=name,
                               source=RunSource.GENERATED, seeds=[0, 1])
    GenerationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, items_total=4, started_at=timezone.now())
    run.refresh_from_db()
    return run


# A run whose worker died after its first batch: 2 of 4 items stored, "running".
cut = running("cut-short", 0.9)
generation_run_batch(run=cut, start=0, stop=2)
# Two finished runs; a metric job whose worker died after the first of its two shards.
measured = running("measured", 0.8)
generation_run_batch(run=measured, start=0, stop=4)
other = running("other", 0.3)
generation_run_batch(run=other, start=0, stop=4)
job = metric_job_create(run=measured, metrics=["lpips_diversity"], options={"shard_size": 2},
                        enqueue=False)
metric_shard_run(shard_id=job.shards.order_by("index").first().pk)
# A campaign over the finished runs whose build the dead worker had taken.
campaign = CampaignFactory(project=project, status=CampaignStatus.BUILDING)
campaign.runs.set([measured, other])
print(json.dumps({"run": cut.pk, "job": job.pk, "campaign": campaign.pk,
                  "token": Token.objects.create(user=member.user).key}))
"""

_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as test_embedded_default


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with _LOCAL.open(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_start_resumes_the_run_metric_job_and_build_a_dead_worker_left(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT")}
    env |= {"DEBUG": "1", "EVALHUB_VAR_DIR": str(tmp_path / "var"),
            "EVALHUB_RANDOM_WEIGHTS": "1", "EVALHUB_GENERATION_BATCH_ITEMS": "2",
            "DJANGO_SETTINGS_MODULE": "evalhub.config.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"],
                   cwd=REPO_ROOT, env=env, check=True, timeout=240)
    made = subprocess.run([sys.executable, "-c", _LEFT_UNFINISHED], cwd=REPO_ROOT, env=env,
                          check=True, timeout=240, capture_output=True, text=True)
    ids = json.loads(made.stdout.strip().splitlines()[-1])

    port = free_port()
    log_path = tmp_path / "embedded.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_embedded", "--no-demo", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    read_log = lambda: log_path.read_text(errors="replace")  # noqa: E731
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_until(lambda: "EvalHub is running" in read_log(), timeout=240,
                   what="the embedded default's start", on_timeout=read_log)
        started = read_log()
        assert (f"Resumed generation run {ids['run']} 'cut-short' (running): 2 of 4 items "
                "stored, 1 batch(es) queued.") in started
        assert (f"Resumed metric job {ids['job']} of run 'measured' (running): 1 of 2 shards "
                "done, 1 queued.") in started
        assert f"Resumed campaign {ids['campaign']} " in started

        def finished() -> bool:
            try:
                run = _get(f"{base}/runs/{ids['run']}/", ids["token"])
                job = _get(f"{base}/metric-jobs/{ids['job']}/", ids["token"])
                campaign = _get(f"{base}/campaigns/{ids['campaign']}/", ids["token"])
            except OSError:  # the web server not answering yet
                return False
            return (run["status"] == "completed" and job["status"] == "completed"
                    and campaign["status"] != "building")

        wait_until(finished, timeout=240, what="the resumed work done by the worker",
                   on_timeout=read_log)
        run = _get(f"{base}/runs/{ids['run']}/", ids["token"])
        assert run["items_done"] == 4 and run["items_failed"] == 0
        job = _get(f"{base}/metric-jobs/{ids['job']}/", ids["token"])
        assert job["shards_done"] == job["shards_total"] == 2
        assert _get(f"{base}/campaigns/{ids['campaign']}/", ids["token"])["status"] in (
            "active", "draft")

        # A stop with nothing in hand: the worker's warm shutdown, a clean exit, and a mark
        # that tells the next start there is nothing to resume.
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "Stopping: the workers finish the tasks in hand first" in read_log()
        assert (tmp_path / "var" / run_embedded.CLEAN_STOP_MARK).exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()
