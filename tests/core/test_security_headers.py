"""Security headers on every answer, and the one production switch for HTTPS.

- Content-Security-Policy on every page and API answer; the pages carry no inline script or
  style for it to refuse (the browser side: tests/browser/test_csp.py).
- ``Cache-Control: private, no-store`` on pages and API answers that do not choose their own;
  media stay private; Django's never-cache pages keep theirs (static files: whitenoise, public,
  tests/leaderboards/test_plotly_bundle.py).
- With the production environment of docs/deployment.md, ``check --deploy`` warns of nothing,
  HTTP is redirected to HTTPS, HTTPS answers carry HSTS and cookies are sent only over TLS.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.builders import build_campaign
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

DEPLOYMENT_DOC = REPO_ROOT / "docs" / "deployment.md"


def _policy(response) -> dict[str, list[str]]:
    directives = [part.split() for part in response["Content-Security-Policy"].split(";")
                  if part.strip()]
    return {words[0]: words[1:] for words in directives}


def _cache_control(response) -> set[str]:
    return {part.strip() for part in response["Cache-Control"].split(",")}


class InlineCode(HTMLParser):
    """Collects what a Content-Security-Policy without 'unsafe-inline' would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append("<script> without src")
        if "style" in names:
            self.found.append(f"style= on <{tag}>")
        self.found += [f"{name}= on <{tag}>" for name in names if name.startswith("on")]
        if any((value or "").strip().lower().startswith("javascript:")
               for value in names.values()):
            self.found.append(f"javascript: URL on <{tag}>")


def _inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def world():
    from tests.leaderboards.helpers import set_run_metric, simulate_votes

    world = build_campaign(runs=3, prompts=4, annotators=2,
                           instructions="Pick the better one.\nTake your time.")
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)})
    set_run_metric(world.runs[0], "fid", 12.5, calibrated=False)
    return world


def _pages(world) -> dict[str, tuple[object, str]]:
    """Every kind of page, as the user who may open it."""
    model_id = world.runs[0].checkpoint.model_id
    return {
        "login": (None, "/accounts/login/"),
        "home": (world.annotators[0], "/"),
        "rate": (world.annotators[0], f"/rate/{world.campaign.pk}/"),
        "dashboards": (world.scientist, "/dashboard/"),
        "leaderboard": (world.scientist, f"/dashboard/campaigns/{world.campaign.pk}/"),
        "model": (world.scientist, f"/dashboard/models/{model_id}/"),
    }


def _get(user, url: str):
    client = Client()
    if user is not None:
        client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response


def test_every_page_has_the_policy_and_no_inline_script_or_style(world):
    for name, (user, url) in _pages(world).items():
        response = _get(user, url)
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"], name
        assert policy["script-src"] == ["'self'"], name
        assert policy["style-src"] == ["'self'"], name
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], name
        assert "'unsafe-eval'" not in response["Content-Security-Policy"], name
        assert _inline_code(response.content.decode()) == [], name


def test_the_lockout_page_has_no_inline_script_or_style(world, settings):
    client = Client(REMOTE_ADDR="203.0.113.99")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/accounts/login/",
                               {"username": world.annotators[0].username, "password": "no"})
    assert response.status_code == 429
    assert "Content-Security-Policy" in response
    assert _inline_code(response.content.decode()) == []


def test_pages_are_private_and_never_stored(world):
    for name, (user, url) in _pages(world).items():
        assert {"private", "no-store"} <= _cache_control(_get(user, url)), name


def test_api_answers_are_private_and_never_stored(world, api):
    unrated = build_campaign(prompts=2)
    api.force_login(unrated.annotators[0])
    rating = api.post(f"/api/v1/rate/{unrated.campaign.pk}/next/", {}, format="json")
    assert rating.status_code == 201
    api.force_login(world.scientist)
    for response in (rating, api.get("/api/v1/projects/"),
                     api.get(f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/"),
                     api.get("/api/v1/projects/999999/")):
        assert {"private", "no-store"} <= _cache_control(response), response.request
        assert "Content-Security-Policy" in response


def test_media_are_private(api):
    world = build_campaign(prompts=2)
    api.force_login(world.annotators[0])
    task = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json").json()
    image = api.get(task["left"]["url"])
    assert image.status_code == 200
    assert "private" in _cache_control(image)
    assert "public" not in _cache_control(image)


def test_a_view_that_chose_its_caching_keeps_it():
    login = Client().get("/accounts/login/")
    assert {"private", "no-store", "no-cache", "must-revalidate"} <= _cache_control(login)


def test_without_the_https_switch_nothing_forces_https():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
    assert "secure" not in str(response.cookies["csrftoken"]).lower()


# ------------------------------------------------ the production environment of the docs


def production_environment() -> dict[str, str]:
    """The variables of the block after ``<!-- production-environment -->`` in the docs, with
    a fresh random SECRET_KEY for its placeholder (the only value that may be one)."""
    text = DEPLOYMENT_DOC.read_text()
    block = re.search(r"<!-- production-environment -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/deployment.md lost its production-environment block"
    variables = dict(line.split("=", 1) for line in block.group(1).splitlines() if line)
    assert [name for name, value in variables.items() if value.startswith("<")] == \
        ["SECRET_KEY"]
    variables["SECRET_KEY"] = secrets.token_urlsafe(50)
    return variables


def _run_in_production(args: list[str]) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    environment.update(production_environment())
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_warns_of_nothing_in_the_documented_production_environment():
    result = _run_in_production(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


# Requests through Django's test client in a process started with the production
# environment (no database needed: the login page only sets the CSRF cookie).
PROBE = """
import json, django
django.setup()
from django.test import Client
host = {"HTTP_HOST": "evalhub.example.org"}
plain = Client().get("/accounts/login/", **host)
direct = Client().get("/accounts/login/", secure=True, **host)
proxied = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https", **host)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "direct": [direct.status_code, direct.get("Strict-Transport-Security"),
               direct.cookies["csrftoken"]["secure"]],
    "proxied": [proxied.status_code, proxied.get("Strict-Transport-Security")],
}))
"""


def test_the_https_switch_redirects_sets_hsts_and_secures_cookies():
    result = _run_in_production(["-c", PROBE])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://evalhub.example.org/accounts/login/"]
    status, hsts, secure_cookie = seen["direct"]
    # One year; subdomains and preloading are off unless asked for (docs/security.md).
    assert (status, hsts, bool(secure_cookie)) == (200, "max-age=31536000", True)
    # Behind the documented proxy, its X-Forwarded-Proto says the request came over HTTPS.
    assert seen["proxied"] == [200, "max-age=31536000"]
