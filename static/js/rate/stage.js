// The rating page's image panes: putting a task's images on screen (a pair and its source, or
// the K images of a best-of-K task: see pairItems and gridItems), and knowing when they are
// drawn.
//
// Each plain-image pane holds two <img>: `.pane-img`, the one shown, and `.pane-next`, the
// image this side of the next pair, already loaded and decoded while the current pair is
// rated. Both are their own compositor layers (rate.css: will-change); the next one is
// transparent, and once decoded it is made nearly transparent for a few frames so that the
// compositor rasterises its tiles (rasterAhead). Chromium keeps the decoded pixels and the
// tiles of a transparent layer it has drawn (an off-screen Image() keeps neither: pixels
// nobody shows are dropped, and were decoded again after the keypress). A vote then only
// swaps which of the two is opaque: no decode, layout or raster on the key.
//
// Tiled images (over 4096 px) whose fit level is stored as one picture with at least the
// pixels the pane shows at fit (images.js fitPicture) take the plain images' path: that
// picture in the pane's <img> (prepared in `.pane-next` like a plain image), and OpenSeadragon
// opened behind it, invisible, once the pair is drawn. The viewer follows the shared zoom from
// the moment it opens; it takes the pane's place the first time the view is zoomed past fit and
// its view is drawn (until then the picture, upscaled, is on screen: never a blank, and the
// region is the same, so the switch only sharpens it). Other tiled images open in
// OpenSeadragon when shown. A pane counts as drawn once its pixels are: a plain image (or fit
// picture) decoded and a frame later on screen, a tiled one when every tile of the current
// view is loaded and drawn. There is no time limit after which a pane counts as drawn
// anyway: a pane that fails says so (Retry, Report), it is never a blank.

import { afterFrame, nextFrame } from "./frame.js";
import { fitPicture, openViewer, tileSource, tilesDrawn, warmFitTiles } from "./images.js";

/** A pair task's images by pane (`data-side` of the `.pane` figures): [side, image|null]. */
export function pairItems(task) {
  return [["source", task.source_image], ["left", task.left], ["right", task.right]];
}

/** A best-of-K task's images by pane: an edit's source (shown beside the grid, under the
 * same zoom, never picked), then slot "0".."K-1" as displayed (keys 1..K). */
export function gridItems(task) {
  return [["source", task.source_image || null],
          ...(task.images || []).map((image, slot) => [String(slot), image])];
}

export class Stage {
  /**
   * @param {Element} root the element holding the `.pane` figures
   * @param {import("./zoom.js").SyncedView} view the zoom shared by the panes
   * @param {string} osdBase where OpenSeadragon's files are
   * @param {(task: object) => Array<[string, object|null]>} items a task's images by pane
   */
  constructor(root, view, osdBase, items = pairItems) {
    this.view = view;
    this.osdBase = osdBase;
    this.items = items;
    this.showing = 0; // incremented by every show(): an older show's results are ignored
    this.panes = {};
    for (const el of root.querySelectorAll(".pane")) {
      const shown = el.querySelector(".pane-img");
      const next = shown.cloneNode(false);
      next.classList.replace("pane-img", "pane-next");
      next.alt = "";
      next.setAttribute("aria-hidden", "true");
      shown.after(next);
      this.panes[el.dataset.side] = {
        side: el.dataset.side,
        el,
        view: el.querySelector(".pane-view"),
        tiles: el.querySelector(".pane-osd"),
        error: el.querySelector(".pane-error"),
        shown,
        next,
        nextUrl: null, // what `next` holds (or is loading)
        nextLoaded: null, // Promise<boolean>: `next` decoded
        image: null, // what the pane shows now
        viewer: null,
        entry: null, // the pane as registered in the SyncedView ({el, img, viewer, ...})
        picture: false, // a tiled image shown as its fit picture (the viewer not in front yet)
        opening: null, // the image whose viewer is being opened behind its picture
        drawn: null, // Promise<boolean> of the current image
        retries: 0, // Retry pressed (or a prepared file failed): a fresh URL each time
      };
    }
  }

  /** Load and decode `task`'s plain images (and tiled images' fit pictures) into the panes'
   * `.pane-next`, placed at fit; another tiled image's tiles for the view at fit are fetched
   * (they are what it shows first). */
  prepare(task) {
    for (const [side, image] of this.items(task)) {
      const pane = this.panes[side];
      if (!pane || !image) continue;
      const picture = image.tiles ? this.fitPicture(pane, image) : null;
      if (image.tiles && !picture) {
        warmFitTiles(image, pane.view);
        continue;
      }
      const url = picture ? picture.url : image.url;
      if (pane.nextUrl === url || pane.shown.getAttribute("src") === url) continue;
      pane.nextUrl = url;
      pane.next.src = url;
      setHidden(pane.next, false); // rasterised behind (hidden after a tiled pane's switch)
      this.view.setStandby(pane.view, pane.next, image.width, image.height);
      const img = pane.next;
      pane.nextLoaded = img.decode().then(() => true, () => false);
      pane.nextLoaded.then((ok) => { if (ok && pane.next === img) rasterAhead(img); });
    }
  }

  /**
   * Show `task`'s images. Resolves with the sides that failed (empty: every pane is drawn),
   * or null when another show() began meanwhile.
   */
  async show(task) {
    const token = ++this.showing;
    this.destroyViewers();
    this.view.clear();
    this.view.reset();
    const waits = [];
    const images = new Map(this.items(task));
    for (const [side, pane] of Object.entries(this.panes)) {
      const image = images.get(side) || null;
      pane.image = image;
      setHidden(pane.el, !image);
      setHidden(pane.error, true);
      if (!image) continue;
      if (pane.el.dataset.kind !== (image.tiles ? "tiles" : "img")) {
        pane.el.dataset.kind = image.tiles ? "tiles" : "img";
      }
      const picture = image.tiles ? this.fitPicture(pane, image) : null;
      pane.picture = Boolean(picture);
      if (picture) pane.drawn = this.showPlain(pane, image, picture.url);
      else pane.drawn = image.tiles ? this.showTiles(pane, image, token) : this.showPlain(pane, image);
      waits.push(pane.drawn.then((ok) => (ok ? null : side)));
    }
    const failed = (await Promise.all(waits)).filter(Boolean);
    if (token !== this.showing) return null;
    for (const side of failed) setHidden(this.panes[side].error, false);
    if (!failed.length) this.openBehind(token);
    return failed;
  }

  /** `image`'s fit picture for `pane` as it is laid out now (images.js fitPicture), or null. */
  fitPicture(pane, image) {
    if (!image.pyramid || image.video) return null;
    return fitPicture(image.pyramid, pane.view.clientWidth, pane.view.clientHeight);
  }

  /** Open the viewers of the panes showing a fit picture, behind it, after the frame that
   * followed the pair's drawing (so opening never delays it, nor the vote keys). */
  openBehind(token) {
    afterFrame(() => {
      if (token !== this.showing) return;
      for (const pane of Object.values(this.panes)) {
        if (pane.image && pane.picture && !pane.viewer && pane.opening !== pane.image) {
          this.openBehindPicture(pane, pane.image, token);
        }
      }
    });
  }

  async openBehindPicture(pane, image, token) {
    const entry = pane.entry;
    pane.opening = image;
    // Laid out (the viewer needs the pane's size) but transparent, over the picture.
    pane.tiles.style.opacity = "0";
    setHidden(pane.tiles, false);
    const holder = document.createElement("div");
    holder.className = "osd-holder";
    pane.tiles.replaceChildren(holder);
    let viewer;
    try {
      viewer = await openViewer(holder, tileSource(image), this.osdBase);
    } catch {
      viewer = null; // the picture stays: zooming scales it, no tiles
    }
    if (pane.opening === image) pane.opening = null;
    const current = token === this.showing && pane.image === image && pane.entry === entry;
    if (!viewer || !current) {
      if (viewer) viewer.destroy();
      if (current) setHidden(pane.tiles, true);
      return;
    }
    pane.viewer = viewer;
    entry.viewer = viewer; // the shared zoom drives it from now on, with the picture
    this.view.apply();
    this.frontWhenZoomed(pane, entry, viewer);
  }

  /** Put `viewer` in front of the fit picture once the view is zoomed past fit and the
   * viewer's view is drawn (its base level is the same picture, so it is never emptier). */
  frontWhenZoomed(pane, entry, viewer) {
    let waiting = false;
    const stale = () => pane.viewer !== viewer || pane.entry !== entry || !pane.picture;
    const check = () => {
      if (stale()) {
        this.view.removeEventListener("change", check);
        return;
      }
      if (waiting || this.view.state.zoom <= 1) return;
      waiting = true;
      // Two frames: OpenSeadragon has then updated its view (and whether it is fully loaded)
      // for the zoom just applied, in its own animation frame.
      nextFrame().then(nextFrame).then(() => tilesDrawn(viewer)).then(() => {
        waiting = false;
        if (stale()) return;
        this.view.removeEventListener("change", check);
        pane.picture = false;
        entry.img = null;
        pane.tiles.style.opacity = "";
        setHidden(pane.shown, true);
      }, () => { waiting = false; }); // a tile failed: the picture stays in front
    };
    this.view.addEventListener("change", check);
    check();
  }

  /** Load one failed pane again; resolves with true once it is drawn. */
  async retry(side) {
    const pane = this.panes[side];
    const image = pane && pane.image;
    if (!image) return false;
    const token = this.showing;
    setHidden(pane.error, true);
    // Under another URL: Chromium keeps a failed image (an error page in place of the file)
    // in its memory cache and would show the same failure again without asking the server.
    pane.retries += 1;
    this.view.remove(pane.view);
    if (image.tiles) {
      // Through the descriptor: what the server says about the pyramid, not the payload.
      this.destroyViewer(pane);
      pane.drawn = this.showTiles(pane, image, token, retryUrl(image.tiles, pane.retries));
    } else {
      pane.drawn = this.showPlain(pane, image, retryUrl(image.url, pane.retries));
    }
    pane.picture = false; // a Retry takes the viewer's path
    const ok = await pane.drawn;
    if (token === this.showing && !ok) setHidden(pane.error, false);
    if (ok && token === this.showing && await this.allDrawn()) this.openBehind(token);
    return ok && token === this.showing;
  }

  /** Resolves with true once every shown pane is drawn (after retries), false if one failed. */
  async allDrawn() {
    const shown = Object.values(this.panes).filter((pane) => pane.image);
    return (await Promise.all(shown.map((pane) => pane.drawn))).every(Boolean);
  }

  /** Show a plain image (from `url`, default its own); resolves with whether it is drawn. */
  showPlain(pane, image, url = image.url) {
    setHidden(pane.tiles, true);
    if (pane.tiles.firstChild) pane.tiles.replaceChildren();
    if (pane.tiles.style.opacity) pane.tiles.style.opacity = "";
    let loaded;
    if (pane.shown.getAttribute("src") === url && pane.shown.complete
        && pane.shown.naturalWidth > 0) {
      loaded = Promise.resolve(true); // the same image stays on this side
    } else if (pane.nextUrl === url) {
      // Prepared: swap the two elements' roles (an opacity change in the compositor).
      const { shown, next } = pane;
      next.style.opacity = "";
      next.classList.replace("pane-next", "pane-img");
      next.alt = shown.alt;
      next.removeAttribute("aria-hidden");
      shown.classList.replace("pane-img", "pane-next");
      shown.alt = "";
      shown.setAttribute("aria-hidden", "true");
      pane.shown = next;
      pane.next = shown;
      // If it failed while prepared (a network blip), it is asked for once more now.
      loaded = pane.nextLoaded.then((ok) => ok || (pane.image === image
        && load(pane.shown, retryUrl(url, (pane.retries += 1)))));
      pane.nextUrl = null;
      pane.nextLoaded = null;
      this.view.setStandby(pane.view, null);
    } else {
      loaded = load(pane.shown, url);
    }
    setHidden(pane.shown, false);
    pane.entry = { el: pane.view, img: pane.shown, ...size(image) };
    this.view.add(pane.entry);
    // Decoded, then the next frame paints it.
    return loaded.then((ok) => (ok ? nextFrame().then(() => true) : false));
  }

  /** Open a tiled image: from the pyramid's geometry in the payload (no descriptor round
   * trip), or from the descriptor `dzi` when given (a Retry); resolves with whether the
   * current view's tiles are drawn. */
  async showTiles(pane, image, token, dzi = null) {
    setHidden(pane.shown, true);
    pane.shown.removeAttribute("src");
    if (pane.tiles.style.opacity) pane.tiles.style.opacity = "";
    setHidden(pane.tiles, false);
    const holder = document.createElement("div");
    holder.className = "osd-holder";
    pane.tiles.replaceChildren(holder);
    pane.entry = null;
    let viewer;
    try {
      viewer = await openViewer(holder, dzi || tileSource(image), this.osdBase);
    } catch {
      return false;
    }
    if (token !== this.showing || pane.image !== image) {
      viewer.destroy();
      return false;
    }
    pane.viewer = viewer;
    pane.entry = { el: pane.view, viewer, ...size(image) };
    this.view.add(pane.entry);
    try {
      await tilesDrawn(viewer);
      return true;
    } catch {
      return false;
    }
  }

  /** No keys of its own (VideoStage has playback keys). */
  key() {
    return false;
  }

  destroyViewer(pane) {
    if (pane.viewer) pane.viewer.destroy();
    pane.viewer = null;
  }

  destroyViewers() {
    for (const pane of Object.values(this.panes)) this.destroyViewer(pane);
  }

  /** Nothing on screen (all done). */
  clear() {
    this.showing += 1;
    this.destroyViewers();
    this.view.clear();
    for (const pane of Object.values(this.panes)) pane.image = null;
  }
}

// rasterAhead's opacity: drawn (so rasterised) but invisible: 1e-4 x 255 rounds to no change
// of any 8-bit channel, whatever is under it.
const RASTER_OPACITY = "0.0001";
// Frames it is drawn at that opacity: the first commits it, the second's commit waits until
// the first's tree (its tiles rasterised) is active, the third begins after that.
const RASTER_FRAMES = 3;

/**
 * Have the compositor rasterise the tiles of `img`, a decoded `.pane-next`, before its vote.
 *
 * A layer at opacity 0 is never drawn, and Chromium 156 does not rasterise its tiles either,
 * will-change or not: traced in bench/rating_page.py, both panes' 25 tiles were rasterised
 * after the keypress, on the way to the frame that shows the pair (keypress to drawn, p50:
 * 10.0 ms then, 5.0 ms with the tiles rasterised ahead; docs/benchmarks.md). Drawn once at a
 * nearly transparent opacity, the tiles are kept after it goes back to 0. Not left at that
 * opacity: every frame (a zoom, a pan) would draw four full panes instead of two (software
 * compositing: 3.7 -> 7.2 ms per frame).
 */
async function rasterAhead(img) {
  img.style.opacity = RASTER_OPACITY;
  for (let i = 0; i < RASTER_FRAMES; i += 1) await nextFrame();
  // A vote may have shown it meanwhile (showPlain cleared the opacity); either way the class
  // rule applies again.
  img.style.opacity = "";
}

/** Point `img` at `url`; resolves with whether it decoded. */
function load(img, url) {
  img.src = url;
  return img.decode().then(() => true, () => false);
}

/** `url` with a `retry` parameter (which the media and tile views ignore); OpenSeadragon
 * passes a descriptor's query on to its tiles. */
function retryUrl(url, attempt) {
  const base = url.replace(/[?&]retry=\d+$/, "");
  return `${base}${base.includes("?") ? "&" : "?"}retry=${attempt}`;
}

function size(image) {
  return { width: image.width, height: image.height };
}

/** Set `hidden` only when it changes: an unchanged attribute written again still costs a
 * style invalidation in the keypress. */
function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}
