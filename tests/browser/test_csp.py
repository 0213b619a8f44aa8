"""The pages work under the Content-Security-Policy: no inline script or style is needed.

Every page is opened in headless Chromium with a listener for ``securitypolicyviolation``
events (what the browser fires for each thing the policy refused) and for console errors, and
then used: a pair shown and voted on, tiles zoomed, dashboard charts drawn by plotly.js.

``static/css/plotly.css`` holds the rules plotly.js would insert into the page itself (which
the policy refuses); a test compares it with what the installed plotly.js inserts. After a
plotly upgrade, rewrite it with
``DJANGO_SETTINGS_MODULE=evalhub.config.settings python -m tests.browser.test_csp``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.browser.pages import (
    WATCH_VIOLATIONS,
    dismiss_instructions,
    images_loaded,
    shown_lease,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLOTLY_CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "plotly.css"



@pytest.fixture
def watched(context):
    """The browser context, and the script errors and console errors of all its pages.

    A missing file (the browser's own /favicon.ico request) is not an error of the page;
    a file the policy refused is reported as a violation and as a "Refused to ..." error.
    """
    context.add_init_script(WATCH_VIOLATIONS)
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def watch(page) -> None:
        page.on("console", console)
        page.on("pageerror", lambda error: errors.append(str(error)))

    context.on("page", watch)
    return context, errors


def _assert_clean(page, errors: list[str]) -> None:
    assert page.evaluate("window.__violations") == []
    assert errors == []


def _policy(response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {words[0]: words[1:] for words in directives}


def test_the_policy_allows_only_this_origin_for_scripts_and_styles(watched):
    from tests.browser.world import build_world

    context, errors = watched
    world = build_world(prompts=1)
    page = context.new_page()
    response = page.goto("/accounts/login/")
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    login(page, world.annotator.username, "/")
    _assert_clean(page, errors)


def test_the_rating_page_shows_and_records_pairs_with_no_violation(watched, traffic):
    from tests.browser.world import build_world

    context, errors = watched
    world = build_world(prompts=3, sizes=((320, 320), (480, 480)),
                        instructions="Pick the better image.")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    first = shown_lease(page)
    dismiss_instructions(page)
    assert set(images_loaded(page).values()) == {320, 480}
    page.keyboard.press("1")
    shown_lease(page, other_than=first)
    page.click("#rate-instructions-btn")
    dismiss_instructions(page)
    _assert_clean(page, errors)


def test_tiles_zoom_with_no_violation(watched, traffic):
    from tests.browser.world import build_world

    context, errors = watched
    world = build_world(prompts=1, sizes=((5000, 3000), (4200, 2800)), fmt="JPEG")
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    expect(page.locator(".pane[data-kind=tiles] canvas")).to_have_count(2)
    page.mouse.move(400, 400)
    page.mouse.wheel(0, -600)
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    assert [url for url in traffic.urls if "_files/" in url]
    _assert_clean(page, errors)


def test_dashboard_charts_are_drawn_and_styled_with_no_violation(watched):
    from tests.builders import build_campaign
    from tests.leaderboards.helpers import set_run_metric, simulate_votes

    context, errors = watched
    world = build_campaign(runs=3, prompts=4, annotators=2)
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)})
    set_run_metric(world.runs[0], "fid", 12.5)
    set_run_metric(world.runs[1], "fid", 15.0)
    page = context.new_page()
    login(page, world.scientist.username, f"/dashboard/campaigns/{world.campaign.pk}/")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    charts = page.locator(".js-plotly-plot").count()
    assert charts == page.locator("[data-figure]").count() > 0
    # plotly.js found the page's copy of its rules and inserted no <style> of its own.
    assert page.evaluate("document.getElementById('plotly.js-style-global').tagName") == "LINK"
    # Its rules apply: the mode bar floats over the chart, hidden until hovered.
    page.hover(".js-plotly-plot")
    assert page.eval_on_selector(".js-plotly-plot .modebar",
                                 "el => getComputedStyle(el).position") == "absolute"
    page.goto("/dashboard/")
    _assert_clean(page, errors)


def _plotly_rules(browser) -> list[str]:
    """The CSS rules the installed plotly.js inserts into a page that allows it, in order."""
    from plotly.offline import get_plotlyjs

    page = browser.new_page()
    try:
        page.set_content("<html><head></head><body></body></html>")
        page.add_script_tag(content=get_plotlyjs())
        return page.evaluate("() => [...document.getElementById('plotly.js-style-global')"
                             ".sheet.cssRules].map(rule => rule.cssText)")
    finally:
        page.close()


def _file_rules(browser, css: str) -> list[str]:
    """The rules of a stylesheet as the same browser parses them."""
    page = browser.new_page()
    try:
        page.set_content("<html><head></head><body></body></html>")
        page.add_style_tag(content=css)
        return page.evaluate("() => [...document.styleSheets[0].cssRules]"
                             ".map(rule => rule.cssText)")
    finally:
        page.close()


def test_plotly_css_holds_the_rules_the_installed_plotly_inserts(browser):
    rules = _plotly_rules(browser)
    assert len(rules) > 20
    assert _file_rules(browser, PLOTLY_CSS.read_text()) == rules, \
        "static/css/plotly.css is stale: see this module's docstring"


def _write_plotly_css() -> None:
    from playwright.sync_api import sync_playwright
    from plotly import __version__ as plotly_py

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        rules = _plotly_rules(browser)
        browser.close()
    PLOTLY_CSS.write_text(
        f"/* The rules plotly.js (Python plotly {plotly_py}) inserts into a page, as a file, so "
        "that the\n   Content-Security-Policy needs no 'unsafe-inline' "
        "(docs/security.md).\n   Written by `python -m tests.browser.test_csp`; "
        "do not edit. */\n" + "\n".join(rules) + "\n")


if __name__ == "__main__":
    _write_plotly_css()
