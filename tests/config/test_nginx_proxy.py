"""deploy/nginx.conf, run by a real nginx in front of the app, behind an outer TLS proxy.

docker compose behind a TLS-terminating proxy (docs/deployment.md, "docker compose") is two
proxies: the outer one says ``X-Forwarded-Proto: https`` and appends the browser's address to
``X-Forwarded-For``, then nginx appends the outer proxy's. nginx used to overwrite the scheme
with its own (``http``): with ``EVALHUB_HTTPS=1`` Django redirected every request to HTTPS,
forever. With ``EVALHUB_PROXY_COUNT=2`` the sign-in lockout is keyed by the browser's address,
not by the outer proxy's, which every user shares.

The test writes the main configuration nginx needs around the shipped file and rewrites only
the upstream server, the listen port and the media folder, each by an exact replacement that
fails when the shipped line is no longer there. The app is pytest-django's live server class,
started by each test after the settings of ``EVALHUB_HTTPS=1`` are in place: Django's
SecurityMiddleware reads ``SECURE_SSL_REDIRECT`` when the server builds its middleware, and the
session's ``live_server`` is built once, by whichever test asks for it first.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from axes.models import AccessAttempt
from pytest_django.live_server_helper import LiveServer

from tests.factories import UserFactory
from tests.integration.workers import REPO_ROOT
from tests.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the server thread reads and writes

HOST = "evalhub.example.org"
BROWSER_IP = "203.0.113.7"
# The settings EVALHUB_HTTPS=1 gives behind nginx and an outer proxy, as settings.py makes them.
HTTPS_SETTINGS = ("SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
                  "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "EVALHUB_PROXY_COUNT")


def _nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if found is None:
        pytest.fail("nginx is missing: scripts/ensure_system_packages.sh installs it")
    return found


def _replaced(text: str, old: str, new: str) -> str:
    """``text`` with its one ``old`` line replaced: deploy/nginx.conf must still have it."""
    assert text.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
    return text.replace(old, new)


def _server_config(web: str, port: int, media: Path) -> str:
    text = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    text = _replaced(text, "server web:8000;", f"server {web};")
    text = _replaced(text, "listen 80;", f"listen 127.0.0.1:{port};")
    return _replaced(text, "alias /data/media/;", f"alias {media}/;")


def _https_settings() -> dict[str, object]:
    """The settings of :data:`HTTPS_SETTINGS` as a fresh process with ``EVALHUB_HTTPS=1`` and
    ``EVALHUB_PROXY_COUNT=2`` (docker compose behind a TLS proxy) reads them."""
    script = ("import json; from evalhub.config import settings; "
              f"print(json.dumps({{n: getattr(settings, n) for n in {HTTPS_SETTINGS!r}}}))")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "EVALHUB_HTTPS": "1", "EVALHUB_PROXY_COUNT": "2"}, timeout=60)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


def _wait_for_port(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port}: {log.read_text()}")


@pytest.fixture
def app(settings) -> Iterator[str]:
    """The app with the settings of ``EVALHUB_HTTPS=1`` behind two proxies: its host:port."""
    for name, value in _https_settings().items():
        setattr(settings, name, value)
    settings.ALLOWED_HOSTS = [HOST]
    server = LiveServer("127.0.0.1")
    try:
        yield f"127.0.0.1:{server.thread.port}"
    finally:
        server.stop()


@pytest.fixture
def nginx(app, tmp_path) -> Iterator[str]:
    """deploy/nginx.conf in front of :func:`app`, as nginx runs it: its base URL."""
    binary = _nginx_binary()
    port = free_port()
    (tmp_path / "media").mkdir()
    (tmp_path / "evalhub.conf").write_text(_server_config(app, port, tmp_path / "media"))
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    log = tmp_path / "error.log"
    # The workers of a master started by root would switch to "nobody", who cannot enter
    # pytest's folder for the temporary files of large answers.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(f"""
        {user}
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {log} warn;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {temp['body']};
            proxy_temp_path {temp['proxy']};
            fastcgi_temp_path {temp['fastcgi']};
            uwsgi_temp_path {temp['uwsgi']};
            scgi_temp_path {temp['scgi']};
            include {tmp_path}/evalhub.conf;
        }}
    """)
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(log),
         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_request_the_outer_proxy_received_over_https_is_served(nginx):
    # What a TLS-terminating proxy in front of nginx sends on.
    page = requests.get(f"{nginx}/accounts/login/", allow_redirects=False, timeout=30, headers={
        "Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": BROWSER_IP})
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    assert "Strict-Transport-Security" in page.headers  # Django saw HTTPS
    assert "Secure" in page.headers["Set-Cookie"]  # the CSRF cookie travels over HTTPS only


@pytest.mark.parametrize("forwarded", [{}, {"X-Forwarded-Proto": "http"}],
                         ids=["no outer proxy", "outer proxy over http"])
def test_a_request_that_came_over_plain_http_is_sent_to_https(nginx, forwarded):
    answer = requests.get(f"{nginx}/accounts/login/?next=/", allow_redirects=False, timeout=30,
                          headers={"Host": HOST, **forwarded})
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{HOST}/accounts/login/?next=/"


def test_the_sign_in_lockout_counts_the_browsers_address_not_the_proxys(nginx):
    """Two proxies append to X-Forwarded-For (the outer one the browser's address, nginx the
    outer proxy's): the browser's is the second from the right; what the browser wrote itself,
    further left, is not read."""
    user = UserFactory()
    outer_proxy = {"Host": HOST, "X-Forwarded-Proto": "https",
                   "X-Forwarded-For": f"198.51.100.66, {BROWSER_IP}"}
    page = requests.get(f"{nginx}/accounts/login/", headers=outer_proxy, timeout=30,
                        allow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    # The browser holds the Secure cookie (it spoke HTTPS to the outer proxy) and sends it.
    token = page.cookies["csrftoken"]
    failed = requests.post(
        f"{nginx}/accounts/login/", timeout=30, allow_redirects=False,
        data={"username": user.username, "password": "wrong", "csrfmiddlewaretoken": token},
        headers={**outer_proxy, "Origin": f"https://{HOST}", "Cookie": f"csrftoken={token}"})
    assert failed.status_code == 200, failed.status_code  # the form again, not 403 or 301
    attempt = AccessAttempt.objects.get(username=user.username)
    assert attempt.ip_address == BROWSER_IP
