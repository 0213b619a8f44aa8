"""An annotator rates best-of-4 tasks with the keys 1..4 (and, in a rank-all campaign, ranks
all four by successive picks); the database holds exactly the rankings cast, in canonical
positions through each lease's display order, and nothing the page saw names a run."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from evalhub.campaigns.models import Judgment, Lease, LeaseStatus, TaskKind
from tests.browser.conftest import login
from tests.browser.pages import (
    HeldRequests,
    is_image_file,
    outbox,
    shown_lease,
    until,
    wait_next_prefetched,
    wait_outbox_empty,
)
from tests.browser.world import SECRET_NAMES, picture
from tests.builders import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN_NAMES = ["run-nebula-alpha", "run-nebula-beta", "run-nebula-gamma", "run-nebula-delta"]


def _world(prompts: int = 6, **kwargs):
    return build_campaign(
        runs=4, prompts=prompts, annotators=1, run_names=RUN_NAMES, model_name=SECRET_NAMES[0],
        checkpoint_names=[f"{SECRET_NAMES[1]}{i}" for i in range(4)],
        prompt_text=lambda i: f"a white shape on a coloured background, variant {i}",
        image_bytes=lambda p, r: picture(p * 4 + r, (512 + 64 * r, 512)),
        name="Best of four", task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=1,
        **kwargs)


def _live(world):
    return {str(j.lease_id): j for j in Judgment.objects.filter(
        campaign=world.campaign, retracted_at__isnull=True)}


def _canonical(lease_id: str, slots: list[int]) -> list[int]:
    order = Lease.objects.get(pk=lease_id).order
    return [order[s] for s in slots]


def test_best_of_4_with_keys_undo_skip_and_an_outbox_across_a_reload(context, traffic, errors):
    world = _world()
    page = context.new_page()
    rate_url = f"/rate/{world.campaign.pk}/"
    login(page, world.annotator.username, rate_url)
    cast: dict[str, list[int]] = {}  # lease -> slots picked

    lease = shown_lease(page)
    assert page.locator(".grid-pane .pane-img").count() == 4
    page.keyboard.press("3")
    cast[lease] = [2]
    lease = shown_lease(page, other_than=lease)
    page.click(".grid-pick[data-slot='0']")  # the mouse picks too
    cast[lease] = [0]
    undone = lease

    # Undo once the vote reached the server: retracted, and the same four images come back
    # in the same places.
    wait_outbox_empty(page)
    assert until(lambda: Judgment.objects.filter(lease_id=undone).exists())
    after = shown_lease(page, other_than=undone)
    page.keyboard.press("u")
    again = shown_lease(page, other_than=after)
    del cast[undone]
    old, new = Lease.objects.get(pk=undone), Lease.objects.get(pk=again)
    assert (new.task_id, new.order) == (old.task_id, old.order)
    assert until(lambda: Judgment.objects.get(lease_id=undone).retracted_at is not None)
    page.keyboard.press("4")
    cast[again] = [3]

    # Skip.
    skipped = shown_lease(page, other_than=again)
    wait_outbox_empty(page)
    behind = wait_next_prefetched(page, shown=skipped)
    # Image files are held from here: the task the skip shows was loaded before, the one
    # behind it (which the page loads once the skip's task is drawn) is not.
    held = HeldRequests(page, "**/*", where=is_image_file)
    page.keyboard.press("s")
    lease = shown_lease(page, other_than=skipped)
    assert lease == behind
    assert until(lambda: Lease.objects.get(pk=skipped).status == LeaseStatus.SKIPPED)

    # Keys do nothing until all four images are drawn.
    page.keyboard.press("2")
    cast[lease] = [1]
    held.wait_for(1)
    waiting = page.get_attribute("#rate-app", "data-ready")
    page.keyboard.press("1")  # on a task not drawn yet: ignored
    assert waiting == "0"
    held.release()

    # A vote that cannot be sent stays in the outbox across a reload, then lands once.
    lease = shown_lease(page, other_than=lease)
    page.route("**/votes/", lambda route: route.abort())
    page.keyboard.press("2")
    cast[lease] = [1]
    on_screen = shown_lease(page, other_than=lease)
    page.wait_for_selector("#rate-pending:not([hidden])")
    assert [item["lease"] for item in outbox(page)] == [lease]
    page.unroute("**/votes/")
    page.reload()
    assert shown_lease(page) == on_screen
    wait_outbox_empty(page)
    assert until(lambda: len(_live(world)) == len(cast))

    judgments = _live(world)
    assert set(judgments) == set(cast)
    for lease_id, slots in cast.items():
        assert judgments[lease_id].ranking == _canonical(lease_id, slots)
        assert judgments[lease_id].latency_ms is not None
    for url, body in traffic.bodies:
        for name in RUN_NAMES + SECRET_NAMES[:2]:
            assert name not in body, (name, url)
    # The votes/ requests this test aborted are logged by the browser; nothing else is.
    assert [e for e in errors if "net::ERR_FAILED" not in e] == []


def test_rank_all_by_successive_picks_with_undo_of_a_pick(context, errors):
    world = _world(rank_all=True)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    page.keyboard.press("2")
    page.keyboard.press("4")
    page.keyboard.press("Backspace")  # takes back the pick of 4, not a vote
    assert page.locator(".grid-pane.picked").count() == 1
    page.keyboard.press("3")
    page.keyboard.press("1")  # the third pick completes the ranking; 4 is last
    second = shown_lease(page, other_than=lease)
    page.keyboard.press("4")
    page.keyboard.press("3")
    page.keyboard.press("2")
    third = shown_lease(page, other_than=second)
    wait_outbox_empty(page)

    # Undo of a vote that never reached the server: it was sent (and failed), so the page asks
    # the server to undo it, which has no such vote (400); it leaves the outbox for good and
    # the same task is shown again; the new ranking is the only one stored.
    page.route("**/votes/", lambda route: route.abort())
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("3")
    fourth = shown_lease(page, other_than=third)
    assert [item["lease"] for item in outbox(page)] == [third]
    page.keyboard.press("u")
    assert shown_lease(page, other_than=fourth) == third
    assert outbox(page) == []
    page.unroute("**/votes/")
    page.keyboard.press("3")
    page.keyboard.press("1")
    page.keyboard.press("4")
    shown_lease(page, other_than=third)
    wait_outbox_empty(page)
    assert until(lambda: len(_live(world)) == 3)
    judgments = _live(world)
    assert judgments[lease].ranking == _canonical(lease, [1, 2, 0, 3])
    assert judgments[second].ranking == _canonical(second, [3, 2, 1, 0])
    assert judgments[third].ranking == _canonical(third, [2, 0, 3, 1])
    assert Judgment.objects.filter(lease_id=third).count() == 1
    # The browser logs the aborted votes and the undo's 400; nothing else is logged.
    assert [e for e in errors if "net::ERR_FAILED" not in e
            and "status of 400" not in e] == []


def test_a_finished_grid_asks_nothing_more_but_can_undo(context, errors):
    world = _world(prompts=1)
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)
    assert page.is_visible("#grid-question") and page.is_visible("#skip-btn")
    page.keyboard.press("2")
    page.wait_for_function("() => document.querySelector('#rate-app').dataset.done === '1'")
    assert not page.is_visible("#grid-question") and not page.is_visible("#skip-btn")
    assert page.is_enabled("#undo-btn")
    wait_outbox_empty(page)
    assert until(lambda: len(_live(world)) == 1)
    assert errors == []


def test_the_grid_zooms_every_image_together_and_opens_large_ones_as_tiles(context, errors):
    from tests.browser.world import build_tiles

    sizes = [(768, 768), (1536, 1536), (5000, 3000)]
    world = build_campaign(
        runs=3, prompts=2, annotators=1, run_names=RUN_NAMES[:3],
        image_bytes=lambda p, r: picture(p * 3 + r, sizes[r], fmt="JPEG"),
        task_kind=TaskKind.BEST_OF_K, k=3, judgments_per_pair=1)
    build_tiles()
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    lease = shown_lease(page)
    expect(page.locator(".grid-pane .osd-holder canvas")).to_have_count(1)
    assert page.locator(".grid-pane[data-kind=img]").count() == 2

    # Zoom into one plain image: the other plain image shows the same image-relative region.
    plain = page.evaluate("""() => [...document.querySelectorAll('.grid-pane')]
        .filter(p => p.dataset.kind === 'img').map(p => Number(p.dataset.slot))""")
    box = page.locator(f".grid-pane[data-slot='{plain[0]}'] .pane-view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.wheel(0, -500)
    page.wait_for_timeout(100)
    centres = page.evaluate("""(slots) => slots.map(slot => {
        const pane = document.querySelector(`.grid-pane[data-slot='${slot}']`);
        const view = pane.querySelector('.pane-view').getBoundingClientRect();
        const img = pane.querySelector('.pane-img').getBoundingClientRect();
        return [(view.left + view.width / 2 - img.left) / img.width,
                (view.top + view.height / 2 - img.top) / img.height];
    })""", plain)
    (ax, ay), (bx, by) = centres
    assert abs(ax - 0.5) > 0.01 or abs(ay - 0.5) > 0.01  # it did zoom off-centre
    assert abs(ax - bx) < 0.005 and abs(ay - by) < 0.005

    page.keyboard.press("0")
    page.keyboard.press("3")
    shown_lease(page, other_than=lease)
    wait_outbox_empty(page)
    assert until(lambda: len(_live(world)) == 1)
    assert _live(world)[lease].ranking == _canonical(lease, [2])
    assert page.evaluate("window.__violations") == []
    assert errors == []
