"""A best-of-K task of an editing campaign shows the prompt's source beside the K, as a pair
shows it beside the pair: in its own pane (not one of the picks: keys 1..K still pick the K),
under the grid's one zoom (images) or on the grid's one timeline (videos), and anonymous
(the source's display derivative; nothing the page receives names a run or a model)."""

from __future__ import annotations

import pytest

from evalhub.blobs.views import display_url
from evalhub.campaigns.models import ImageReport, Lease, LeaseStatus, TaskKind
from tests.browser.conftest import login
from tests.browser.pages import drag_from_centre, shown_lease, until, wait_outbox_empty
from tests.browser.test_video_rating import _paused_together, settle, videos_for_outputs
from tests.browser.world import SECRET_NAMES, live_judgments, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.playback,
              pytest.mark.django_db(transaction=True)]

RUN_NAMES = [*SECRET_NAMES[2:], "run-nebula-gamma"]

# Each shown pane's view box and, for a plain image, the image-relative point at the view's
# centre (where the shared zoom puts every image alike).
PANES = """() => Object.fromEntries([...document.querySelectorAll('#rate-stage .pane')]
  .filter((pane) => !pane.hidden).map((pane) => {
    const view = pane.querySelector('.pane-view').getBoundingClientRect();
    const img = pane.querySelector('.pane-img');
    const box = img.getBoundingClientRect();
    return [pane.dataset.side, {
      left: view.left, right: view.right, top: view.top, bottom: view.bottom,
      picked: pane.classList.contains('grid-pane'), src: img.getAttribute('src'),
      loaded: img.naturalWidth,
      centre: [(view.left + view.width / 2 - box.left) / box.width,
               (view.top + view.height / 2 - box.top) / box.height]}];
  }))"""


def _edit_best_of_3(**kwargs):
    """Best of three runs over editing prompts (a 512 px source each), images of three sizes."""
    sizes = [(480, 480), (640, 480), (768, 768)]
    return build_campaign(
        runs=3, prompts=3, annotators=1, run_names=RUN_NAMES, model_name=SECRET_NAMES[0],
        checkpoint_names=[f"{SECRET_NAMES[1]}{i}" for i in range(3)],
        prompt_text=lambda i: f"make the shape white, variant {i}",
        source_image=lambda i: picture(i + 50, (512, 512)),
        image_bytes=lambda p, r: picture(p * 3 + r, sizes[r]),
        name="Best edit", task_kind=TaskKind.BEST_OF_K, k=3, judgments_per_pair=1, **kwargs)


def test_the_source_is_shown_beside_the_grid_and_zooms_with_it(context, traffic, errors):
    world = _edit_best_of_3()
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)

    panes = page.evaluate(PANES)
    assert sorted(panes) == ["0", "1", "2", "source"]
    source = panes.pop("source")
    prompt = Lease.objects.select_related("task__prompt__source_image").get(pk=lease).task.prompt
    project_id = world.campaign.project_id
    assert source["src"] == display_url(prompt.source_image, project_id)
    assert source["loaded"] == 512
    assert not source["picked"] and all(pane["picked"] for pane in panes.values())
    assert all(pane["loaded"] > 0 for pane in panes.values())
    # Beside the grid: left of every slot, overlapping none.
    assert all(source["right"] <= pane["left"] for pane in panes.values())
    page.screenshot(path="/tmp/rate-grid-source.png")  # to look at the layout

    # Zoom with the wheel over slot 3: the source shows the same image-relative region.
    box = page.locator(".grid-pane[data-slot='2'] .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.wheel(0, -500)
    page.wait_for_function("() => document.querySelector('#zoom-level').dataset.zoom !== '1'")
    zoomed = page.evaluate(PANES)
    sx, sy = zoomed["source"]["centre"]
    assert abs(sx - 0.5) > 0.01 or abs(sy - 0.5) > 0.01  # it did zoom off-centre
    for side in ("0", "1", "2"):
        x, y = zoomed[side]["centre"]
        assert abs(x - sx) < 0.005 and abs(y - sy) < 0.005, side
    # Dragging the source pans the K with it.
    drag_from_centre(page, ".pane-source .pane-view", 40, 30)
    panned = page.evaluate(PANES)
    sx2, sy2 = panned["source"]["centre"]
    assert abs(sx2 - sx) > 0.01 or abs(sy2 - sy) > 0.01
    for side in ("0", "1", "2"):
        x, y = panned[side]["centre"]
        assert abs(x - sx2) < 0.005 and abs(y - sy2) < 0.005, side

    # The source is not a pick: 1 picks slot 0, and the next task shows its own source.
    page.keyboard.press("0")
    page.keyboard.press("1")
    second = shown_lease(page, other_than=lease)
    assert page.evaluate(PANES)["source"]["src"] == display_url(
        Lease.objects.select_related("task__prompt__source_image").get(pk=second)
        .task.prompt.source_image, project_id)
    wait_outbox_empty(page)
    order = Lease.objects.get(pk=lease).order
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    assert live_judgments(world.campaign).get(lease_id=lease).ranking == [order[0]]

    # Its Report button reports the source and skips the task.
    page.click(".pane-source .report-btn")
    page.click("#report-send")
    shown_lease(page, other_than=second)
    report = until(lambda: ImageReport.objects.filter(task__leases=second).first())
    assert report.side == "source" and report.image_id is None
    assert until(lambda: Lease.objects.get(pk=second).status == LeaseStatus.REPORTED)

    for url, body in traffic.bodies:
        for secret in RUN_NAMES + SECRET_NAMES[:2]:
            assert secret not in body and secret not in url, (secret, url)
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_best_of_k_video_edit_plays_its_source_on_the_grids_timeline(context, errors):
    world = videos_for_outputs(build_campaign(
        runs=3, prompts=2, annotators=1, run_names=RUN_NAMES, model_name=SECRET_NAMES[0],
        name="Best clip edit", task_kind=TaskKind.BEST_OF_K, k=3, judgments_per_pair=1),
        source_videos=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    assert page.locator(".pane-source[data-kind=video]:not([hidden])").count() == 1
    assert page.locator(".grid-pane[data-kind=video]:not([hidden])").count() == 3
    state = settle(page, "playing")
    assert len(state["frames"]) == 4 and not any(state["paused"])
    _paused_together(page)  # the source too: the same frame paused, stepped and seeked
    page.screenshot(path="/tmp/rate-video-grid-source.png")  # to look at the layout

    page.keyboard.press("3")
    assert until(lambda: live_judgments(world.campaign).filter(lease_id=lease).exists())
    order = Lease.objects.get(pk=lease).order
    assert live_judgments(world.campaign).get(lease_id=lease).ranking == [order[2]]
    shown_lease(page, other_than=lease)
    assert page.locator(".pane-source[data-kind=video]:not([hidden])").count() == 1
    assert len(settle(page, "playing")["frames"]) == 4
    assert errors == [] and page.evaluate("window.__violations") == []
