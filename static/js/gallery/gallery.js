// The side-by-side gallery: the same prompt and seed from two runs, stepped through with the
// keyboard (← → or K J), zoom and pan shared by both panes (the annotator page's zoom module).
// Runs of videos play their two videos in sync (./videos.js, on the rating page's player).
// The server renders one page of pairs (templates/gallery/gallery.html) and their data
// (#gallery-config); stepping within the page redraws from that data, stepping past its end
// loads the neighbouring page.

import { preloadImage } from "../rate/images.js";
import { SyncedView } from "../rate/zoom.js";
import { fillPane, paneParts } from "./panes.js";
import { GalleryVideos, isVideoPair } from "./videos.js";

const cfg = JSON.parse(document.getElementById("gallery-config").textContent);
const app = document.getElementById("gallery-app");
const items = cfg.items;
const view = new SyncedView();
const $ = (selector) => app.querySelector(selector);
const panes = {
  left: $(".pane[data-side=left]") && paneParts($(".pane[data-side=left]")),
  right: $(".pane[data-side=right]") && paneParts($(".pane[data-side=right]")),
};

const state = { index: cfg.index, viewers: [], showing: 0 };
const barHost = document.getElementById("gallery-video-bar");
const videos = panes.left && panes.right && barHost && items.some(isVideoPair)
  ? new GalleryVideos(panes, view, barHost) : null;

// ---------------------------------------------------------------- writing the pair's numbers

const number = (value, digits) => (value === null || value === undefined ? "–" : value.toFixed(digits));

function votesText(votes) {
  if (!votes.total) return "none yet";
  return `left ${votes.left} · right ${votes.right} · tie ${votes.tie} · both bad ${votes.both_bad}`;
}

function setField(name, text) {
  for (const el of app.querySelectorAll(`[data-field="${name}"]`)) el.textContent = text;
}

function renderValues(item) {
  setField("prompt", item.prompt);
  setField("number", String(item.number));
  setField("category", item.category || "–");
  setField("seed", String(item.seed));
  setField("lpips", item.lpips === null ? "–"
    : `${item.lpips.toFixed(4)}${item.lpips_calibrated ? "" : " (uncalibrated)"}`);
  setField("votes", votesText(item.votes));
  setField("human_outcome", item.human_outcome || "–");
  // A metric judge that scored with random weights is labelled as its values are.
  const judgeFlag = item.metric_calibrated === false ? " (uncalibrated)" : "";
  setField("metric_outcome", item.metric_outcome ? item.metric_outcome + judgeFlag : "–");
  const disagreement = number(item.metric_disagreement, 2);
  setField("metric_disagreement", disagreement === "–" ? disagreement : disagreement + judgeFlag);
  setField("annotator_disagreement", number(item.annotator_disagreement, 2));
  for (const side of ["left", "right"]) {
    setField(`${side}-clip`, number(item[side].clip, 2)
      + (item[side].clip !== null && !item[side].clip_calibrated ? " (uncalibrated)" : ""));
    const link = $(`[data-field="${side}-href"]`);
    if (link) link.href = item[side].href;
  }
  for (const row of app.querySelectorAll("#gallery-list tbody tr")) {
    if (Number(row.dataset.index) === state.index) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- showing a pair

/** Decode the neighbours' plain files now, so that the next key press shows them at once. */
function preloadAround(index) {
  for (const other of [items[index + 1], items[index - 1]]) {
    if (!other) continue;
    for (const image of [other.left, other.right]) {
      if (!image.tiles && !image.video) preloadImage(image.url).catch(() => {});
    }
  }
}

async function show(index) {
  const item = items[index];
  const token = ++state.showing;
  const stale = () => token !== state.showing;
  state.index = index;
  app.dataset.ready = "0";
  for (const viewer of state.viewers) viewer.destroy();
  state.viewers = [];
  view.clear();
  view.reset();
  renderValues(item);
  history.replaceState(null, "", cfg.navigation.item_urls[index]);
  if (videos && isVideoPair(item)) {
    await videos.show(item, stale);
    if (stale()) return;
    app.dataset.number = String(item.number);
    app.dataset.ready = "1";
    return;
  }
  if (videos) videos.clear();
  const viewers = await Promise.all([
    fillPane(panes.left, item.left, view, cfg.osd, stale),
    fillPane(panes.right, item.right, view, cfg.osd, stale),
  ]);
  if (stale()) {
    for (const viewer of viewers) if (viewer) viewer.destroy();
    return;
  }
  state.viewers = viewers.filter(Boolean);
  app.dataset.number = String(item.number);
  app.dataset.ready = "1"; // also what the browser test waits for
  preloadAround(index);
}

function step(delta) {
  const next = state.index + delta;
  if (next < 0) {
    if (cfg.navigation.prev) window.location.assign(cfg.navigation.prev);
    return;
  }
  if (next >= items.length) {
    if (cfg.navigation.next) window.location.assign(cfg.navigation.next);
    return;
  }
  show(next);
}

// ---------------------------------------------------------------- wiring

const KEYS = { ArrowLeft: -1, k: -1, ArrowRight: 1, j: 1 };

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select")) return; // they use these keys
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key in KEYS) step(KEYS[key]);
  else if (key === "0") view.reset();
  else if (!(videos && videos.key(key))) return;
  event.preventDefault();
}

function start() {
  if (!items.length || !panes.left || !panes.right) return;
  document.addEventListener("keydown", onKey);
  $("#gallery-prev").addEventListener("click", () => step(-1));
  $("#gallery-next").addEventListener("click", () => step(1));
  $("#zoom-reset").addEventListener("click", () => view.reset());
  view.addEventListener("change", ({ detail }) => {
    $("#zoom-level").textContent = `${Math.round(detail.zoom * 100)}%`;
  });
  // A row of the page's table shows its pair without a page load (its link still works).
  $("#gallery-list").addEventListener("click", (event) => {
    const link = event.target.closest("a");
    const row = event.target.closest("tr[data-index]");
    if (!link || !row || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    show(Number(row.dataset.index));
  });
  show(state.index);
}

start();
