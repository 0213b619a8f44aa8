// Putting one image into a pane of the shared zoom view (static/js/rate/zoom.js): a plain file,
// or an OpenSeadragon viewer over the image's Deep Zoom tiles when it has them. Used by the
// gallery (two panes) and the image page (one pane).

import { openTiled } from "../rate/images.js";

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
export async function fillPane(parts, image, view, osdBase, stale = () => false) {
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
      if (!stale()) parts.error.hidden = false;
      return null;
    }
  }
  parts.tiles.hidden = true;
  parts.tiles.replaceChildren();
  parts.img.hidden = false;
  view.add({ el: parts.view, img: parts.img, width: image.width, height: image.height });
  if (parts.img.getAttribute("src") !== image.url) parts.img.src = image.url;
  try {
    await parts.img.decode();
  } catch {
    if (!stale()) parts.error.hidden = false;
  }
  return null;
}
