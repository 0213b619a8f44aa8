// A job page's live progress: asks the page's progress URL (a small JSON answer) every second
// until the job is finished, and redraws the figures and failures. No reload; the final state
// stays on the page (data-finished="1").

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

async function poll() {
  try {
    const answer = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
    if (answer.ok) {
      const state = await answer.json();
      draw(state);
      if (state.finished) return;
    }
  } catch {
    // Offline for a moment: ask again at the next tick.
  }
  window.setTimeout(poll, POLL_MS);
}

if (box && box.dataset.finished !== "1") window.setTimeout(poll, POLL_MS);
