"""What an operator meets at start: one line for every setting EvalHub cannot use, from every
entry point (manage.py, the Celery worker, gunicorn started or checked), and documented
commands that work as written."""

import io
import os
import re
import subprocess
import sys

import pytest

from tests.integration.workers import REPO_ROOT

ONE_LINE = "EvalHub configuration error: "


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", *env)}
    return subprocess.run([sys.executable, *command], cwd=REPO_ROOT,
                          env={**base, "DEBUG": "1", **env}, capture_output=True, text=True,
                          timeout=60)


def _assert_one_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.startswith(ONE_LINE), result.stderr
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


WORKER = ["-m", "celery", "-A", "evalhub", "worker", "-Q", "default", "--pool", "solo"]
GUNICORN = ["-m", "gunicorn", "-c", "evalhub/config/gunicorn.conf.py"]


@pytest.mark.parametrize(("name", "value", "message"), [
    # Read while `celery -A evalhub` imports the app, where Celery caught them: "Unable to
    # load celery application", a traceback, exit 2.
    ("EVALHUB_LOG_JSON", "yesplease", "EVALHUB_LOG_JSON='yesplease' is not a boolean"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/prometheus", "is not a writable folder"),
    # Read from the settings when the worker starts.
    ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' is not a log level"),
    ("CELERY_BROKER_URL", "rabbit://h", "CELERY_BROKER_URL is not a broker URL (scheme 'rabbit')"),
])
def test_the_worker_refuses_every_setting_in_one_line_and_exit_status_1(name, value, message):
    _assert_one_line(_run(WORKER, **{name: value}), message)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' is not a log level"),
    ("EVALHUB_HTTPS", "maybe", "EVALHUB_HTTPS='maybe' is not a boolean"),
    ("DATABASE_URL", "mysqlx://evalhub:s3cret@db/evalhub", "(scheme 'mysqlx')"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/prometheus", "is not a writable folder"),
])
def test_gunicorn_check_config_refuses_the_settings_in_one_line(name, value, message):
    """The settings are read while gunicorn loads the app, where it printed a traceback."""
    result = _run([*GUNICORN, "--check-config"], **{name: value})
    _assert_one_line(result, message)
    assert "s3cret" not in result.stderr


def test_gunicorn_started_for_real_refuses_a_setting_in_the_same_line():
    result = _run([*GUNICORN, "--bind", "127.0.0.1:0"], LOG_LEVEL="verbose")
    _assert_one_line(result, "LOG_LEVEL='verbose' is not a log level")


def test_gunicorn_check_config_passes_with_good_settings():
    assert _run([*GUNICORN, "--check-config"]).returncode == 0


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CACHE_URL", "rediss//cache.example.org", "CACHE_URL is not a Redis URL (scheme '(none)')"),
    ("CACHE_URL", "memcached://cache:11211", "(scheme 'memcached'): write redis://"),
    ("CACHE_URL", "redis://", "CACHE_URL is not a Redis URL (scheme 'redis')"),
    ("CELERY_BROKER_URL", "rabbit://h", "CELERY_BROKER_URL is not a broker URL (scheme 'rabbit')"),
    ("CELERY_BROKER_URL", "redis//broker:6379/0", "(scheme '(none)'): write redis://"),
    ("EVALHUB_PROXY_COUNT", "-1", "EVALHUB_PROXY_COUNT=-1 must be 0 or more"),
    ("EVALHUB_OFFLINE", "maybe", "EVALHUB_OFFLINE='maybe' is not a boolean"),
    ("EVALHUB_PROJECT_CREATORS", "all",
     "EVALHUB_PROJECT_CREATORS='all' is not who may create projects: use 'staff' or 'anyone'"),
])
def test_manage_py_refuses_at_start_what_used_to_fail_later_or_be_misread(name, value, message):
    result = _run(["manage.py", "check"], **{name: value})
    _assert_one_line(result, message)
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(("name", "value"), [
    ("CACHE_URL", "redis://cache:6379/1"),
    ("CACHE_URL", "rediss://:s3cret@cache.example.org:6380/0"),
    ("CACHE_URL", "unix:///run/redis/redis.sock?db=1"),
    ("CACHE_URL", "redis://cache-a:6379/1,redis://cache-b:6379/1"),
    ("CELERY_BROKER_URL", "redis://broker:6379/0"),
    ("CELERY_BROKER_URL", "sentinel://s1:26379;sentinel://s2:26379"),
    ("CELERY_BROKER_URL", "amqp://guest:guest@rabbit:5672//"),
    ("CELERY_BROKER_URL", "sqla+postgresql://u:p@db/broker"),
    ("EVALHUB_PROXY_COUNT", "0"),
    ("EVALHUB_OFFLINE", "true"),
])
def test_the_urls_and_values_operators_write_are_accepted(monkeypatch, name, value):
    from evalhub.config.env import env_bool, env_broker_url, env_cache_url, env_count

    monkeypatch.setenv(name, value)
    read = {"CACHE_URL": lambda: env_cache_url(name),
            "CELERY_BROKER_URL": lambda: env_broker_url(name, "filesystem://localhost/"),
            "EVALHUB_PROXY_COUNT": lambda: env_count(name, 0),
            "EVALHUB_OFFLINE": lambda: env_bool(name, default=False)}[name]()
    assert read in (value, 0, True)


def _worker_commands(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"celery -A evalhub worker", line)]


@pytest.mark.parametrize("path", ["docs/deployment.md", "docs/operations.md", "README.md"])
def test_every_documented_worker_command_names_its_node(path):
    """Two workers started as written on one host were both ``celery@host``: their replies
    overwrote each other and /readyz answered 503 for ever."""
    for line in _worker_commands((REPO_ROOT / path).read_text()):
        assert re.search(r" -n \S+@%h", line), line


def test_the_two_workers_of_one_host_have_different_node_names():
    lines = _worker_commands((REPO_ROOT / "docs/deployment.md").read_text())
    names = {re.search(r" -n (\S+)", line).group(1) for line in lines
             if line.lstrip().startswith("celery")}
    assert {"default@%h", "gpu@%h"} <= names


def test_compose_workers_need_no_node_name_as_each_container_has_its_host_name():
    import yaml

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name in ("worker", "gpu-worker"):
        assert "hostname" not in compose["services"][name], name
        assert "-n" not in compose["services"][name]["command"], name


def test_s3_storage_with_compose_works_as_the_docs_say():
    """The docs said S3 needs only EVALHUB_STORAGE=s3 and the AWS_* variables, but compose's
    media delivery defaults to accel, which refuses S3."""
    text = (REPO_ROOT / "docs/deployment.md").read_text()
    scaling = text.split("## Scaling out", 1)[1]
    mode = re.search(r"EVALHUB_MEDIA_DELIVERY=(\w+)", scaling).group(1)
    result = _run(["-c", "import evalhub.config.settings"], EVALHUB_STORAGE="s3",
                  AWS_STORAGE_BUCKET_NAME="evalhub-media", EVALHUB_MEDIA_DELIVERY=mode,
                  EVALHUB_MEDIA_ACCEL_PREFIX="/_protected_media/")
    assert result.returncode == 0, result.stderr
    refused = _run(["-c", "import evalhub.config.settings"], EVALHUB_STORAGE="s3",
                   AWS_STORAGE_BUCKET_NAME="evalhub-media", EVALHUB_MEDIA_DELIVERY="accel")
    assert "EVALHUB_MEDIA_DELIVERY=accel needs EVALHUB_STORAGE=local" in refused.stderr
    assert "EVALHUB_MEDIA_DELIVERY=accel needs EVALHUB_STORAGE=local" in scaling


def test_the_project_creators_setting_is_documented():
    text = (REPO_ROOT / "docs/deployment.md").read_text()
    assert re.search(r"^\| `EVALHUB_PROJECT_CREATORS` \| `staff` \|.*`anyone`", text, re.M)


def test_run_embedded_shows_its_address_and_logins_before_it_waits(monkeypatch, tmp_path):
    """Written to a file, the banner was block-buffered and appeared only at exit."""
    from evalhub.core.management.commands import run_embedded

    log = tmp_path / "run.log"
    seen = {}
    monkeypatch.setattr(run_embedded, "call_command", lambda *a, **k: None)
    monkeypatch.setattr(run_embedded, "demo_logins", lambda: [])
    monkeypatch.setattr(run_embedded.Command, "_start", lambda self, host, port: {})
    monkeypatch.setattr(run_embedded.Command, "_supervise",
                        lambda self, children: seen.setdefault("log", log.read_text()))
    with open(log, "w") as out:
        assert not isinstance(out, io.StringIO)
        run_embedded.Command(stdout=out).handle(host="127.0.0.1", port=8123, no_demo=True)
    assert "EvalHub is running at http://127.0.0.1:8123/" in seen["log"]
    assert "Press Ctrl-C to stop." in seen["log"]
