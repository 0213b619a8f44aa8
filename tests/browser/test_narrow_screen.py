"""The rating page on a phone (390 x 844 CSS px, touch): nothing scrolls sideways, both images
are on screen, the answer buttons are visible and a tap on one stores the vote. The scientist's
pages (new campaign, workspace lists, dashboards, gallery, image page) on the same phone: no
page scrolls sideways.

Fails on any console error or Content-Security-Policy violation of the page.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, watch_errors
from tests.browser.pages import (
    WIDEST,
    dismiss_instructions,
    shown_lease,
    until,
)
from tests.browser.world import build_world, expected_outcome, live_judgments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    """A phone: its size, touch, a mobile viewport; and the page's console errors."""
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, has_touch=True,
                                  is_mobile=True, device_scale_factor=3)
    context.set_default_timeout(15_000)
    errors = watch_errors(context)
    page = context.new_page()
    yield page, errors
    page.wait_for_timeout(300)  # the last prefetch, before the test database is flushed
    context.close()


def test_a_phone_rates_without_sideways_scrolling(phone):
    page, errors = phone
    world = build_world(prompts=2, sizes=((768, 768), (1024, 1024)),
                        instructions="Pick the image that follows the prompt better.")
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    dismiss_instructions(page)
    page.screenshot(path="/tmp/rate-phone.png")

    # Nothing scrolls sideways; the whole page is one screen.
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("() => document.scrollingElement.scrollHeight") <= PHONE["height"]
    for side in ("left", "right"):  # both images on screen, whole and of a usable size
        box = page.locator(f".pane-{side} .pane-view").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], side
        assert box["width"] >= 150 and box["height"] >= 150, box
    for answer in ("left", "right", "tie", "both_bad"):
        button = page.locator(f".answer-btn[data-answer={answer}]")
        assert button.is_visible()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"], answer
        assert box["height"] >= 40  # a finger's size
    assert page.locator("#rate-prompt").bounding_box()["height"] > 0

    page.tap(".answer-btn[data-answer=right]")
    shown_lease(page, other_than=lease)
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert live_judgments(world.campaign).get(lease_id=lease).outcome == expected_outcome(
        lease, "right")
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    assert errors == [] and page.evaluate("window.__violations") == []



def test_a_scientist_pages_fit_a_phone(phone):
    """The scientist's pages on a phone: the page itself never scrolls sideways (wide tables
    scroll inside their own box, charts fit the width) and the new-campaign form's controls
    stay on screen. On the way, the pair campaign's leaderboard pools a best-of-3 campaign's
    rankings by its checkbox (docs/leaderboards.md, "Pooling campaigns")."""
    import dataclasses

    from evalhub.campaigns.models import TaskKind
    from evalhub.campaigns.services import campaign_create
    from tests.builders import build_campaign, rank_every_set
    from tests.leaderboards.helpers import set_image_metric, set_run_metric, simulate_votes

    page, errors = phone
    world = build_campaign(runs=3, prompts=3, annotators=2,
                           run_names=["a-rather-long-run-name-for-a-phone-screen-" + s
                                      for s in ("one", "two", "three")])
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, (1200, 1000, 800),
                                                       strict=True)})
    for metric, values in (("fid", (12.5, 15.0, 18.0)), ("clip_score", (30.1, 29.4, 28.8))):
        for run, value in zip(world.runs, values, strict=True):
            set_run_metric(run, metric, value)
    image = world.tasks[0].image_a
    set_image_metric(image, "clip_score", 30.5)
    project = world.campaign.project_id
    left, right = world.runs[:2]
    best_of_3 = campaign_create(project=world.campaign.project, name="best of three",
                                runs=world.runs, task_kind=TaskKind.BEST_OF_K, k=3,
                                rank_all=True, build_now=True)
    rank_every_set(dataclasses.replace(world, campaign=best_of_3), ranking=(0, 1, 2))

    wide: list = []  # every overflow of every page, so that one run shows them all

    def fits(url: str, ready: str = "() => true") -> None:
        assert page.goto(url).ok, url
        page.wait_for_function(ready)
        # With a mobile viewport the layout viewport grows to the content: compare with the
        # phone's width too.
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if max(width) > PHONE["width"]:
            wide.append((url, width, page.evaluate(WIDEST, PHONE["width"])))

    def on_screen(selector: str) -> None:
        for box in (item.bounding_box() for item in page.locator(selector).all()):
            if box and (box["x"] < 0 or box["x"] + box["width"] > PHONE["width"]):
                wide.append((page.url, selector, box))

    login(page, world.scientist.username, f"/projects/{project}/campaigns/new/")
    fits(f"/projects/{project}/campaigns/new/")
    assert page.locator(".manage-form select").count() >= 2
    on_screen(".manage-form input:visible, .manage-form select:visible,"
              " .manage-form label:visible, .manage-form textarea:visible")
    for tab in ("runs", "models", "prompts", "references", "metrics"):
        fits(f"/workspace/{project}/{tab}/")
    fits(f"/dashboard/campaigns/{world.campaign.pk}/",
         "() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
    on_screen(".js-plotly-plot .main-svg:first-child")
    # Each chart stays in its box (a taller figure would draw over the chart below it).
    assert page.evaluate("""() => [...document.querySelectorAll('.chart')].filter(box =>
        box.querySelector('.main-svg').getBoundingClientRect().bottom
        > box.getBoundingClientRect().bottom + 1).map(box => box.id)""") == []
    # No legend over its chart's title (long run names wrap a legend above the plot into
    # rows: on a phone it goes under the plot, dashboards.js legendBelow).
    assert page.evaluate("""() => [...document.querySelectorAll('.chart')].filter(box => {
        const legend = box.querySelector('.legend'), title = box.querySelector('.gtitle');
        if (!legend || !title) { return false; }
        const l = legend.getBoundingClientRect(), t = title.getBoundingClientRect();
        return l.top < t.bottom && l.bottom > t.top && l.left < t.right && l.right > t.left;
    }).map(box => box.id)""") == []
    assert page.locator(".chart .legend").count() >= 1
    # Every title inside its chart's box (plotly does not wrap titles: dashboards.js does).
    assert page.evaluate("""() => [...document.querySelectorAll('.chart')].filter(box => {
        const title = box.querySelector('.gtitle');
        return title && title.getBoundingClientRect().right
            > box.getBoundingClientRect().right + 1;
    }).map(box => box.id)""") == []
    assert page.locator("#pooled").count() == 0
    page.locator(f"#pool-choices input[value='{best_of_3.pk}']").check()
    on_screen("#pool-choices, #pool-choices label")
    with page.expect_navigation():
        page.locator("form.filters button[type=submit]").first.click()
    assert f"pool={best_of_3.pk}" in page.url
    rankings = best_of_3.judgments.count()
    assert page.locator("#pooled").inner_text().startswith(
        f"Pooled with best of three (best of 3, {rankings} votes)")
    assert "Plackett-Luce Elo (best-of-3 rankings and pair votes)" in page.locator(
        "#fit-method").inner_text()
    assert page.locator(f"#pool-choices input[value='{best_of_3.pk}']").is_checked()
    fits(page.url, "() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
    fits("/dashboard/")
    fits(f"/dashboard/models/{left.checkpoint.model_id}/")
    fits(f"/gallery/{project}/?a={left.pk}&b={right.pk}",
         "() => document.querySelector('#gallery-app').dataset.ready === '1'")
    fits(f"/gallery/images/{image.pk}/",
         "() => document.querySelector('#image-app').dataset.ready === '1'")
    assert wide == [], "\n".join(map(str, wide))
    assert errors == [] and page.evaluate("window.__violations") == []
