// Putting one image into a pane of the shared zoom view (static/js/rate/zoom.js): a plain file,
// or an OpenSeadragon viewer over the image's Deep Zoom tiles when it has them. Used by the
// gallery (two panes) and the image page (one pane).

import { openTiled } from "../rate/images.js";

const RETRIES = 40; // an image being prepared is asked for again this many times at most

/** Seconds to wait when `url` answers 503 (a display copy, tiles or a video rendition a
 * worker is still making: blobs/views.py, campaigns/page/views.py), else null. */
export async function preparingFor(url) {
  try {
    const response = await fetch(url, { method: "HEAD", credentials: "same-origin" });
    if (response.status !== 503) return null;
    return Math.min(30, Math.max(2, Number(response.headers.get("Retry-After")) || 5));
  } catch {
    return null;
  }
}

/** Show the pane's error line: "being prepared" (and try again later) or "did not load". */
async function failed(parts, url, stale, retry, attempt) {
  const wait = attempt < RETRIES ? await preparingFor(url) : null;
  if (stale()) return null;
  parts.error.hidden = false;
  if (wait === null) {
    parts.error.textContent = "This image did not load.";
    return null;
  }
  parts.error.textContent = "This image is still being prepared…";
  await new Promise((resolve) => { setTimeout(resolve, wait * 1000); });
  return stale() ? null : retry(attempt + 1);
}

/** A pane element's parts, found once. */
export function paneParts(pane) {
  return {
    pane,
    view: pane.querySelector(".pane-view"),
    img: pane.querySelector(".pane-img"),
    tiles: pane.querySelector(".pane-osd"),
    error: pane.querySelector(".pane-error"),
  };
}

/**
 * Show `image` ({url, width, height, tiles}) in the pane and register it with `view`.
 * Resolves with the OpenSeadragon viewer (to destroy later) or null. `stale()` says that a
 * newer image was asked for meanwhile: this one then adds nothing to the view.
 */
export async function fillPane(parts, image, view, osdBase, stale = () => false, attempt = 0) {
  const retry = (next) => fillPane(parts, image, view, osdBase, stale, next);
  parts.error.hidden = true;
  parts.pane.dataset.kind = image.tiles ? "tiles" : "img";
  if (image.tiles) {
    parts.img.hidden = true;
    parts.img.removeAttribute("src");
    parts.tiles.hidden = false;
    parts.tiles.replaceChildren();
    const holder = document.createElement("div");
    holder.className = "osd-holder";
    parts.tiles.append(holder);
    try {
      const viewer = await openTiled(holder, image.tiles, osdBase);
      if (stale()) {
        viewer.destroy();
        return null;
      }
      view.add({ el: parts.view, viewer, width: image.width, height: image.height });
      return viewer;
    } catch {
      return failed(parts, image.tiles, stale, retry, attempt);
    }
  }
  parts.tiles.hidden = true;
  parts.tiles.replaceChildren();
  parts.img.hidden = false;
  // A retry of the same image finds its pane registered already.
  if (!view.paneFor(parts.view)) {
    view.add({ el: parts.view, img: parts.img, width: image.width, height: image.height });
  }
  if (parts.img.getAttribute("src") !== image.url) parts.img.src = image.url;
  try {
    await parts.img.decode();
  } catch {
    if (stale()) return null;
    parts.img.removeAttribute("src"); // a retry loads it anew
    return failed(parts, image.url, stale, retry, attempt);
  }
  return null;
}
