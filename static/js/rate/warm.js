// The first pair's pictures, asked for as soon as the page's HTML is parsed.
//
// Loaded by the rating page as its own small async module (templates/campaigns/rate.html), so
// it runs once it and its few imports are in, not after the page's whole module graph
// (a dozen files over HTTP/1.1's six connections: 190-350 ms after the HTML on the project's
// VM, docs/benchmarks.md). rate.js imports the same modules, so the URLs asked for here are
// known there (images.js `warmed`) and the tile viewer's script is loaded once.
//
// The panes are measured as the task will show them (the prompt's lines and the source pane
// change their size), exactly as rate.js does before showing the first task.

import { loadOpenSeadragon, warmFitTiles } from "./images.js";
import { gridItems, pairItems } from "./stage.js";

/** Style sheets still loading: measuring before them would size the panes wrongly. */
function styleSheetsLoaded() {
  const pending = [...document.querySelectorAll('link[rel="stylesheet"]')]
    .filter((link) => !link.sheet);
  return Promise.all(pending.map((link) => new Promise((resolve) => {
    link.addEventListener("load", resolve, { once: true });
    link.addEventListener("error", resolve, { once: true });
  })));
}

/** Ask for the first task's fit-level pictures (high priority) and the tile viewer. */
export async function warmFirstTask() {
  performance.mark("rate-warm-start"); // bench/tiles_page.py reports when this ran
  const firstEl = document.getElementById("rate-first");
  const configEl = document.getElementById("rate-config");
  const app = document.getElementById("rate-app");
  if (!firstEl || !configEl || !app) return;
  const first = JSON.parse(firstEl.textContent);
  const cfg = JSON.parse(configEl.textContent);
  if (!first || !first.lease) return;
  const grid = cfg.kind === "best_of_k";
  const items = grid ? gridItems(first) : pairItems(first);
  const tiled = items.filter(([, image]) => image && image.tiles && !image.video);
  if (!tiled.length) return;
  await styleSheetsLoaded();
  // As rate.js lays the first task out (its warmFirst): prompt, and the source pane's column
  // (pairs and grids alike).
  document.getElementById("rate-prompt").textContent = first.prompt;
  app.classList.toggle("has-source", Boolean(first.source_image));
  const source = app.querySelector("#rate-stage .pane-source");
  if (first.source_image && source) source.hidden = false;
  for (const [side, image] of tiled) {
    const pane = app.querySelector(`#rate-stage .pane[data-side="${side}"] .pane-view`);
    if (pane) warmFitTiles(image, pane, "high");
  }
  performance.mark("rate-warm-asked");
  // After the pictures are asked for: running its 350 kB takes the main thread a while.
  loadOpenSeadragon(cfg.osd).catch(() => {}); // a failure shows in its pane
}

warmFirstTask();
