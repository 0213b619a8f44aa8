// The image page: one image, zoomable like the annotator's panes (the shared zoom module).

import { SyncedView } from "../rate/zoom.js";
import { fillPane, paneParts } from "./panes.js";

const cfg = JSON.parse(document.getElementById("image-config").textContent);
const app = document.getElementById("image-app");
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
