// The annotator's rating page: one pair on screen, the next one already leased and decoded,
// votes written to a local outbox before they are sent. See templates/campaigns/rate.html.

import { NetworkError, RateApi } from "./rate/api.js";
import { openTiled, preloadTask } from "./rate/images.js";
import { VoteQueue } from "./rate/queue.js";
import { SyncedView } from "./rate/zoom.js";

const cfg = JSON.parse(document.getElementById("rate-config").textContent);
const api = new RateApi(cfg.api);
const storagePrefix = `evalhub.rate.v1.${cfg.campaign}.${cfg.user}`;
const queue = new VoteQueue(api, `${storagePrefix}.outbox`);
const historyKey = `${storagePrefix}.history`;
const view = new SyncedView();
const criteria = cfg.criteria.map((c) => c.key);

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const app = $("#rate-app");
const panes = Object.fromEntries($$(".pane", app).map((el) => [el.dataset.side, el]));

const KEYS = {
  1: "left", ArrowLeft: "left", 2: "right", ArrowRight: "right",
  3: "tie", t: "tie", 4: "both_bad", b: "both_bad",
};
const UNDO_DEPTH = 20;

const state = {
  current: null, // task payload on screen
  upcoming: [], // leased tasks, preloaded, waiting their turn
  history: [], // [{clientId, task}] votes cast here, newest last, for undo (kept in storage)
  answers: {}, // criterion -> answer for the current pair
  ready: false, // the pair is fully shown: input counts from here
  shownAt: 0,
  progress: null, // {my_votes, remaining} as the server last said
  progressAt: -1, // when that answer was asked for: an older answer arriving late is ignored
  prefetching: null,
  prefetchRetry: 0,
  prefetchTimer: null,
  done: null, // server's "nothing left" message
  viewers: [],
  dismissed: new Set(), // leases skipped or reported here: never shown again, even if the
  // server has not processed the skip yet (it would hand the lease back as "held")
  started: false, // the leases held before a reload are known: safe to lease more
  advancing: null, // the advance() in progress: two at once would show two pairs in turn
  starting: null, // start() until the first pair is up: an undo right after a reload waits
};

// ---------------------------------------------------------------- small UI helpers

function announce(message) {
  // Screen readers hear it; sighted users see it briefly in the status line.
  const status = $("#rate-status");
  status.textContent = message;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => {
    if (status.textContent === message) status.textContent = "";
  }, 4000);
}

function renderProgress() {
  const pending = queue.size;
  const pendingEl = $("#rate-pending");
  pendingEl.hidden = pending === 0;
  pendingEl.textContent = `${pending} vote${pending === 1 ? "" : "s"} waiting to send` +
    (navigator.onLine ? "" : " (offline)");
  if (!state.progress) return;
  const mine = state.progress.my_votes + pending;
  const remaining = Math.max(0, state.progress.remaining - pending);
  $("#rate-count").textContent = `${mine} vote${mine === 1 ? "" : "s"} by you · ${remaining} remaining`;
  const bar = $("#rate-bar");
  bar.max = mine + remaining || 1;
  bar.value = mine;
}

function renderAnswers() {
  const activeIndex = criteria.findIndex((key) => !state.answers[key]);
  for (const row of $$(".criterion", app)) {
    const key = row.dataset.criterion;
    row.classList.toggle("active", key === criteria[activeIndex]);
    for (const button of $$("button[data-answer]", row)) {
      button.setAttribute("aria-pressed", String(state.answers[key] === button.dataset.answer));
    }
  }
}

function setReady(ready) {
  state.ready = ready;
  app.dataset.ready = ready ? "1" : "0"; // also lets tests wait for "fully shown"
  app.classList.toggle("loading", !ready && !state.done);
  for (const button of $$(".answer-btn, #skip-btn, .report-btn", app)) button.disabled = !ready;
  $("#undo-btn").disabled = state.history.length === 0;
}

// ---------------------------------------------------------------- undo history across reloads

/**
 * Store the undo history, so that U after a reload still takes back the last vote. A vote the
 * server has needs only its id (the undo answer brings a fresh lease on its pair); one still
 * in the outbox keeps its task, because only this page can put that pair back on screen.
 */
function saveHistory() {
  const waiting = new Set(queue.items().map((item) => item.client_id));
  const stored = state.history.slice(-UNDO_DEPTH).map(({ clientId, task }) => (
    waiting.has(clientId) ? { clientId, task } : { clientId }));
  try {
    localStorage.setItem(historyKey, JSON.stringify(stored));
  } catch {
    /* storage full: undo still works until the next reload, and voting must go on */
  }
}

/** The history saved before a reload; anything unreadable counts as no history. */
function loadHistory() {
  let stored;
  try {
    stored = JSON.parse(localStorage.getItem(historyKey) || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(stored)) return [];
  return stored.filter((entry) => entry && typeof entry.clientId === "string").slice(-UNDO_DEPTH);
}

// ---------------------------------------------------------------- showing a pair

function knownLeases() {
  const queued = queue.items().map((item) => item.lease);
  const shown = [state.current, ...state.upcoming].filter(Boolean).map((task) => task.lease);
  return [...new Set([...shown, ...queued, ...state.dismissed])];
}

function destroyViewers() {
  for (const viewer of state.viewers) viewer.destroy();
  state.viewers = [];
}

/** Put one image in its pane; resolves when it is painted (or failed: still votable). */
async function fillPane(side, image) {
  const pane = panes[side];
  const viewEl = $(".pane-view", pane);
  const img = $(".pane-img", pane);
  const tiles = $(".pane-osd", pane);
  pane.hidden = !image;
  $(".pane-error", pane).hidden = true;
  if (!image) return;
  pane.dataset.kind = image.tiles ? "tiles" : "img";
  if (image.tiles) {
    img.hidden = true;
    img.removeAttribute("src");
    tiles.hidden = false;
    tiles.replaceChildren();
    const holder = document.createElement("div");
    holder.className = "osd-holder";
    tiles.append(holder);
    try {
      const viewer = await openTiled(holder, image.tiles, cfg.osd);
      state.viewers.push(viewer);
      view.add({ el: viewEl, viewer, width: image.width, height: image.height });
    } catch {
      $(".pane-error", pane).hidden = false;
    }
    return;
  }
  tiles.hidden = true;
  tiles.replaceChildren();
  img.hidden = false;
  view.add({ el: viewEl, img, width: image.width, height: image.height });
  img.src = image.url;
  try {
    await img.decode();
  } catch {
    $(".pane-error", pane).hidden = false;
  }
}

async function showTask(task) {
  setReady(false);
  destroyViewers();
  view.clear();
  view.reset();
  state.current = task;
  app.dataset.lease = task.lease;
  state.answers = {};
  renderAnswers();
  localStorage.setItem(`${storagePrefix}.current`, task.lease);
  $("#rate-prompt").textContent = task.prompt;
  app.classList.toggle("has-source", Boolean(task.source_image));
  $("#rate-done").hidden = true;
  $("#rate-stage").hidden = false;
  await Promise.all([
    fillPane("left", task.left),
    fillPane("right", task.right),
    fillPane("source", task.source_image),
  ]);
  if (state.current !== task) return; // an undo or skip replaced it meanwhile
  state.shownAt = performance.now();
  setReady(true);
}

function showDone(message) {
  state.current = null;
  state.done = message || "Nothing left to rate. Thank you!";
  app.dataset.lease = "";
  app.dataset.done = "1";
  destroyViewers();
  view.clear();
  $("#rate-stage").hidden = true;
  $("#rate-done").hidden = false;
  $("#rate-done-message").textContent = state.done;
  $("#rate-prompt").textContent = "";
  setReady(false);
  $("#undo-btn").disabled = state.history.length === 0;
}

// ---------------------------------------------------------------- leasing ahead

/** Lease one more task; returns a task, {done, detail}, or null when the network failed. */
async function leaseNext() {
  // Right after a vote, the vote's own request brings the next task.
  const viaVote = await queue.nextWithVote(knownLeases);
  if (viaVote && viaVote.done) return { done: true, detail: viaVote.detail };
  if (viaVote) {
    preloadTask(viaVote);
    return viaVote;
  }
  try {
    const { status, data } = await api.next(knownLeases());
    if (status === 201) {
      preloadTask(data);
      return data;
    }
    if (status === 200 && data && data.done) return { done: true, detail: data.detail };
    if (status === 400 && data) return { done: true, detail: data.detail };
    return null;
  } catch (error) {
    if (error instanceof NetworkError) return null;
    throw error;
  }
}

/** Keep one task ready behind the current one. */
function prefetch() {
  if (state.prefetching || state.upcoming.length > 0) return state.prefetching;
  state.prefetching = (async () => {
    const result = await leaseNext();
    state.prefetching = null;
    if (result && !result.done) {
      if (!knownLeases().includes(result.lease)) state.upcoming.push(result);
      state.prefetchRetry = 0;
      if (!state.current && state.started) advance(); // the page was waiting for it
    } else if (result && !state.current && queue.size === 0) {
      showDone(result.detail);
    } else {
      // Offline, or "nothing now" while votes or a skip are still on their way (they hold
      // lease slots on the server), or until another annotator releases a task.
      prefetchLater();
    }
    return result;
  })();
  return state.prefetching;
}

/** One pending retry at a time, less and less often (the online event retries at once). */
function prefetchLater() {
  if (state.prefetchTimer) return;
  const delay = Math.min(30000, 1000 * 2 ** state.prefetchRetry++);
  state.prefetchTimer = setTimeout(() => {
    state.prefetchTimer = null;
    prefetch();
  }, delay);
}

function notExpired(task) {
  return new Date(task.expires_at).getTime() > Date.now() + 5000;
}

/** Show the next pair: the prefetched one if it is there, else lease one now. */
function advance() {
  if (!state.advancing) {
    state.advancing = advanceOnce().finally(() => {
      state.advancing = null;
    });
  }
  return state.advancing;
}

async function advanceOnce() {
  state.upcoming = state.upcoming.filter(notExpired);
  let task = state.upcoming.shift();
  if (!task) {
    state.current = null;
    setReady(false);
    const result = state.prefetching ? await state.prefetching : await leaseNext();
    task = state.upcoming.shift() || (result && !result.done ? result : null);
    if (!task) {
      if (result && result.done && queue.size === 0) {
        showDone(result.detail);
      } else {
        announce("Waiting for the next pair…");
        prefetchLater(); // prefetch() calls advance() when it gets one
      }
      return;
    }
  }
  state.done = null;
  const shown = showTask(task);
  prefetch();
  await shown;
}

// ---------------------------------------------------------------- actions

function castVote() {
  const task = state.current;
  const record = {
    client_id: crypto.randomUUID(),
    lease: task.lease,
    answers: { ...state.answers },
    latency_ms: Math.max(0, Math.round(performance.now() - state.shownAt)),
  };
  queue.add(record); // stored locally first, then sent
  const instructions = $("#rate-instructions");
  if (instructions && instructions.open) instructions.open = false; // read; out of the way
  state.history.push({ clientId: record.client_id, task });
  state.history = state.history.slice(-UNDO_DEPTH);
  saveHistory();
  announce(criteria.length === 1 ? `Voted ${record.answers[criteria[0]].replace("_", " ")}` : "Vote saved");
  renderProgress();
  advance();
}

function answer(value, criterion) {
  if (!state.ready || !state.current) return;
  const key = criterion || criteria.find((c) => !state.answers[c]) || criteria[criteria.length - 1];
  state.answers[key] = value;
  renderAnswers();
  if (criteria.every((c) => state.answers[c])) castVote();
}

async function undo() {
  await state.starting; // resuming after a reload would otherwise cover the undone pair
  if (state.advancing) await state.advancing; // let the pair being put up settle first
  const last = state.history.pop();
  if (!last) {
    announce("Nothing to undo");
    return;
  }
  // Stored before asking the server: a reload mid-request must not offer this vote again
  // (undone twice, the server refuses, and the entry would block every older one).
  saveHistory();
  setReady(false);
  // A vote still in the outbox is simply taken back: the server never saw it.
  if (!queue.remove(last.clientId)) {
    await queue.idle();
    if (!queue.remove(last.clientId)) {
      let answerBody;
      try {
        answerBody = await api.undo(last.clientId);
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        answerBody = { status: 0 };
      }
      if (answerBody.status !== 200) {
        state.history.push(last);
        saveHistory();
        announce(answerBody.status === 0 ? "Cannot undo while offline" : "Could not undo that vote");
        if (state.current) setReady(true);
        return;
      }
      last.task = answerBody.data; // a fresh lease on the same pair, same sides
      refreshProgress();
    }
  }
  if (state.current) state.upcoming.unshift(state.current);
  renderProgress();
  announce("Vote undone");
  await showTask(last.task);
}

/** Retry a one-off request (skip, report) through brief outages and 5xx answers. */
async function sendWithRetry(send, attempts = 4) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await send();
      if (answer.status < 500 || attempt + 1 >= attempts) return answer;
    } catch (error) {
      if (!(error instanceof NetworkError) || attempt + 1 >= attempts) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
  }
}

async function skip() {
  if (!state.ready || !state.current) return;
  const lease = state.current.lease;
  state.dismissed.add(lease);
  announce("Skipped");
  // Lease the next one only once the skip freed its slot (the server caps leases held).
  const sent = sendWithRetry(() => api.skip(lease)).then(
    () => prefetch(),
    () => announce("Skip not sent (offline); the pair will come back later"));
  advance();
  await sent;
}

function openReport(side) {
  if (!state.ready || !state.current) return;
  const dialog = $("#report-dialog");
  dialog.dataset.side = side;
  $("#report-side").textContent = side === "source" ? "source" : side;
  $("#report-note").value = "";
  dialog.showModal();
}

async function sendReport() {
  const dialog = $("#report-dialog");
  const side = dialog.dataset.side;
  const note = $("#report-note").value;
  dialog.close();
  const lease = state.current.lease;
  state.dismissed.add(lease);
  const sent = sendWithRetry(() => api.report(lease, side, note)).then(
    ({ status }) => {
      announce(status === 200 ? "Thanks, the image was reported" : "Report failed");
      prefetch();
    },
    () => announce("Report not sent (offline)"),
  );
  advance();
  await sent;
}

function applyProgress(progress, askedAt) {
  if (!progress || askedAt < state.progressAt) return;
  state.progress = progress;
  state.progressAt = askedAt;
  renderProgress();
}

async function refreshProgress() {
  const askedAt = performance.now();
  try {
    const { status, data } = await api.campaign();
    if (status === 200) applyProgress(data.progress, askedAt);
  } catch {
    /* offline: keep the last numbers */
  }
}

// ---------------------------------------------------------------- wiring

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select, dialog")) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  let handled = true;
  if (key in KEYS) answer(KEYS[key]);
  else if (key === "s") skip();
  else if (key === "u" || key === "Backspace") undo();
  else if (key === "0") view.reset();
  else handled = false;
  if (handled) event.preventDefault();
}

function wire() {
  document.addEventListener("keydown", onKey);
  app.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.answer) {
      answer(button.dataset.answer, button.closest(".criterion").dataset.criterion);
    } else if (button.id === "skip-btn") skip();
    else if (button.id === "undo-btn") undo();
    else if (button.id === "zoom-reset") view.reset();
    else if (button.classList.contains("report-btn")) openReport(button.dataset.side);
  });
  $("#report-send").addEventListener("click", (event) => {
    event.preventDefault();
    sendReport();
  });
  $("#report-cancel").addEventListener("click", () => $("#report-dialog").close());
  view.addEventListener("change", ({ detail }) => {
    $("#zoom-level").textContent = `${Math.round(detail.zoom * 100)}%`;
  });
  queue.addEventListener("change", renderProgress);
  queue.addEventListener("change", saveHistory); // a vote sent: its stored task can go
  queue.addEventListener("sent", ({ detail }) => {
    $("#rate-signed-out").hidden = true;
    // Stamped on arrival: it was computed after this vote, so it beats any earlier question.
    applyProgress(detail.data && detail.data.progress, performance.now());
    renderProgress();
    if (!state.started) return;
    // Unsent votes were holding leases; with them stored there may be room for a new task.
    if (!state.current && !state.done) advance();
    else prefetch();
  });
  queue.addEventListener("rejected", ({ detail }) => {
    const reason = (detail.data && detail.data.detail) || `error ${detail.status}`;
    announce(`A vote was refused: ${reason}`);
  });
  queue.addEventListener("waiting", ({ detail }) => {
    // Votes stay in the outbox; the annotator only needs to sign in again, in another tab.
    $("#rate-signed-out").hidden = !detail.signedOut;
    renderProgress();
  });
  window.addEventListener("online", () => {
    renderProgress();
    if (!state.started) return;
    if (!state.current) advance();
    else prefetch();
  });
  window.addEventListener("offline", renderProgress);
  // Another tab of this campaign (the sign-in tab, say) may send the outbox they share.
  window.addEventListener("storage", (event) => {
    if (event.key !== queue.key) return;
    if (queue.size === 0) $("#rate-signed-out").hidden = true;
    renderProgress();
  });
  // Instructions: open on the first visit, then as the annotator last left them.
  const details = $("#rate-instructions");
  if (details) {
    const key = `${storagePrefix}.instructions`;
    details.open = localStorage.getItem(key) !== "closed";
    details.addEventListener("toggle", () => {
      localStorage.setItem(key, details.open ? "open" : "closed");
    });
  }
}

async function start() {
  state.history = loadHistory(); // before wire(): an outbox change would store an empty one
  wire();
  renderProgress();
  queue.flush();
  refreshProgress();
  // Resume the leases this annotator already holds (a reload), except those with a vote in
  // the outbox; the pair that was on screen comes first.
  let held = [];
  try {
    const { status, data } = await api.leases();
    if (status === 200) held = data;
  } catch {
    /* offline: lease anew when back */
  }
  const voted = new Set(queue.items().map((item) => item.lease));
  const onScreen = localStorage.getItem(`${storagePrefix}.current`);
  held = held.filter((task) => !voted.has(task.lease));
  held.sort((a, b) => (b.lease === onScreen) - (a.lease === onScreen));
  held.forEach(preloadTask);
  state.upcoming = held;
  state.started = true;
  await advance();
}

state.starting = start();
