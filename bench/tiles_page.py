"""The rating page with 16K images whose tiles exist: time to the first drawn pair with an
empty browser cache, bytes moved at fit per pair, bytes moved by a scripted deep-zoom session.

Part of ``bench/tiles.py`` (its ``--parts page``); the worker-side figures are there. Set-up as
``bench/rating_page.py`` does it: a scratch PostgreSQL database, migrations, collected static
files, gunicorn with the project's config (DEBUG off, media served by Django's access-checked
views), headless Debian Chromium through Playwright (software compositing, as tests/browser).

Seeding, per format (JPEG, PNG, WebP): one campaign of two runs answering ``pairs`` prompts, so
``pairs`` pairs of distinct images. The images are the bench's 15360 x 8640 pictures; the
``2 x pairs`` images of one format differ in one metadata field only (a JPEG comment, a PNG
text chunk, a WebP XMP chunk): each is its own blob (content hash), with its own derivative,
tiles and URLs, so nothing is shared between panes or pairs, while making them costs no
16K encode. Then what the worker does after an import: display derivatives and tile pyramids
(``blob_build_tiles``), before the campaign is opened: "tiles present".

Measured in the page (an init script that only listens):

- ``first_drawn_ms``: navigation start (``performance.now()`` origin) to the moment the page
  flags the pair drawn (``#rate-app[data-ready="1"]``, set only once both panes' tiles for
  the view are loaded and painted: static/js/rate/images.js ``tilesDrawn``, tests/browser). A
  fresh browser context each time (empty HTTP and memory caches; the session cookie comes from
  a separate sign-in context, which first asks for the page's HTML a few times so that no
  gunicorn worker serves its very first request inside the figure), the same pair (the
  annotator's lease is resumed: the page view hands the held lease back), ``repeat`` times;
  the median is the figure. The server's own caches are warm after the first load, as on a
  live server. ``first_timelines`` says where the time went (Resource Timing: HTML, the page's
  modules, the tile viewer's script, first tile asked, last tile received, the first API
  answer, descriptors asked for; ``preloaded``: pictures asked for by the HTML's preloads,
  campaigns/page/preloads.py). The first task comes in the HTML with its pyramids' geometry,
  so the first tiles should be asked for before any API request, and no descriptor at all.
- ``next_drawn_ms``: keydown of a vote to the next pair flagged drawn (the page asks for the
  next pair's fit-level tiles while the current one is rated).
- ``at_fit_kb``: bytes moved on the wire (Chrome DevTools Protocol ``encodedDataLength``:
  headers and bodies) for a pair's tiles (and descriptors, if any) up to its drawing at fit,
  per pair, counted by the pair's images (tiles fetched ahead, while the previous pair was
  rated, count for their own pair); the page and its scripts are counted apart (``page_kb``).
- ``deep_zoom_kb``: tile bytes of a scripted session on the last pair: 1:1 at the centre
  (``n``), wheel zoom to the deepest level at three places, four drags, 1:1 again, back to fit
  (``0``), each step followed by a quiet network (no tile in flight for 0.5 s).

Side by side (``whole_pair_kb``): the two image files of the pair, which is what the page moved
before tiles (it loaded each image whole); and the issue's figures before this work
(``ISSUE_BEFORE``: first drawn 10.4 s, a deep-zoom session 20-66 MB of whole files).

Variants (bench/tiles.py ``--page-baseline REV``, ``--page-variant NAME=REV_OR_FOLDER``): the
same first-drawn loads against one more gunicorn per variant, running the code of ``REV``
(``git archive``) or of a folder (a copy of the tree with one change, for a lever measured
side by side without a switch in the product), on the same database and media, each on its
own loopback address (its own session), in turn with the current code's within each attempt
(the first of the turn rotating, so that none is always first), so all see the same load;
``variant_first_drawn_ms`` per name and the median ratios. Only for code with the current
code's migrations (the seeding is the current code's).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.db import drop_database, fresh_database  # noqa: E402
from bench.rating_page import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    USERNAME,
)

PY = sys.executable
VIEWPORT = {"width": 1440, "height": 900}  # the issue's laptop screen
ISSUE_BEFORE = {"first_drawn_ms": 10400, "deep_zoom_kb_whole_files": [20 * 1024, 66 * 1024],
                "deep_zoom_kb_tiles_as_reported": 2.9 * 1024}
FIRST_DRAWN_TARGET_MS = 500
AT_FIT_TARGET_KB = 1024
QUIET_S = 0.5
CURRENT = "current"  # the working tree's code, beside the variants

SEED_SCRIPT = r"""
import json, sys
import django
django.setup()
from bench.tiles_page import variant
from django.contrib.auth import get_user_model
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_make_displays
from evalhub.blobs.tiles import blob_build_tiles, built_q, large_q
from evalhub.campaigns.services import campaign_create
from evalhub.projects.models import Membership, Role
from evalhub.projects.services import project_create
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, RunSource

files, pairs, width, height, username, password = (json.loads(sys.argv[1]), int(sys.argv[2]),
    int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])

User = get_user_model()
owner = User.objects.create(username="owner")
annotator = User.objects.create(username=username)
annotator.set_password(password)
annotator.save()
project = project_create(name="tiles page bench", owner=owner)
Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
seeded = {}
for fmt, path in files.items():
    base = open(path, "rb").read()
    prompt_set = PromptSet.objects.create(project=project, name=fmt)
    Prompt.objects.bulk_create(Prompt(prompt_set=prompt_set, position=i,
                                      text=f"a wide landscape, {fmt} variant {i}")
                               for i in range(pairs))
    model = GenModel.objects.create(project=project, name=f"m-{fmt}")
    runs, sizes = [], []
    for r in range(2):
        ckpt = Checkpoint.objects.create(model=model, name=f"c{r}", training_step=r)
        run = GenerationRun.objects.create(project=project, checkpoint=ckpt,
                                           prompt_set=prompt_set, name=f"{fmt}-run{r}",
                                           source=RunSource.IMPORTED)
        for p in prompt_set.prompts.all():
            data = variant(base, fmt, p.position * 2 + r, width, height)
            sizes.append(len(data))
            Image.objects.create(run=run, prompt=p, seed=0,
                                 blob=blob_store_bytes(data, name=f"{fmt}-{r}-{p.pk}.{fmt}"))
        runs.append(run)
    seeded[fmt] = {"runs": runs, "file_bytes": sizes}
# What the worker does after an import, before anyone opens a page: derivatives and tiles.
blobs_make_displays(list(ImageBlob.objects.values_list("id", flat=True)))
for blob in ImageBlob.objects.filter(large_q()).exclude(built_q()):
    blob_build_tiles(blob)
out = {}
for fmt, made in seeded.items():
    campaign = campaign_create(project=project, name=f"tiles {fmt}", runs=made["runs"],
                               judgments_per_pair=1, lease_seconds=3600, build_now=True)
    out[fmt] = {"campaign": campaign.pk, "tasks": campaign.tasks.count(),
                "file_bytes": made["file_bytes"]}
print(json.dumps(out))
"""

def variant(data: bytes, fmt: str, n: int, width: int, height: int) -> bytes:
    """The same pixels under another content hash: ``data`` (a ``fmt`` file of ``width x
    height``) with one metadata field that says ``n``: a JPEG comment segment after SOI, a PNG
    ``tEXt`` chunk after IHDR, a WebP ``XMP `` chunk (the file turned into the extended format,
    VP8X with the XMP flag, when it was a simple one)."""
    note = f"bench variant {n}".encode()
    if fmt == "jpeg":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note + data[2:]
    if fmt == "png":  # the 8-byte signature and the 25-byte IHDR chunk come first
        body = b"Comment\x00" + note
        chunk = (struct.pack(">I", len(body)) + b"tEXt" + body
                 + struct.pack(">I", zlib.crc32(b"tEXt" + body)))
        return data[:33] + chunk + data[33:]
    chunks = data[12:]
    if chunks[:4] == b"VP8X":
        chunks = chunks[:8] + bytes([chunks[8] | 0x04]) + chunks[9:]
    else:
        flags = bytes([0x04, 0, 0, 0])
        size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks = b"VP8X" + struct.pack("<I", 10) + flags + size + chunks
    chunks += b"XMP " + struct.pack("<I", len(note)) + note + b"\x00" * (len(note) % 2)
    return b"RIFF" + struct.pack("<I", len(chunks) + 4) + b"WEBP" + chunks


# Listens only: when the page flags a pair drawn, and when a key went down.
PROBE_SCRIPT = r"""
(() => {
  const bench = { ready: [], keys: [] };
  window.__tilesBench = bench;
  window.addEventListener("keydown", (event) => bench.keys.push(event.timeStamp), true);
  new MutationObserver((records) => {
    for (const record of records) {
      const el = record.target;
      if (el.id === "rate-app" && el.dataset.ready === "1") {
        bench.ready.push({ lease: el.dataset.lease || "", at: performance.now() });
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
})();
"""


# Where the first load's time went (Resource Timing, ms after navigation start): the page's
# HTML, its modules, the tile viewer's script, the first tile asked for and the last tile
# received before the pair was flagged drawn, the first API answer, descriptors asked for.
TIMELINE_SCRIPT = r"""() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const entries = performance.getEntriesByType("resource");
  const pick = (test) => entries.filter((e) => test(e.name));
  const end = (list) => (list.length
    ? Math.round(Math.max(...list.map((e) => e.responseEnd))) : null);
  const start = (list) => (list.length
    ? Math.round(Math.min(...list.map((e) => e.startTime))) : null);
  const tiles = pick((url) => url.includes("/rate/tiles/") && url.includes("_files/"));
  return {
    html_ms: nav ? Math.round(nav.responseEnd) : null,
    dom_ready_ms: nav ? Math.round(nav.domContentLoadedEventEnd) : null,
    modules_ms: end(pick((url) => url.includes("/static/js/rate"))),
    viewer_script_ms: end(pick((url) => url.includes("openseadragon"))),
    first_tile_asked_ms: start(tiles),
    last_tile_ms: end(tiles),
    tiles: tiles.length,
    whole_levels: tiles.filter((e) => e.name.includes("/whole.")).length,
    preloaded: tiles.filter((e) => e.initiatorType === "link").length,
    first_tile_in_ms: tiles.length ? Math.round(Math.min(...tiles.map((e) => e.responseEnd)))
      : null,
    first_api_ms: end(pick((url) => url.includes("/api/")).slice(0, 1)),
    descriptors: pick((url) => url.includes(".dzi")).length,
  };
}"""


@dataclass
class Wire:
    """Requests seen through the DevTools protocol: URL, bytes on the wire, done or not."""

    requests: dict[str, dict] = field(default_factory=dict)
    last_event: float = 0.0

    def attach(self, cdp) -> None:
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self.sent)
        cdp.on("Network.loadingFinished", self.finished)
        cdp.on("Network.loadingFailed", self.failed)

    def sent(self, event: dict) -> None:
        self.last_event = time.monotonic()
        self.requests[event["requestId"]] = {"url": event["request"]["url"], "bytes": 0,
                                             "done": False}

    def finished(self, event: dict) -> None:
        self.last_event = time.monotonic()
        if request := self.requests.get(event["requestId"]):
            request.update(bytes=event["encodedDataLength"], done=True)

    def failed(self, event: dict) -> None:
        self.last_event = time.monotonic()
        if request := self.requests.get(event["requestId"]):
            request.update(done=True, failed=True)

    def totals(self) -> dict[str, float]:
        """Bytes so far: tiles and descriptors, and everything else (page, scripts, API)."""
        tiles = self.tile_bytes()
        total = sum(r["bytes"] for r in self.requests.values())
        count = sum("/rate/tiles/" in r["url"] for r in self.requests.values())
        return {"tiles": tiles, "other": total - tiles, "tile_requests": count}

    def tile_bytes(self, tokens: set[str] | None = None) -> int:
        """Bytes of tiles and descriptors so far, of the images ``tokens`` (default: all)."""
        return sum(r["bytes"] for r in self.requests.values() if "/rate/tiles/" in r["url"]
                   and (tokens is None or any(token in r["url"] for token in tokens)))

    def pending(self) -> int:
        return sum(not r["done"] for r in self.requests.values())


def settle(page, wire: Wire, timeout_s: float) -> None:
    """Until no request is in flight and none started or ended for ``QUIET_S``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        page.wait_for_timeout(100)  # lets Playwright deliver the protocol's events
        if not wire.pending() and time.monotonic() - wire.last_event >= QUIET_S:
            return
    raise TimeoutError(f"requests still in flight after {timeout_s} s: {wire.pending()}")


@dataclass
class FormatResult:
    format: str
    pairs: int
    whole_pair_kb: float
    first_drawn_ms: list[float]
    first_page_kb: list[float]
    first_timelines: list[dict]  # TIMELINE_SCRIPT at each first drawn pair
    at_fit_kb: list[float]
    next_drawn_ms: list[float]
    deep_zoom_kb: float | None
    deep_zoom_tile_requests: int | None
    deepest_zoom: str | None
    errors: list[str]
    # name -> first drawn ms and timelines of each variant server (module doc)
    variant_first_drawn_ms: dict[str, list[float]] = field(default_factory=dict)
    variant_first_timelines: dict[str, list[dict]] = field(default_factory=dict)


# The display tokens of the images on screen (their tile viewers' sources).
SHOWN_TOKENS = r"""() => [...document.querySelectorAll('.pane:not([hidden]) .osd-holder')]
  .map((el) => OpenSeadragon.getViewer(el).world.getItemAt(0).source.tilesUrl
    .match(/tiles\/([0-9a-f]{64})/)[1])"""


def wait_drawn(page, count: int, timeout_s: float) -> dict:
    """The ``count``-th drawn flag of this document (1-based), once it is there."""
    page.wait_for_function("(n) => window.__tilesBench.ready.length >= n", arg=count,
                           timeout=timeout_s * 1000)
    return page.evaluate("(n) => window.__tilesBench.ready[n - 1]", count)


def deep_zoom(page, wire: Wire, timeout_s: float) -> tuple[float, int, str]:
    """The scripted session (module doc); returns tile KB, tile requests, deepest zoom."""
    before = wire.totals()
    box = page.locator('.pane[data-side="left"] .pane-view').bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

    deepest = ""
    page.keyboard.press("n")
    settle(page, wire, timeout_s)
    for fx, fy in ((0.3, 0.3), (0.7, 0.6), (0.45, 0.75)):
        page.keyboard.press("0")
        settle(page, wire, timeout_s)
        page.mouse.move(*at(fx, fy))
        previous = None
        for _ in range(16):  # until the zoom stops growing (its limit)
            page.mouse.wheel(0, -400)
            zoom = page.evaluate("() => document.querySelector('#zoom-level').dataset.zoom")
            if zoom == previous:
                break
            previous = zoom
        settle(page, wire, timeout_s)
        deepest = page.evaluate("() => document.querySelector('#zoom-level').textContent")
    for dx, dy in ((-0.3, 0.0), (0.0, -0.3), (0.3, 0.0), (0.0, 0.3)):
        start = at(0.5, 0.5)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(start[0] + dx * box["width"], start[1] + dy * box["height"], steps=8)
        page.mouse.up()
        settle(page, wire, timeout_s)
    page.keyboard.press("n")
    settle(page, wire, timeout_s)
    page.keyboard.press("0")
    settle(page, wire, timeout_s)
    after = wire.totals()
    return ((after["tiles"] - before["tiles"]) / 1024,
            after["tile_requests"] - before["tile_requests"], deepest)


def first_drawn(browser, base: str, state: dict, rate: str, timeout_s: float,
                errors: list[str]) -> tuple[float, dict]:
    """One first load in a fresh context: ms to the drawn flag, and its timeline."""
    context = browser.new_context(viewport=VIEWPORT, base_url=base, storage_state=state)
    try:
        context.add_init_script(PROBE_SCRIPT)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{base} page error: {error}"))
        page.goto(rate)
        drawn = wait_drawn(page, 1, timeout_s)
        return round(drawn["at"], 1), page.evaluate(TIMELINE_SCRIPT)
    finally:
        context.close()


def turn(names: list[str], attempt: int, last: bool) -> list[str]:
    """The order of the servers in one attempt: rotated by the attempt, so that none is always
    first; the current code's last in the last attempt (it then votes, moving the lease)."""
    order = names[attempt % len(names):] + names[:attempt % len(names)]
    if last:
        order.remove(CURRENT)
        order.append(CURRENT)
    return order


def measure_format(browser, base: str, state: dict, fmt: str, seeded: dict, repeat: int,
                   timeout_s: float, variants: dict[str, tuple[str, dict]] | None = None
                   ) -> FormatResult:
    """First drawn pair ``repeat`` times in fresh contexts, in turn with one load from each
    variant server (``variants``: name -> its base URL and signed-in state; module doc); the
    current code's last load then votes through the campaign (at-fit bytes and drawing per
    pair) and zooms into the last pair."""
    variants = variants or {}
    rate = f"/rate/{seeded['campaign']}/"
    sizes = seeded["file_bytes"]  # run 0's images, then run 1's
    pairs = seeded["tasks"]
    whole = statistics.median(a + b for a, b in zip(sizes[:pairs], sizes[pairs:], strict=True))
    result = FormatResult(format=fmt, pairs=pairs, whole_pair_kb=round(whole / 1024, 1),
                          first_drawn_ms=[], first_page_kb=[], first_timelines=[],
                          at_fit_kb=[], next_drawn_ms=[],
                          deep_zoom_kb=None, deep_zoom_tile_requests=None, deepest_zoom=None,
                          errors=[])
    for name in variants:
        result.variant_first_drawn_ms[name] = []
        result.variant_first_timelines[name] = []
    runs = [(attempt, name) for attempt in range(repeat)
            for name in turn([CURRENT, *variants], attempt, attempt == repeat - 1)]
    for attempt, name in runs:
        if name != CURRENT:
            at, timeline = first_drawn(browser, *variants[name], rate, timeout_s, result.errors)
            result.variant_first_drawn_ms[name].append(at)
            result.variant_first_timelines[name].append(timeline)
            continue
        context = browser.new_context(viewport=VIEWPORT, base_url=base, storage_state=state)
        try:
            context.add_init_script(PROBE_SCRIPT)
            page = context.new_page()
            page.on("pageerror", lambda error: result.errors.append(f"page error: {error}"))
            page.on("console", lambda message: result.errors.append(
                f"console: {message.text}") if message.type == "error" else None)
            wire = Wire()
            wire.attach(context.new_cdp_session(page))
            page.goto(rate)
            drawn = wait_drawn(page, 1, timeout_s)
            timeline = page.evaluate(TIMELINE_SCRIPT)
            settle(page, wire, timeout_s)
            totals = wire.totals()
            result.first_drawn_ms.append(round(drawn["at"], 1))
            result.first_timelines.append(timeline)
            result.first_page_kb.append(round(totals["other"] / 1024, 1))
            if attempt < repeat - 1:
                continue
            at_fit = [wire.tile_bytes(set(page.evaluate(SHOWN_TOKENS)))]
            lease = drawn["lease"]
            for shown in range(2, pairs + 1):
                page.keyboard.press("1")
                drawn = wait_drawn(page, shown, timeout_s)
                if drawn["lease"] == lease:
                    result.errors.append(f"pair {shown}: drawn flag for the previous lease")
                lease = drawn["lease"]
                key = page.evaluate("() => window.__tilesBench.keys.at(-1)")
                result.next_drawn_ms.append(round(drawn["at"] - key, 1))
                settle(page, wire, timeout_s)
                at_fit.append(wire.tile_bytes(set(page.evaluate(SHOWN_TOKENS))))
            result.at_fit_kb = [round(size / 1024, 1) for size in at_fit]
            kb, requests, deepest = deep_zoom(page, wire, timeout_s)
            result.deep_zoom_kb = round(kb, 1)
            result.deep_zoom_tile_requests = requests
            result.deepest_zoom = deepest
        finally:
            context.close()
    return result


def serve(code: Path, env: dict, host: str, port: int) -> subprocess.Popen:
    """gunicorn with ``code``'s config and code (its static files collected first)."""
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=code, env=env,
                   check=True)
    web = subprocess.Popen(
        [PY, "-m", "gunicorn", "-c", "evalhub/config/gunicorn.conf.py",
         "--bind", f"{host}:{port}", "--workers", "2", "--threads", "4",
         "--log-level", "warning"], cwd=code, env=env)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return web
        time.sleep(0.2)
    web.kill()
    raise TimeoutError("gunicorn did not start")


def sign_in(browser, base: str):
    """A context signed in as the bench's annotator on ``base``; its page."""
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    page = context.new_page()
    page.goto("/accounts/login/?next=/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page


def stop(web: subprocess.Popen | None) -> None:
    if web is None:
        return
    web.terminate()
    try:
        web.wait(30)
    except subprocess.TimeoutExpired:
        web.kill()


def run_page(files: dict[str, Path], size: tuple[int, int], *, pairs: int, repeat: int,
             database_url: str, port: int, timeout_s: float,
             variant_code: dict[str, Path] | None = None) -> list[FormatResult]:
    """Seed, serve, measure every format; the scratch database and folders are removed.
    ``variant_code``: name -> code folder, one more server each, on ``127.0.0.(2 + i)`` and
    ``port + 1 + i`` (module doc)."""
    variant_code = variant_code or {}
    hosts = {name: f"127.0.0.{2 + i}" for i, name in enumerate(variant_code)}
    from playwright.sync_api import sync_playwright

    var_dir = Path(tempfile.mkdtemp(prefix="evalhub-tilespagebench-"))
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0",
           # Its key presses come the moment a pair is drawn: no double-press guard.
           "EVALHUB_RATE_INPUT_GUARD_MS": "0",
           "SECRET_KEY": "bench-" + "x" * 50,
           "ALLOWED_HOSTS": ",".join(["127.0.0.1", *hosts.values()]),
           "EVALHUB_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media"),
           "EVALHUB_SERVE_MEDIA": "1",
           "DATABASE_CONN_MAX_AGE": "600", "DJANGO_SETTINGS_MODULE": "evalhub.config.settings",
           "LOG_LEVEL": "WARNING", "EVALHUB_RATING_THROTTLE": "100000/min"}
    web, variant_webs = None, []
    try:
        fresh_database(database_url)
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        started = time.monotonic()
        seeded = subprocess.run(
            [PY, "-c", SEED_SCRIPT, json.dumps({k: str(v) for k, v in files.items()}),
             str(pairs), str(size[0]), str(size[1]), USERNAME, PASSWORD],
            cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
        campaigns = json.loads(seeded.stdout.strip().splitlines()[-1])
        print(f"seeded {len(campaigns)} campaigns of {pairs} pairs, derivatives and tiles "
              f"built, in {time.monotonic() - started:.0f} s", flush=True)
        web = serve(ROOT, env, "127.0.0.1", port)
        base = f"http://127.0.0.1:{port}"
        variant_bases = {}
        for i, (name, code) in enumerate(variant_code.items()):
            variant_var = var_dir / f"variant-{i}"
            variant_var.mkdir()
            # Another loopback address: its own cookies, so each code signs its own session
            # in (a session one code wrote may name an authentication backend the other has
            # not got).
            variant_webs.append(serve(code, {**env, "EVALHUB_VAR_DIR": str(variant_var),
                                             "PYTHONPATH": str(code)}, hosts[name],
                                      port + 1 + i))
            variant_bases[name] = f"http://{hosts[name]}:{port + 1 + i}"
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                 headless=True)
            try:
                signing_in, page = sign_in(browser, base)
                state = signing_in.storage_state()
                signed = [(base, page)]
                variants = {}
                for name, variant_base in variant_bases.items():
                    variant_context, variant_page = sign_in(browser, variant_base)
                    variants[name] = (variant_base, variant_context.storage_state())
                    signed.append((variant_base, variant_page))
                for fmt in files:
                    # Every gunicorn worker past its first request (imports, connections):
                    # the figure is an empty browser cache, not a server just started.
                    for server, server_page in signed:
                        for _ in range(8):
                            server_page.request.get(
                                f"{server}/rate/{campaigns[fmt]['campaign']}/")
                    result = measure_format(browser, base, state, fmt, campaigns[fmt], repeat,
                                            timeout_s, variants)
                    print_result(result)
                    results.append(result)
            finally:
                browser.close()
        return results
    finally:
        stop(web)
        for variant_web in variant_webs:
            stop(variant_web)
        with contextlib.suppress(subprocess.SubprocessError):
            drop_database(database_url)
        shutil.rmtree(var_dir, ignore_errors=True)


def print_result(r: FormatResult) -> None:
    median = statistics.median
    print(f"{r.format:5} page  first drawn {median(r.first_drawn_ms):7.0f} ms "
          f"(runs {r.first_drawn_ms}; before: {ISSUE_BEFORE['first_drawn_ms']} ms)  "
          f"page and scripts {median(r.first_page_kb):.0f} KB", flush=True)
    print(f"{r.format:5} page  first load, ms after navigation start: {r.first_timelines[-1]}")
    for name, runs in r.variant_first_drawn_ms.items():
        other = median(runs)
        print(f"{r.format:5} page  {name} first drawn {other:7.0f} ms (runs {runs}, in turn "
              f"with the runs above): current / {name} {median(r.first_drawn_ms) / other:.2f}")
        print(f"{r.format:5} page  {name} first load: {r.variant_first_timelines[name][-1]}")
    if r.next_drawn_ms:
        print(f"{r.format:5} page  next pair drawn after the key: median "
              f"{median(r.next_drawn_ms):.0f} ms, max {max(r.next_drawn_ms):.0f} ms")
    print(f"{r.format:5} page  at fit per pair: {r.at_fit_kb} KB (whole files of a pair: "
          f"{r.whole_pair_kb:.0f} KB)")
    print(f"{r.format:5} page  deep zoom: {r.deep_zoom_kb} KB in {r.deep_zoom_tile_requests} "
          f"tile requests, deepest {r.deepest_zoom!r}", flush=True)
    for error in r.errors:
        print(f"{r.format:5} page  ERROR {error}")


def summary(results: list[FormatResult]) -> dict:
    """The page part of the last-line JSON, and its two targets."""
    return {
        "viewport": VIEWPORT,
        "issue_before": ISSUE_BEFORE,
        "formats": [{**asdict(r), "first_drawn_ms_median": statistics.median(r.first_drawn_ms),
                     "variant_first_drawn_ms_median": {
                         name: statistics.median(runs)
                         for name, runs in r.variant_first_drawn_ms.items()}}
                    for r in results],
        "targets": {
            "first_drawn_pair_under_500ms": bool(results) and all(
                statistics.median(r.first_drawn_ms) < FIRST_DRAWN_TARGET_MS for r in results),
            "at_fit_under_1mb_per_pair": bool(results) and all(
                r.at_fit_kb and max(r.at_fit_kb) < AT_FIT_TARGET_KB for r in results),
        },
        "errors": [f"{r.format}: {e}" for r in results for e in r.errors],
    }
