// One view shared by every image pane: zoom and pan in image-relative coordinates, so two
// images of different resolutions (or a 16K tiled one next to a 1K one) show the same region.
//
// State: {cx, cy} is the image point (0..1 of width and height) at the centre of each pane;
// zoom is a multiplier over "fit" (1 = the whole image fits its pane), the same for every
// pane, so the panes stay locked on one region at any zoom. Plain images get a CSS
// transform; tiled ones drive an OpenSeadragon viewport, used as a renderer only (its own
// mouse handling is off, so every input goes through the handlers below); a tiled pane shows
// its fit picture as a plain image, with the viewer behind it, until the viewer is in front.
//
// Keys (WCAG 2.1.1): while a pane's element itself has the focus (a tab stop: the rating
// page's template gives it tabindex 0), + or = and - zoom by one step, the arrows pan, 0 or Home
// goes back to fit. They are that pane's alone: the page's own handler on the document (where
// the arrows vote) never sees them. A mouse press does not focus the pane, so after a drag the
// arrows still answer; the tile viewers are no tab stop and have no keys of their own.
//
// Zoom limits are in image pixels, not in multiples of fit (a 15360 px image fits a 700 px
// pane at 1:22, so "64x fit" was only 2.9x native): from fit up to MAX_NATIVE screen pixels
// per image pixel of the finest image shown. 1:1 (native()) is always reachable, even when it
// is smaller than fit (a small image in a large pane).

const MAX_FIT_ZOOM = 64; // only while no pane is registered (between pairs)
const MAX_NATIVE = 16; // screen pixels per image pixel at the deepest zoom
const WHEEL_SPEED = 0.0015;
const KEY_ZOOM = Math.SQRT2; // one press of + or -: two make 2x
const KEY_PAN = 0.1; // one arrow press: a tenth of the pane (Shift: half)

/** Screen (device) pixels per image pixel, as shown next to the zoom controls:
 * "1:1 (100%)", "2:1 (200%)", "1:2.5 (40%)". */
export function formatScale(scale) {
  const round = (value) => (value >= 10 ? Math.round(value) : Math.round(value * 10) / 10);
  const ratio = scale >= 1 ? `${round(scale)}:1` : `1:${round(1 / scale)}`;
  const percent = scale >= 0.1 ? Math.round(scale * 100) : Math.round(scale * 1000) / 10;
  // Near 1 the ratio rounds to "1:1": said only when it is (97% is not 1:1).
  if (ratio === "1:1" && percent !== 100) return `${percent}%`;
  return `${ratio} (${percent}%)`;
}

export class SyncedView extends EventTarget {
  constructor() {
    super();
    this.panes = [];
    this.state = { cx: 0.5, cy: 0.5, zoom: 1 };
    this.pointers = new Map(); // active pointer id -> {x, y}
    // Pane sizes as the ResizeObserver last saw them, so apply() never forces a synchronous
    // layout in the middle of the page's DOM writes (3 ms of every keypress before).
    this.sizes = new Map();
    this.standby = new Map(); // pane element -> {img, width, height}: the next image, at fit
    this.placed = new WeakMap(); // img -> the style last written (no rewrite when unchanged)
    this.resizer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        this.sizes.set(entry.target, [entry.target.clientWidth, entry.target.clientHeight]);
      }
      this.apply();
      for (const [el, next] of this.standby) this.placeAtFit(el, next);
      this.changed();
    });
  }

  /**
   * Keep `img` (width x height image pixels), the image `el` shows next, placed as it will be
   * shown: at fit. Swapping it in then changes no geometry, so nothing is laid out or
   * rasterised again on the keypress. `img` null forgets it.
   */
  setStandby(el, img, width, height) {
    if (!img) {
      this.standby.delete(el);
      return;
    }
    const next = { img, width, height };
    this.standby.set(el, next);
    this.resizer.observe(el);
    this.placeAtFit(el, next);
  }

  placeAtFit(el, { img, width, height }) {
    const g = this.geometry({ el, width, height }, { cx: 0.5, cy: 0.5, zoom: 1 });
    this.place(img, g, 1);
  }

  /** The zoom (over fit) at which the finest image shown is at one screen pixel per image
   * pixel; null without panes. */
  nativeZoom() {
    const scales = this.panes.map((pane) => this.geometry(pane).fit * window.devicePixelRatio);
    return scales.length ? 1 / Math.min(...scales) : null;
  }

  /** The highest zoom over fit for the panes shown (see the limits above). */
  maxZoom() {
    const native = this.nativeZoom();
    return native === null ? MAX_FIT_ZOOM : native * MAX_NATIVE;
  }

  /** Screen pixels per image pixel of each pane now, in pane order. */
  scales() {
    const { zoom } = this.state;
    return this.panes.map((pane) => this.geometry(pane).fit * zoom * window.devicePixelRatio);
  }

  /** One key to 1:1 of the finest image (the one with the most pixels across). */
  native() {
    const zoom = this.nativeZoom();
    if (zoom !== null) this.set({ ...this.state, zoom }, zoom);
  }

  changed() {
    this.dispatchEvent(new CustomEvent("change", { detail: this.state }));
  }

  /** Register a pane; `pane.el` receives the input, `pane.width/height` are image pixels. */
  add(pane) {
    this.panes.push(pane);
    this.resizer.observe(pane.el);
    if (!pane.el.dataset.zoomBound) {
      pane.el.dataset.zoomBound = "1";
      this.bind(pane.el);
    }
    this.apply();
    this.changed(); // the pixel scale shown depends on the panes' images
  }

  /** Forget one pane (reloaded after an error); the others keep their view. */
  remove(el) {
    this.panes = this.panes.filter((pane) => pane.el !== el);
  }

  /** Forget the panes of the previous pair (elements are reused, listeners stay bound). */
  clear() {
    this.panes = []; // the elements stay observed: they are reused, and so is their size
    this.pointers.clear();
  }

  reset() {
    this.set({ cx: 0.5, cy: 0.5, zoom: 1 });
  }

  /** Go to `next` ({cx, cy, zoom}), within the limits; `lowest` lets the zoom go below fit. */
  set(next, lowest = 1) {
    const zoom = Math.min(this.maxZoom(), Math.max(Math.min(1, lowest), next.zoom));
    // At fit or below, centre the image; otherwise keep the centre somewhere on the image.
    const clamp = (v) => (zoom <= 1 ? 0.5 : Math.min(1, Math.max(0, v)));
    this.state = { cx: clamp(next.cx), cy: clamp(next.cy), zoom };
    this.apply();
    this.changed();
  }

  paneFor(el) {
    return this.panes.find((pane) => pane.el === el);
  }

  /** Pixel geometry of a pane at `state` (default: the current one). */
  geometry(pane, state = this.state) {
    // A size of 0 was seen while the pane was hidden (the stage behind "preparing images"):
    // read the real one, or a viewer would ask for tiles for a 1-pixel pane first.
    const size = this.sizes.get(pane.el);
    const pw = (size && size[0]) || pane.el.clientWidth || 1;
    const ph = (size && size[1]) || pane.el.clientHeight || 1;
    const fit = Math.min(pw / pane.width, ph / pane.height);
    const dw = pane.width * fit;
    const dh = pane.height * fit;
    const { cx, cy, zoom } = state;
    return { pw, ph, fit, dw, dh, tx: pw / 2 - cx * dw * zoom, ty: ph / 2 - cy * dh * zoom };
  }

  /** Write a plain image's box and transform, unless they are what was last written. */
  place(img, g, zoom) {
    // Past 4 screen pixels per image pixel, show pixels as they are, not smoothed.
    const rendering = g.fit * zoom >= 4 ? "pixelated" : "auto";
    const key = `${g.dw} ${g.dh} ${g.tx} ${g.ty} ${zoom} ${rendering}`;
    if (this.placed.get(img) === key) return;
    this.placed.set(img, key);
    const style = img.style;
    style.width = `${g.dw}px`;
    style.height = `${g.dh}px`;
    style.transform = `translate(${g.tx}px, ${g.ty}px) scale(${zoom})`;
    style.imageRendering = rendering;
  }

  apply() {
    const { cx, cy, zoom } = this.state;
    for (const pane of this.panes) {
      const g = this.geometry(pane);
      // Both for a tiled pane whose fit picture is still in front of its viewer (stage.js).
      const vp = pane.viewer && pane.viewer.viewport;
      if (vp) {
        this.quiet(pane.viewer);
        // OSD viewport units: the image is 1 wide and height/width tall; zoom 1 = image width
        // equals the container width.
        const OSD = window.OpenSeadragon;
        vp.zoomTo((g.dw * zoom) / g.pw, null, true);
        vp.panTo(new OSD.Point(cx, (cy * pane.height) / pane.width), true);
      }
      if (pane.img) this.place(pane.img, g, zoom);
    }
  }

  /** Zoom by `factor` keeping the image point under (px, py) of `pane` where it is, or
   * moving it to (toX, toY). */
  zoomAt(pane, px, py, factor, toX = px, toY = py) {
    const g = this.geometry(pane);
    const { zoom } = this.state;
    // Below fit only when 1:1 put it there, and then not further out.
    const low = Math.min(1, zoom);
    const next = Math.min(this.maxZoom(), Math.max(low, zoom * factor));
    const u = (px - g.tx) / (g.dw * zoom);
    const v = (py - g.ty) / (g.dh * zoom);
    this.set({
      cx: u - (toX - g.pw / 2) / (g.dw * next),
      cy: v - (toY - g.ph / 2) / (g.dh * next),
      zoom: next,
    }, low);
  }

  panBy(pane, dx, dy) {
    const g = this.geometry(pane);
    const { cx, cy, zoom } = this.state;
    this.set({ cx: cx - dx / (g.dw * zoom), cy: cy - dy / (g.dh * zoom), zoom }, zoom);
  }

  /** An OpenSeadragon viewer draws, nothing more: its canvas is no tab stop (it is focusable
   * by default) and its keys are off (they would pan, flip or rotate its image alone). */
  quiet(viewer) {
    if (viewer.keyboardNavEnabled) viewer.setKeyboardNavEnabled(false);
    if (viewer.canvas && viewer.canvas.tabIndex !== -1) viewer.canvas.tabIndex = -1;
  }

  /** What a key does while `pane`'s element has the focus; false: not one of its keys. */
  key(pane, event) {
    const g = this.geometry(pane);
    const step = event.shiftKey ? 0.5 : KEY_PAN;
    const pan = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (event.key === "+" || event.key === "=") this.zoomAt(pane, g.pw / 2, g.ph / 2, KEY_ZOOM);
    else if (event.key === "-") this.zoomAt(pane, g.pw / 2, g.ph / 2, 1 / KEY_ZOOM);
    else if (event.key === "0" || event.key === "Home") this.reset();
    // The arrow shows what lies that way: the image moves the other way.
    else if (pan[event.key]) {
      const [x, y] = pan[event.key];
      this.panBy(pane, x * step * g.pw, y * step * g.ph);
    } else return false;
    return true;
  }

  bind(el) {
    const local = (event) => {
      const rect = el.getBoundingClientRect();
      return { x: event.clientX - rect.left, y: event.clientY - rect.top };
    };
    el.addEventListener("wheel", (event) => {
      const pane = this.paneFor(el);
      if (!pane) return;
      event.preventDefault();
      const lines = event.deltaMode === 1 ? 16 : 1;
      // ctrlKey: a trackpad pinch arrives as ctrl+wheel with small deltas.
      const speed = event.ctrlKey ? WHEEL_SPEED * 6 : WHEEL_SPEED;
      const { x, y } = local(event);
      this.zoomAt(pane, x, y, Math.exp(-event.deltaY * lines * speed));
    }, { passive: false });

    el.addEventListener("pointerdown", (event) => {
      if (!this.paneFor(el) || event.button > 0) return;
      el.setPointerCapture(event.pointerId);
      this.pointers.set(event.pointerId, local(event));
      el.classList.add("dragging");
    });
    el.addEventListener("pointermove", (event) => {
      const pane = this.paneFor(el);
      const last = this.pointers.get(event.pointerId);
      if (!pane || !last) return;
      const now = local(event);
      if (this.pointers.size === 1) {
        this.panBy(pane, now.x - last.x, now.y - last.y);
      } else if (this.pointers.size === 2) {
        // Pinch: zoom by the change in finger distance, and the image point under the
        // fingers' midpoint follows it. Each event moves one finger, and so the midpoint:
        // zooming around the new midpoint alone would slide the image from under them.
        const other = [...this.pointers].find(([id]) => id !== event.pointerId)[1];
        const before = Math.hypot(last.x - other.x, last.y - other.y) || 1;
        const after = Math.hypot(now.x - other.x, now.y - other.y) || 1;
        this.zoomAt(pane, (last.x + other.x) / 2, (last.y + other.y) / 2, after / before,
                    (now.x + other.x) / 2, (now.y + other.y) / 2);
      }
      this.pointers.set(event.pointerId, now);
    });
    const end = (event) => {
      this.pointers.delete(event.pointerId);
      if (this.pointers.size === 0) el.classList.remove("dragging");
    };
    el.addEventListener("pointerup", end);
    el.addEventListener("pointercancel", end);
    el.addEventListener("dblclick", () => this.reset());

    el.addEventListener("keydown", (event) => {
      // The pane's own focus only (not a control inside it), and no browser shortcut (Ctrl +).
      if (event.target !== el || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.isComposing) return;
      const pane = this.paneFor(el);
      // Between two tasks there is nothing to move, but the keys are still the pane's.
      const handled = pane ? this.key(pane, event) : ["+", "=", "-", "0", "Home", "ArrowLeft",
        "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key);
      if (!handled) return; // the page's keys (votes, skip, undo, N for 1:1) go on to it
      event.preventDefault();
      event.stopPropagation();
    });
    // A press of the mouse (or a finger) does not focus the pane: the pane would then keep the
    // arrows from the page, whose arrows vote. As over any part of the page that is no
    // control, it takes the focus from whatever had it, unless that is this pane.
    el.addEventListener("mousedown", (event) => {
      event.preventDefault();
      const focused = document.activeElement;
      if (focused && focused !== el && focused !== document.body && !el.contains(focused)) {
        focused.blur();
      }
    });
  }
}
