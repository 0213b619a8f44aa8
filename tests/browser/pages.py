"""Reading the rating page's state the way a test needs it."""

from __future__ import annotations

import time

from evalhub.blobs.views import display_url
from evalhub.campaigns.models import Lease, LeaseStatus, TaskImage

READY = "document.querySelector('#rate-app').dataset.ready === '1'"
# The gallery shows pair number n. False, not an error, on a page without the gallery (the
# page a link is leaving): a wait begun right after a click may first run there.
GALLERY_SHOWN = ("(n) => { const app = document.querySelector('#gallery-app');"
                 " return !!app && app.dataset.ready === '1'"
                 " && app.dataset.number === String(n); }")

# The first elements that reach past a narrow screen's right edge, for a failure message.
WIDEST = """(edge) => [...document.querySelectorAll('body *')]
  .map(el => [el, Math.round(el.getBoundingClientRect().right)]).filter(([, r]) => r > edge + 1)
  .slice(0, 8).map(([el, r]) => `${el.tagName}#${el.id}.${el.className} ${r}`)"""

# Runs in every page before its own scripts: keeps what the policy refused.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} refused ${e.blockedURI || "inline"}`
                           + ` (${e.sourceFile}:${e.lineNumber})`);
});
"""

# Each tiled pane's OpenSeadragon viewport, by side: zoom over fit, the image point at its
# centre (u, v), the image's size on screen at fit (wide, high), and whether the viewer is in
# front (the fit picture hidden, the viewer opaque).
TILED_VIEWS = """() => Object.fromEntries(['left', 'right'].map((side) => {
    const view = document.querySelector(`.pane-${side} .pane-view`);
    const viewer = OpenSeadragon.getViewer(view.querySelector('.osd-holder'));
    const vp = viewer.viewport;
    const size = viewer.world.getItemAt(0).getContentSize();
    const fit = Math.min(view.clientWidth / size.x, view.clientHeight / size.y);
    const centre = vp.viewportToImageCoordinates(vp.getCenter(true));
    return [side, {zoom: vp.viewportToImageZoom(vp.getZoom(true)) / fit,
                   u: centre.x / size.x, v: centre.y / size.y,
                   wide: size.x * fit, high: size.y * fit,
                   front: view.querySelector('.pane-img').hidden
                          && getComputedStyle(view.querySelector('.pane-osd')).opacity === '1'}];
}))"""


def drag_from_centre(page, selector: str, dx: float, dy: float) -> None:
    """Press the mouse at the centre of ``selector``'s box and drag it by (dx, dy) CSS px."""
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def page_clock_s(page) -> float:
    """The page's clock now, in seconds since the epoch (what :func:`press_at` takes)."""
    return page.evaluate("performance.timeOrigin + performance.now()") / 1000


def press_at(page, key: str, at_s: float) -> None:
    """Press the digit ``key`` as if at ``at_s`` (seconds since the epoch): the key events'
    ``timeStamp`` says when it was pressed, however late a loaded renderer handles them
    (Chromium's ``Input.dispatchKeyEvent`` takes the time). A double tap is then two presses
    ``at_s`` apart, not two presses a busy test process sent some time apart."""
    assert key.isdigit() and len(key) == 1, key
    session = page.context.new_cdp_session(page)
    try:
        common = {"key": key, "code": f"Digit{key}", "windowsVirtualKeyCode": ord(key),
                  "timestamp": at_s}
        session.send("Input.dispatchKeyEvent",
                     {"type": "keyDown", "text": key, "unmodifiedText": key, **common})
        session.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})
    finally:
        session.detach()


def shown_lease(page, *, other_than: str | None = None) -> str:
    """Wait until a pair is fully shown (and, if given, a different one); return its lease."""
    page.wait_for_function(
        "(old) => { const app = document.querySelector('#rate-app');"
        " return app.dataset.ready === '1' && app.dataset.lease && app.dataset.lease !== old; }",
        arg=other_than or "",
    )
    return page.get_attribute("#rate-app", "data-lease")


def dismiss_instructions(page) -> None:
    """Close the instructions sheet a first visit opens (keys do not vote while it is open)."""
    page.click("#rate-instructions-ok")
    page.wait_for_function("() => !document.querySelector('#rate-instructions').open")


def outbox(page) -> list[dict]:
    return page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.endsWith('.outbox'))"
        ".flatMap(k => JSON.parse(localStorage.getItem(k)))")


def wait_outbox_empty(page, timeout_s: float = 15) -> None:
    page.wait_for_function(
        "() => Object.keys(localStorage).filter(k => k.endsWith('.outbox'))"
        ".every(k => JSON.parse(localStorage.getItem(k)).length === 0)",
        timeout=timeout_s * 1000)


def images_loaded(page) -> dict[str, int]:
    """naturalWidth of every visible plain image pane (0 means the file did not load)."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.pane:not([hidden])')]"
        ".filter(p => p.dataset.kind === 'img')"
        ".map(p => [p.dataset.side, p.querySelector('.pane-img').naturalWidth]))")


def until(predicate, timeout_s: float = 10, step_s: float = 0.05):
    """Poll the database (or anything) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step_s)


class HeldRequests:
    """The page's requests for ``pattern`` held unanswered (a slow server) until ``release``.

    Playwright answers them only when the test calls into it, so wait with ``wait_for`` (which
    lets the page run), never with ``time.sleep``.
    """

    def __init__(self, page, pattern: str, *, where=lambda request: True):
        self.page, self.pattern, self.where = page, pattern, where
        self.routes: list = []
        page.route(pattern, self._hold)

    def _hold(self, route) -> None:
        if self.where(route.request):
            self.routes.append(route)
        else:
            route.continue_()

    def wait_for(self, count: int = 1, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.routes) < count:
            assert time.monotonic() < deadline, f"{len(self.routes)} of {count} requests held"
            self.page.wait_for_timeout(50)

    def release(self) -> None:
        self.where = lambda request: False  # from now on, straight through
        for route in self.routes:
            route.continue_()
        self.routes = []
        self.page.unroute(self.pattern, self._hold)


def is_image_file(request) -> bool:
    """An image the page shows (media or tiles), not one of the page's own static files."""
    return request.resource_type == "image" and "/static/" not in request.url


def open_with_first_pair_held(context, world):
    """Sign ``world``'s annotator in on the rating page with every image file held: returns
    the page, showing its loading state with both images of the first pair asked for and
    neither answered, and the ``HeldRequests`` that release them."""
    from tests.browser.conftest import login

    page = context.new_page()
    held = HeldRequests(page, "**/*", where=is_image_file)
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/",
          wait_until="domcontentloaded")
    held.wait_for(2)
    page.wait_for_selector("#rate-app.loading")  # greyed out and a spinner, not a blank pair
    return page, held


def task_image_urls(lease: Lease) -> list[str]:
    """The display URLs of a lease's images: a pair's two, or a best-of-K task's K in the
    lease's display order."""
    project_id = lease.campaign.project_id  # the names are the campaign's project's
    members = {member.position: member.image.blob for member in
               TaskImage.objects.filter(task_id=lease.task_id).select_related("image__blob")}
    if members:
        return [display_url(members[position], project_id) for position in lease.order]
    return [display_url(lease.task.image_a.blob, project_id),
            display_url(lease.task.image_b.blob, project_id)]


def wait_next_prefetched(page, *, shown: str, timeout_s: float = 15) -> str:
    """Wait until the page holds the task behind ``shown`` (its lease taken on the server) and
    has loaded all of its images, as before a vote that must not need the network; return
    that lease. The page asks for it only once the task on screen is drawn. Votes cast before
    must have left the outbox (their leases are then no longer active)."""
    lease = until(lambda: Lease.objects.filter(status=LeaseStatus.ACTIVE).exclude(pk=shown)
                  .select_related("task__image_a__blob", "task__image_b__blob").first(),
                  timeout_s=timeout_s)
    assert lease is not None, "the page never leased the task behind the one it shows"
    page.wait_for_function(
        "(urls) => urls.every((url) => performance.getEntriesByType('resource')"
        ".some((entry) => entry.name.endsWith(url) && entry.responseEnd > 0))",
        arg=task_image_urls(lease), timeout=timeout_s * 1000)
    return str(lease.pk)


STATUS = "() => document.querySelector('#rate-status').textContent"

# Runs in every page before its own scripts (watch_errors): every text the status line is
# given, in order, in ``window.__said``. The line clears itself 4 s after a message; a test
# that polled the line itself could miss a message on a loaded machine.
RECORD_SAID = """
window.__said = [];
new MutationObserver((records) => {
  for (const record of records) {
    const target = record.target.nodeType === Node.ELEMENT_NODE
      ? record.target : record.target.parentElement;
    if (!target || !target.closest("#rate-status")) continue;
    const text = document.querySelector("#rate-status").textContent;
    if (text) window.__said.push(text);
  }
}).observe(document, { childList: true, characterData: true, subtree: true });
"""


def said_so_far(page) -> list[str]:
    """Every text the status line has said since the page loaded, in order."""
    return page.evaluate("() => window.__said")


def said(page, text: str) -> None:
    """Wait until the status line says ``text``: said after whatever the last ``said`` of this
    page waited for (a message that came and went counts)."""
    page.wait_for_function(
        """(text) => {
          const at = window.__said.indexOf(text, window.__saidFrom || 0);
          if (at < 0) return false;
          window.__saidFrom = at + 1;
          return true;
        }""", arg=text)


def script_errors(errors: list[str]) -> list[str]:
    """The errors that are not the browser's own log of a request a test dropped or the
    server refused on purpose ("Failed to load resource")."""
    return [e for e in errors if "Failed to load resource" not in e]
