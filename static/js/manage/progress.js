// Campaign page: poll the building progress and the vote counts until building is over.
// The server's answer (campaign-manage-progress) fills every [data-field] of #progress;
// polling stops once `final` is true, and after that only while the tab is visible.
const config = JSON.parse(document.getElementById("campaign-config").textContent);
const section = document.getElementById("progress");
const POLL_MS = 2000;

function show(progress) {
  for (const element of section.querySelectorAll("[data-field]")) {
    const name = element.dataset.field;
    if (name === "state") {
      element.textContent = progress.status === "failed" ? "Building failed"
        : progress.final ? "Built" : "Building…";
    } else if (name === "not_asked") {
      element.textContent = progress.not_asked || "none"; // the pairs or K-sets skipped, in words
    } else if (name in progress) {
      element.textContent = String(progress[name]);
    }
  }
  // Large images being prepared (tiles or a display copy), or videos being converted: "none
  // waiting" once nothing is.
  document.getElementById("preparing-count").hidden = progress.images_total === 0;
  document.getElementById("preparing-none").hidden = progress.images_total !== 0;
  document.getElementById("build-error").hidden = !progress.error;
  document.getElementById("waiting").hidden = progress.waiting_for_runs.length === 0;
  const bar = document.getElementById("votes-bar");
  bar.max = Math.max(progress.votes_needed, 1);
  bar.value = progress.votes_done;
  const status = document.getElementById("campaign-status");
  if (status.textContent !== progress.status) {
    // The status moved (building finished, or another scientist acted): the buttons shown
    // belong to the old status, so reload the page once building is over.
    if (progress.final) window.location.reload();
  }
}

async function poll() {
  try {
    const response = await fetch(config.progress_url, {headers: {Accept: "application/json"},
                                                       credentials: "same-origin"});
    if (response.ok) {
      const progress = await response.json();
      show(progress);
      if (progress.final) return;
    }
  } catch {
    // Offline for a moment: try again at the next tick.
  }
  window.setTimeout(poll, POLL_MS);
}

show(config.progress);
if (!config.progress.final) window.setTimeout(poll, POLL_MS);
