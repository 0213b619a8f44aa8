// Video pairs in the gallery: the two runs' videos play as one, on the rating page's synced
// player (static/js/rate/video.js, imported: SyncedVideos keeps both on one timeline,
// VideoControls is its playback bar and keys), under the gallery's shared zoom and pan.
//
// Each pane gets one <video> (class pane-video, placed like the image by rate/zoom.js); the
// pane's data-kind="video" hides its poster image (css/rate-video.css). A rendition the
// worker has not written yet answers 503: the pane says so and asks again, as for images.

import { firstFrame, SyncedVideos, timeline, VideoControls } from "../rate/video.js";
import { preparingFor } from "./panes.js";

const RETRIES = 40; // a rendition being prepared is asked for again this many times at most

/** Whether both sides of a gallery item are videos (items carry `video`: null for images). */
export function isVideoPair(item) {
  return Boolean(item && item.left.video && item.right.video);
}

export class GalleryVideos {
  /**
   * @param {Record<string, object>} panes the gallery's pane parts (panes.js paneParts), by side
   * @param {import("../rate/zoom.js").SyncedView} view the zoom shared by the panes
   * @param {Element} barHost where the playback bar goes (its first child)
   */
  constructor(panes, view, barHost) {
    this.panes = panes;
    this.view = view;
    this.player = new SyncedVideos();
    this.controls = new VideoControls(this.player, barHost);
    this.active = false;
    this.showing = 0;
    for (const parts of Object.values(panes)) {
      const video = document.createElement("video");
      video.className = "pane-video";
      video.muted = true;
      video.playsInline = true;
      video.preload = "auto";
      video.disablePictureInPicture = true;
      video.setAttribute("aria-hidden", "true");
      parts.view.append(video);
      parts.video = video;
    }
  }

  /**
   * Show `item`'s two videos (left leads) and start them together once both first frames are
   * drawn. Resolves with whether both are drawn (false too when `stale()` says a newer item
   * was asked for meanwhile).
   */
  async show(item, stale) {
    const token = ++this.showing;
    const current = () => token === this.showing && !stale();
    this.active = true;
    this.player.detach();
    const sides = ["left", "right"];
    // The rating page's timeline rule (`timeline`): the higher rate, the shorter duration.
    const clips = sides.map((side) => item[side].video);
    const { fps } = timeline(clips);
    const drawn = sides.map((side) => this.load(this.panes[side], item[side], current, 0, fps));
    this.player.attach(sides.map((side) => this.panes[side].video), clips);
    this.controls.show(true);
    const ok = (await Promise.all(drawn)).every(Boolean);
    if (!current()) return false;
    if (ok) this.player.play();
    return ok;
  }

  /** Put `image`'s video into the pane; resolves with whether its first frame (of a timeline
   * at `fps`) is drawn. */
  async load(parts, image, current, attempt, fps) {
    const { pane, video, error } = parts;
    pane.dataset.kind = "video";
    error.hidden = true;
    parts.tiles.hidden = true;
    parts.tiles.replaceChildren();
    const url = attempt ? `${image.video.url}?retry=${attempt}` : image.video.url;
    if (video.getAttribute("src") !== url) {
      video.src = url;
      video.load();
    }
    if (!this.view.paneFor(parts.view)) {
      this.view.add({ el: parts.view, img: video, width: image.video.width || image.width,
                      height: image.video.height || image.height });
    }
    const ok = await firstFrame(video, fps);
    if (ok || !current()) return ok && current();
    const wait = attempt < RETRIES ? await preparingFor(image.video.url) : null;
    if (!current()) return false;
    error.hidden = false;
    if (wait === null) {
      error.textContent = "This video did not load.";
      return false;
    }
    error.textContent = "This video is still being prepared…";
    await new Promise((resolve) => { setTimeout(resolve, wait * 1000); });
    return current() ? this.load(parts, image, current, attempt + 1, fps) : false;
  }

  /** Stop and unload the videos (the next item is a pair of images). */
  clear() {
    this.showing += 1;
    if (!this.active) return;
    this.active = false;
    this.player.detach();
    this.controls.show(false);
    for (const parts of Object.values(this.panes)) {
      const { video } = parts;
      video.pause();
      video.removeAttribute("src");
      video.load(); // frees the decoder
    }
  }

  /** The playback keys while a video pair is shown (Space, `,` `.`, `[` `]`, L); true when
   * `key` was one. The gallery keeps K for "previous pair". */
  key(key) {
    return this.active && key !== "k" && this.controls.key(key);
  }
}
