// The image page: one image, zoomable like the annotator's panes (the shared zoom module); for
// a video output, its rendition in a plain <video> player (the gallery's per-project URL).

import { SyncedView } from "../rate/zoom.js";
import { fillPane, paneParts, preparingFor } from "./panes.js";

const RETRIES = 40; // a rendition being prepared is asked for again this many times at most

const cfg = JSON.parse(document.getElementById("image-config").textContent);
const app = document.getElementById("image-app");

/** Play the video; a rendition the worker has not written yet answers 503: say so, and ask
 * again after the server's Retry-After, as the gallery's panes do. */
function showVideo(video, error) {
  let attempts = 0;
  video.addEventListener("loadeddata", () => {
    error.hidden = true;
    app.dataset.ready = "1";
  });
  video.addEventListener("error", async () => {
    const wait = attempts < RETRIES ? await preparingFor(video.currentSrc || video.src) : null;
    error.hidden = false;
    if (wait === null) {
      error.textContent = "This video did not load.";
      return;
    }
    attempts += 1;
    error.textContent = "This video is still being prepared…";
    setTimeout(() => video.load(), wait * 1000);
  });
  // The media may have loaded (or failed) before this module ran.
  if (video.readyState >= 2) app.dataset.ready = "1";
  else if (video.error) video.load();
}

function showImage() {
  const view = new SyncedView();
  const zoomLevel = document.getElementById("zoom-level");
  view.addEventListener("change", ({ detail }) => {
    zoomLevel.textContent = `${Math.round(detail.zoom * 100)}%`;
  });
  document.getElementById("zoom-reset").addEventListener("click", () => view.reset());
  document.addEventListener("keydown", (event) => {
    if (event.key === "0" && !event.target.closest("input, textarea, select")) view.reset();
  });
  fillPane(paneParts(app.querySelector(".pane")), cfg.image, view, cfg.osd).then(() => {
    app.dataset.ready = "1";
  });
}

const video = document.getElementById("image-video");
if (video) showVideo(video, document.getElementById("video-error"));
else showImage();
