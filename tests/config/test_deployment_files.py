"""Settings refuse unsafe deployments; docker-compose.yml describes the services we document."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.integration.workers import REPO_ROOT


def _settings_import(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "-c", "import evalhub.config.settings"],
        cwd=REPO_ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60,
    )


def test_without_debug_a_missing_secret_key_refuses_to_start():
    result = _settings_import({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_without_debug_the_development_key_refuses_to_start():
    result = _settings_import(
        {"DEBUG": "0", "SECRET_KEY": "evalhub-insecure-development-key-do-not-deploy"})
    assert result.returncode != 0
    assert "development key" in result.stderr


def test_a_real_secret_key_starts_without_debug():
    assert _settings_import({"DEBUG": "0", "SECRET_KEY": "x" * 50,
                             "ALLOWED_HOSTS": "evalhub.example.org"}).returncode == 0


def test_a_deployment_without_allowed_hosts_refuses_to_start():
    # Django would start, then answer 400 to every page.
    for hosts in (None, "", " , "):
        env = {"DEBUG": "0", "SECRET_KEY": "x" * 50,
               "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/evalhub"}
        if hosts is not None:
            env["ALLOWED_HOSTS"] = hosts
        base = {k: v for k, v in os.environ.items() if k != "ALLOWED_HOSTS"}
        result = subprocess.run([sys.executable, "-c", "import evalhub.config.settings"],
                                cwd=REPO_ROOT, env={**base, **env}, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0, hosts
        assert "ALLOWED_HOSTS is not set and DEBUG is off" in result.stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("EVALHUB_RATING_THROTTLE", "abc", "EVALHUB_RATING_THROTTLE='abc' is not a rate"),
    ("EVALHUB_RATING_THROTTLE", "60/fortnight", "is not a rate: write N/sec"),
    ("EVALHUB_FAST_VOTE_SHARE", "abc", "EVALHUB_FAST_VOTE_SHARE='abc' is not a number"),
    ("DATABASE_URL", "bogus", "DATABASE_URL is not a database URL (scheme '(none)')"),
    ("DATABASE_URL", "postgress://evalhub:s3cret@db/evalhub", "(scheme 'postgress')"),
    ("DATABASE_URL", "postgres://evalhub:s3cret@db:port/evalhub", "write postgres://user"),
    ("DATABASE_URL", "postgres://u:s3cret@h:notaport/db",
     "DATABASE_URL's port 'notaport' is not a number"),
    ("EVALHUB_READYZ_TIMEOUT_MS", "0", "EVALHUB_READYZ_TIMEOUT_MS=0 must be at least 1"),
    ("EVALHUB_READYZ_TIMEOUT_MS", "-5", "EVALHUB_READYZ_TIMEOUT_MS=-5 must be at least 1"),
    ("EVALHUB_STORAGE", "foo", "EVALHUB_STORAGE='foo': expected 'local' or 's3'"),
    ("EVALHUB_STORAGE", "s3", "EVALHUB_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' is not a log level: use one of DEBUG"),
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/prometheus", "is not a writable folder"),
    ("EVALHUB_WORKER_METRICS_ADDR", "nonsense", "is not an address: write host:port"),
])
def test_a_setting_that_would_fail_later_refuses_to_start(name, value, message):
    # A malformed rating throttle used to start fine, then answer every rating request 500;
    # S3 without a bucket failed at the first upload; the others were tracebacks.
    env = {"DEBUG": "1", name: value}
    if name == "EVALHUB_STORAGE" and value == "s3":
        env["EVALHUB_MEDIA_DELIVERY"] = "stream"
    result = _settings_import(env)
    assert result.returncode != 0
    assert result.stderr.startswith("EvalHub configuration error: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def _printed_setting(expression: str, **env: str) -> str:
    """``expression`` over the settings, as a fresh process with ``env`` prints it."""
    result = subprocess.run(
        [sys.executable, "-c", f"from evalhub.config import settings; print({expression})"],
        cwd=REPO_ROOT, env={**os.environ, "DEBUG": "1", **env},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_log_levels_are_read_in_any_case():
    assert _printed_setting("settings.LOGGING['root']['level']", LOG_LEVEL="debug") == "DEBUG"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("WEB_THREADS", "four", "WEB_THREADS='four' is not an integer"),
    ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY=0 must be at least 1"),
    ("EVALHUB_LOG_JSON", "maybe", "EVALHUB_LOG_JSON='maybe' is not a boolean"),
])
def test_gunicorn_refuses_its_own_settings_in_one_line(name, value, message):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "evalhub/config/gunicorn.conf.py",
         "--check-config"], cwd=REPO_ROOT, env={**os.environ, "DEBUG": "1", name: value},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"EvalHub configuration error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(("value", "written"), [
    ("60/min", "60/min"), ("60/minute", "60/minute"), ("5/ Hour", "5/hour"),
    ("100/days", "100/days"),
])
def test_a_rating_throttle_takes_the_words_drf_reads(monkeypatch, value, written):
    from rest_framework.throttling import SimpleRateThrottle

    from evalhub.config.env import env_rate

    monkeypatch.setenv("EVALHUB_RATING_THROTTLE", value)
    rate = env_rate("EVALHUB_RATING_THROTTLE", "60/min")
    assert rate == written
    count = int(value.split("/")[0])
    seconds = {"m": 60, "h": 3600, "d": 86400}[written.split("/")[1][0]]
    assert SimpleRateThrottle.parse_rate(None, rate) == (count, seconds)


def test_a_month_is_not_read_as_a_minute(monkeypatch):
    # DRF reads the period by its first letter: "60/month" would throttle at 60 a minute.
    from evalhub.config.env import ImproperlyConfiguredEnv, env_rate

    monkeypatch.setenv("EVALHUB_RATING_THROTTLE", "60/month")
    with pytest.raises(ImproperlyConfiguredEnv, match="is not a rate"):
        env_rate("EVALHUB_RATING_THROTTLE", "60/min")


@pytest.mark.parametrize("command", [
    ["manage.py", "check"],
    ["-m", "celery", "-A", "evalhub", "worker", "-Q", "default", "--pool", "solo"],
])
def test_a_configuration_error_is_one_line_from_every_entry_point(command):
    base = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    result = subprocess.run(
        [sys.executable, *command], cwd=REPO_ROOT,
        env={**base, "DEBUG": "1", "EVALHUB_RATING_THROTTLE": "60/fortnight"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("EvalHub configuration error: EVALHUB_RATING_THROTTLE=")
    assert "Traceback" not in result.stderr


def test_an_empty_rating_throttle_means_no_limit():
    assert _printed_setting("settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']",
                            EVALHUB_RATING_THROTTLE="") == "{'rating': None}"


def test_a_non_boolean_debug_value_is_refused():
    result = _settings_import({"DEBUG": "maybe"})
    assert "DEBUG='maybe' is not a boolean" in result.stderr


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_documented_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", "nginx", "web", "worker",
                                        "gpu-worker", "beat"}


def test_one_beat_sends_the_stalled_work_sweep_and_reserves_no_gpu(compose):
    beat = compose["services"]["beat"]
    assert beat["command"][:4] == ["celery", "-A", "evalhub", "beat"]
    assert "deploy" not in beat and "replicas" not in beat
    assert beat["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def test_the_gpu_worker_reserves_an_nvidia_device_and_consumes_the_gpu_queue(compose):
    gpu = compose["services"]["gpu-worker"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    default = compose["services"]["worker"]
    assert default["command"][default["command"].index("-Q") + 1] == "default"


def test_docker_stop_lets_a_worker_finish_the_task_in_hand(compose):
    # SIGTERM is Celery's warm shutdown; compose kills after 10 s unless told otherwise.
    for name in ("worker", "gpu-worker"):
        assert compose["services"][name]["stop_grace_period"] == "600s", name


def test_app_services_share_database_broker_and_media(compose):
    for name in ("web", "worker", "gpu-worker"):
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "media:/data" in compose["services"][name]["volumes"]


def test_the_image_runs_web_and_workers_as_an_unprivileged_user_owning_its_state(compose):
    """Root in the container was root over the media volume and the weight caches, and Celery
    warned about it at every start."""
    lines = [line.strip() for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()]
    instructions = " ".join(lines).replace("\\ ", "").split(" RUN ")
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    assert user not in ("root", "0")
    created = next(step for step in instructions if "useradd" in step)
    assert re.search(rf"useradd .*--uid (\d+) .*{user}\b", created)
    env = compose["x-app"]["environment"]
    owned = re.search(rf"chown -R {user}:{user} ([^&]*)", created).group(1).split()
    for path in (env["MEDIA_ROOT"], env["HF_HOME"], env["TORCH_HOME"]):
        assert any(path == root or path.startswith(root + "/") for root in owned), path
    for name, service in compose["services"].items():
        assert service.get("user") in (None, user), name


def test_building_the_image_bakes_no_secret_key_into_it(tmp_path):
    """collectstatic ran as the embedded default, which wrote its key file into the image:
    everyone running the image without DATABASE_URL shared one SECRET_KEY."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    step = next(line for line in text.splitlines() if "collectstatic" in line)
    collect = step.removeprefix("RUN ").split("&&")[0]
    environ = {k: v for k, v in os.environ.items()
               if k not in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(["sh", "-c", collect], cwd=REPO_ROOT, capture_output=True,
                            text=True, env={**environ, "EVALHUB_VAR_DIR": str(tmp_path)},
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles" / "css" / "evalhub.css").exists()
    assert not (tmp_path / "secret_key").exists()


def _nginx_locations(text: str) -> dict[str, list[str]]:
    """``location <prefix> { ... }`` blocks of an nginx file: prefix -> directive lines."""
    blocks = re.findall(r"location\s+(\S+)\s*\{(.*?)\}", text, flags=re.S)
    return {prefix: [line.split("#")[0].strip().rstrip(";") for line in body.splitlines()
                     if line.split("#")[0].strip()]
            for prefix, body in blocks}


def test_nginx_sends_media_only_through_the_internal_location_django_names(compose):
    """Django answers X-Accel-Redirect with EVALHUB_MEDIA_ACCEL_PREFIX: nginx must have that
    location, internal (no browser reaches it), aliasing the media volume's MEDIA_ROOT, and
    without file times; nothing publishes gunicorn or MEDIA_ROOT directly."""
    nginx = compose["services"]["nginx"]
    mount = next(v for v in nginx["volumes"] if v.endswith(":/etc/nginx/conf.d/default.conf:ro"))
    config = (REPO_ROOT / mount.split(":")[0]).read_text()
    env = compose["services"]["web"]["environment"]
    assert env["EVALHUB_MEDIA_DELIVERY"].startswith("${EVALHUB_MEDIA_DELIVERY:-accel}")
    prefix = env["EVALHUB_MEDIA_ACCEL_PREFIX"]
    locations = _nginx_locations(config)
    protected = locations[prefix]
    assert "internal" in protected
    assert f"alias {env['MEDIA_ROOT'].rstrip('/')}/" in protected
    assert "media:/data:ro" in nginx["volumes"]  # the app's volume, MEDIA_ROOT=/data/media
    assert {"etag off", "if_modified_since off", 'add_header Last-Modified "" always'} <= set(
        protected)
    # Everything else, /media/ included, goes to Django, which checks access first.
    assert locations["/"][0] == "proxy_pass http://evalhub_web"
    assert not [p for p in locations if p.startswith(("/media", "/data"))]
    assert "ports" not in compose["services"]["web"]


@pytest.mark.django_db
def test_a_browser_on_the_published_port_signs_in_through_nginx(compose, outsider, settings):
    """nginx forwarded ``$host``, which drops the port: Django then saw ``Host: localhost``
    beside ``Origin: http://localhost:8000`` and refused every sign-in and form (CSRF 403)."""
    from django.test import Client

    config = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    forwarded = [line.split(None, 1)[1] for line in _nginx_locations(config)["/"]
                 if line.startswith("proxy_set_header Host ")]
    assert forwarded == ["Host $http_host"]  # what the browser sent, port included
    port = re.match(r"\$\{EVALHUB_HTTP_PORT:-(\d+)\}:80",
                    compose["services"]["nginx"]["ports"][0]).group(1)
    settings.ALLOWED_HOSTS = ["localhost"]
    browser = Client(enforce_csrf_checks=True, HTTP_HOST=f"localhost:{port}")
    browser.get("/accounts/login/")
    response = browser.post(
        "/accounts/login/", {"username": outsider.username, "password": "pw",
                             "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
        HTTP_ORIGIN=f"http://localhost:{port}")
    assert response.status_code == 302, response.status_code


def test_the_compose_prefix_is_what_the_settings_accept():
    from evalhub.config.storage import MediaDelivery, media_delivery_from_env

    env = {"EVALHUB_STORAGE": "local", "EVALHUB_MEDIA_DELIVERY": "accel",
           "EVALHUB_MEDIA_ACCEL_PREFIX": "/_protected_media/"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert media_delivery_from_env() == MediaDelivery("accel", "/_protected_media/", 60)


@pytest.mark.parametrize("env, message", [
    ({"EVALHUB_MEDIA_DELIVERY": "signed"}, "needs EVALHUB_STORAGE=s3"),
    ({"EVALHUB_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "media",
      "EVALHUB_MEDIA_DELIVERY": "accel"}, "needs EVALHUB_STORAGE=local"),
    ({"EVALHUB_MEDIA_DELIVERY": "accel", "EVALHUB_MEDIA_ACCEL_PREFIX": "internal"},
     "must start and end with '/'"),
    ({"EVALHUB_MEDIA_DELIVERY": "public"}, "expected one of stream, accel, signed"),
])
def test_media_delivery_settings_that_cannot_work_refuse_to_start(env, message):
    result = _settings_import({"DEBUG": "1", **env})
    assert result.returncode != 0
    assert message in result.stderr


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"],
                                 capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _compose_config(folder, dotenv: str) -> subprocess.CompletedProcess:
    """``docker compose config`` of a copy of the compose file beside the given ``.env``."""
    command = _compose_command()
    if command is None:
        pytest.fail("docker-compose is missing: scripts/ensure_system_packages.sh installs it")
    shutil.copy(REPO_ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    (folder / ".env").write_text(dotenv)
    # Exported values win over .env in compose's substitution: only .env may set them here.
    environ = {k: v for k, v in os.environ.items()
               if k not in ("SECRET_KEY", "EVALHUB_METRICS_TOKEN", "DATABASE_URL", "ALLOWED_HOSTS",
                            "EVALHUB_PROXY_COUNT", "EVALHUB_HTTP_PORT")}
    return subprocess.run([*command, "-f", "docker-compose.yml", "config"], cwd=folder,
                          env=environ, capture_output=True, text=True)


# What .env must hold for `docker compose config` (and `up`) to accept the file.
REQUIRED_DOTENV = [f"SECRET_KEY={'x' * 50}", f"EVALHUB_METRICS_TOKEN={'t' * 32}",
                   "ALLOWED_HOSTS=evalhub.example.org"]


def _dotenv(*lines: str) -> str:
    return "\n".join([*lines, ""])


def test_compose_file_passes_docker_compose_config(tmp_path):
    result = _compose_config(tmp_path, _dotenv(*REQUIRED_DOTENV))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("web", "worker", "gpu-worker"):
        env = services[name]["environment"]
        assert env["ALLOWED_HOSTS"] == "evalhub.example.org", name
        assert str(env["EVALHUB_PROXY_COUNT"]) == "1", name  # nginx, the one proxy


def test_compose_refuses_to_start_without_allowed_hosts(tmp_path):
    """A default of localhost answered 400 to every page on a real host name, while the
    healthcheck (by address, before the Host check) passed."""
    result = _compose_config(tmp_path, _dotenv(*REQUIRED_DOTENV[:2]))
    assert result.returncode != 0
    assert "set ALLOWED_HOSTS in .env" in result.stderr, result.stderr


def _published(port: str | dict) -> tuple[str, str, str]:
    """(host address, host port, container port) of a compose ``ports`` entry, in the short
    form docker-compose 1 prints or the long one docker compose 2 prints."""
    if isinstance(port, dict):
        return port.get("host_ip", ""), str(port["published"]), str(port["target"])
    *host, published, target = port.split("/")[0].split(":")
    return ":".join(host), published, target


def test_behind_an_outer_tls_proxy_dotenv_sets_two_proxies_and_a_loopback_port(tmp_path):
    """The outer proxy and nginx both append to X-Forwarded-For: with a fixed count of 1 the
    lockout keyed every user by the outer proxy's address. nginx's port on loopback only: a
    client reaching it directly could choose the address the lockout counts."""
    result = _compose_config(tmp_path, _dotenv(
        *REQUIRED_DOTENV, "EVALHUB_HTTPS=1", "CSRF_TRUSTED_ORIGINS=https://evalhub.example.org",
        "EVALHUB_PROXY_COUNT=2", "EVALHUB_HTTP_PORT=127.0.0.1:8000"))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("web", "worker", "gpu-worker"):
        assert str(services[name]["environment"]["EVALHUB_PROXY_COUNT"]) == "2", name
    assert [_published(port) for port in services["nginx"]["ports"]] == [
        ("127.0.0.1", "8000", "80")]


def test_every_setting_in_dotenv_reaches_the_app_but_not_the_services_wiring(tmp_path):
    """The app's environment listed fixed variables only, so HTTPS, trusted origins, JSON logs,
    worker counts or S3 could not be set from .env without editing the compose file."""
    result = _compose_config(tmp_path, _dotenv(
        *REQUIRED_DOTENV, "EVALHUB_HTTPS=1", "CSRF_TRUSTED_ORIGINS=https://evalhub.example.org",
        "EVALHUB_LOG_JSON=1", "AWS_STORAGE_BUCKET_NAME=evalhub-media",
        "DATABASE_URL=sqlite:///elsewhere.db"))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("web", "worker", "gpu-worker"):
        env = services[name]["environment"]
        assert env["EVALHUB_HTTPS"] == "1" and env["EVALHUB_LOG_JSON"] == "1", name
        assert env["CSRF_TRUSTED_ORIGINS"] == "https://evalhub.example.org"
        assert env["AWS_STORAGE_BUCKET_NAME"] == "evalhub-media"
        assert env["DATABASE_URL"].startswith("postgres://evalhub:"), name  # the compose one
        assert services[name]["restart"] == "unless-stopped"
    assert "redisdata" in str(services["redis"]["volumes"])  # queued tasks kept by `down`
