// The best-of-K grid: K panes under one SyncedView (static/js/rate/zoom.js), so zooming or
// panning any image moves all of them to the same region; tiled images (over 4096 px) open in
// OpenSeadragon (rate/images.js), plain ones are decoded before they are shown.

import { openViewer, tilesDrawn } from "./images.js";

export class Grid {
  /**
   * @param {HTMLElement} stage the element holding the K `.grid-pane` figures
   * @param {import("./zoom.js").SyncedView} view
   * @param {string} osdBase OpenSeadragon's static folder
   */
  constructor(stage, view, osdBase) {
    this.panes = [...stage.querySelectorAll(".grid-pane")].map((figure) => ({
      figure,
      view: figure.querySelector(".pane-view"),
      rank: figure.querySelector(".grid-rank"),
    }));
    this.view = view;
    this.osdBase = osdBase;
    this.viewers = [];
    this.shown = 0; // bumped on every show: a slow load of an older task is thrown away
  }

  /** Forget the previous task's images (their viewers closed, their <img> removed). */
  clear() {
    this.view.clear();
    for (const viewer of this.viewers) viewer.destroy();
    this.viewers = [];
    for (const pane of this.panes) {
      pane.view.querySelectorAll(".pane-img, .osd-holder").forEach((el) => el.remove());
      this.mark(pane, null);
    }
  }

  /**
   * Put the task's K images on screen, at fit. Resolves true once every one is drawn (decoded,
   * or every visible tile loaded), false when a newer show() replaced it; rejects when an
   * image cannot be loaded. Votes wait for this: nobody picks among images they did not see.
   */
  async show(images) {
    const token = ++this.shown;
    this.clear();
    this.view.reset();
    const drawn = images.map(async (image, slot) => {
      const pane = this.panes[slot];
      if (image.tiles) {
        const holder = document.createElement("div");
        holder.className = "osd-holder";
        pane.view.append(holder);
        const viewer = await openViewer(holder, image.tiles, this.osdBase);
        if (token !== this.shown) {
          viewer.destroy();
          return;
        }
        this.viewers.push(viewer);
        this.view.add({ el: pane.view, viewer, width: image.width, height: image.height });
        await tilesDrawn(viewer);
        return;
      }
      const img = document.createElement("img");
      img.className = "pane-img";
      img.alt = `Image ${slot + 1}`;
      img.draggable = false;
      img.decoding = "async";
      img.src = image.url;
      await img.decode();
      if (token !== this.shown) return;
      pane.view.append(img);
      this.view.add({ el: pane.view, img, width: image.width, height: image.height });
    });
    await Promise.all(drawn);
    if (token !== this.shown) return false;
    // One more frame: the last image appended is on screen before votes open.
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    return token === this.shown;
  }

  /** Show the rank given to a slot (1 = best), or nothing. */
  mark(pane, rank) {
    pane.figure.classList.toggle("picked", rank !== null);
    pane.rank.hidden = rank === null;
    pane.rank.textContent = rank === null ? "" : `#${rank}`;
  }

  /** Show the picks so far: picks[i] is the slot ranked i + 1. */
  showPicks(picks) {
    this.panes.forEach((pane, slot) => {
      const at = picks.indexOf(slot);
      this.mark(pane, at < 0 ? null : at + 1);
    });
  }
}
