// Live progress of generation runs and metric jobs, from their progress JSON
// (evalhub/workspace/progress.py), asked every second until the job is finished; no reload,
// the final state stays on the page (data-finished="1").
// - A job's own page (#progress, data-url): redraws the figures, failures and results.
// - A list's unfinished rows (runs.html, metrics.html; their count cell td[data-progress-url]):
//   each row asks its own job's JSON and redraws its count and status. Only unfinished rows
//   carry the URL, and a list with none does not load this script.

const box = document.getElementById("progress");
const POLL_MS = 1000;

function text(id, value) {
  const element = document.getElementById(id);
  if (element) element.textContent = value;
}

function draw(state) {
  text("progress-status", state.status_label);
  document.getElementById("progress-status").className = `status-${state.status}`;
  document.getElementById("progress-bar").value = state.percent;
  text("progress-done", state.done);
  text("progress-total", state.total);
  text("progress-images-done", state.images_done);
  text("progress-images-total", state.images_total);
  text("progress-failed", state.failed);
  text("progress-rate", state.images_per_s === null ? "–" : state.images_per_s.toFixed(2));
  text("progress-eta", state.eta_s === null ? "–" : `${Math.round(state.eta_s)} s`);
  const error = document.getElementById("progress-error");
  error.hidden = !state.error;
  error.textContent = state.error;
  const list = document.getElementById("progress-failures");
  list.replaceChildren(...state.failures.map((failure) => {
    const item = document.createElement("li");
    const what = document.createElement("strong");
    what.textContent = failure.what;
    item.append(what, `: ${failure.reason}`);
    return item;
  }));
  document.getElementById("progress-no-failures").hidden = state.failures.length > 0;
  const results = document.getElementById("results");
  if (results && state.results.length) {
    document.getElementById("results-body").replaceChildren(...state.results.map((result) => {
      const row = document.createElement("tr");
      const name = document.createElement("th");
      name.textContent = result.metric;
      const value = document.createElement("td");
      value.className = "num";
      value.textContent = result.value === null ? "–" : result.value.toFixed(4);
      if (result.std !== null) value.textContent += ` ± ${result.std.toFixed(4)}`;
      if (result.uncalibrated) value.textContent += " (uncalibrated)";
      const count = document.createElement("td");
      count.className = "num";
      count.textContent = result.n_images ?? "–";
      const computed = document.createElement("td");
      computed.className = "computed-with";
      computed.textContent = result.computed_with;
      row.append(name, value, count, computed);
      return row;
    }));
    results.hidden = false;
  }
  document.getElementById("progress-final").hidden = !state.finished;
  // What only an unfinished job offers (the metric job's Resume button).
  for (const element of document.querySelectorAll("[data-unfinished-only]")) {
    element.hidden = state.finished;
  }
  box.dataset.finished = state.finished ? "1" : "0";
}

// A list row's count cell (data-progress-url: "<done> / <total>", then maybe a unit) and its
// status cell (data-progress-status).
function drawRow(cell, state) {
  const count = cell.firstChild;
  count.textContent = count.textContent.replace(/^\d+ \/ \d+/, `${state.done} / ${state.total}`);
  const status = cell.closest("tr").querySelector("[data-progress-status]");
  status.textContent = state.status_label;
  status.className = `status-${state.status}`;
  cell.dataset.finished = state.finished ? "1" : "0";
}

// Asks `url` every POLL_MS and hands each answer to `redraw`, until the job is finished.
async function follow(url, redraw) {
  try {
    const answer = await fetch(url, { headers: { Accept: "application/json" } });
    if (answer.ok) {
      const state = await answer.json();
      redraw(state);
      if (state.finished) return;
    } else if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
      return; // gone (deleted in another tab) or no longer ours: asking again changes nothing
    }
  } catch {
    // Offline for a moment: ask again at the next tick.
  }
  window.setTimeout(() => follow(url, redraw), POLL_MS);
}

if (box && box.dataset.finished !== "1") window.setTimeout(() => follow(box.dataset.url, draw), POLL_MS);
for (const cell of document.querySelectorAll("td[data-progress-url]")) {
  if (cell.dataset.finished !== "1") {
    window.setTimeout(() => follow(cell.dataset.progressUrl, (state) => drawRow(cell, state)), POLL_MS);
  }
}
