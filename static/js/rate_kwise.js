// The best-of-K rating page: K images of one prompt in a grid (rate/grid.js) under one shared
// zoom; keys 1..K pick the best, or, in a rank-all campaign, pick again until every image has
// its place. Votes go through the same outbox as pairs (rate/queue.js: written to localStorage
// before they are sent, resent under the same client id until the server answers, so never
// lost and never counted twice). Keys: 1..K pick, U/Backspace undo (the last pick, else the
// last vote), S skip, 0 fit.

import { NetworkError, RateApi } from "./rate/api.js";
import { Grid } from "./rate/grid.js";
import { VoteQueue } from "./rate/queue.js";
import { SyncedView } from "./rate/zoom.js";

/** The pair API's client, sending a best-of-K vote's rankings (slots as displayed). */
class KwiseApi extends RateApi {
  vote(record, nextExclude) {
    const { client_id, lease, rankings, latency_ms } = record;
    const body = { client_id, lease, answers: {}, rankings, latency_ms };
    if (nextExclude) body.next = { exclude: nextExclude };
    return this.request("POST", "votes/", body);
  }
}

const cfg = JSON.parse(document.getElementById("rate-config").textContent);
const api = new KwiseApi(cfg.api);
const storagePrefix = `evalhub.rate.v1.${cfg.campaign}.${cfg.user}`;
const queue = new VoteQueue(api, `${storagePrefix}.outbox`);
const historyKey = `${storagePrefix}.history`;
const view = new SyncedView();
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const app = $("#rate-app");
const grid = new Grid($("#rate-stage"), view, cfg.osd);
const NEEDED = cfg.rank_all ? cfg.k - 1 : 1; // picks per vote (the last of a ranking is forced)
const UNDO_DEPTH = 20;

const state = {
  task: null,
  picks: [],
  drawn: false, // every image of the task is on screen: picks are taken from here on
  shownAt: 0,
  busy: false,
  done: false,
  history: loadHistory(), // [{client_id, task}] newest last: what undo takes back
  progress: null,
};

function loadHistory() {
  try {
    return JSON.parse(sessionStorage.getItem(historyKey) || "[]");
  } catch {
    return [];
  }
}

function saveHistory() {
  state.history = state.history.slice(-UNDO_DEPTH);
  sessionStorage.setItem(historyKey, JSON.stringify(state.history));
}

function announce(message) {
  $("#rate-status").textContent = message;
}

function render() {
  const open = state.drawn && !state.busy && !state.done;
  for (const button of $$(".grid-pick")) {
    button.disabled = !open || state.picks.includes(Number(button.dataset.slot));
  }
  for (const button of $$(".report-btn")) button.disabled = !state.task || state.done;
  $("#skip-btn").disabled = !state.task || state.done || state.busy;
  $("#undo-btn").disabled = state.picks.length === 0 && state.history.length === 0;
  app.classList.toggle("loading", !state.drawn && !state.done);
  // Read by the browser tests (tests/browser/pages.py): the task on screen, fully drawn.
  app.dataset.ready = state.drawn ? "1" : "0";
  app.dataset.lease = state.drawn ? state.task.lease : "";
  const pending = queue.size;
  $("#rate-pending").hidden = pending === 0;
  $("#rate-pending").textContent = `${pending} vote${pending === 1 ? "" : "s"} waiting to be sent`;
  if (state.progress) {
    const { my_votes: mine, remaining } = state.progress;
    $("#rate-count").textContent = state.done ? `${mine} votes · finished`
      : `${mine} votes · ${remaining} remaining`;
  }
}

function showDone(detail) {
  state.done = true;
  state.task = null;
  state.drawn = false;
  grid.clear();
  $("#rate-stage").hidden = true;
  $("#rate-done").hidden = false;
  $("#rate-done-message").textContent = detail || "";
  $("#rate-prompt").textContent = "";
  render();
}

async function showTask(task) {
  state.done = false;
  $("#rate-stage").hidden = false;
  $("#rate-done").hidden = true;
  state.task = task;
  state.picks = [];
  state.drawn = false;
  $("#rate-prompt").textContent = task.prompt;
  render();
  try {
    if (!(await grid.show(task.images))) return; // a newer task replaced this one
  } catch {
    announce("An image did not load: report it, or skip this task.");
    render();
    return;
  }
  if (state.task !== task) return;
  state.drawn = true;
  state.shownAt = performance.now();
  announce("");
  render();
}

/** Handle a next/ answer: a task, nothing left, or images still being prepared. */
async function takeNext(data) {
  if (data && data.lease) return showTask(data);
  if (data && data.done) return showDone(data.detail);
  announce((data && data.detail) || "Waiting for the next task");
  setTimeout(leaseNext, 2500);
  return undefined;
}

async function leaseNext() {
  state.task = null;
  state.drawn = false;
  render();
  // The leases of votes still in the outbox: the server does not know they are done yet.
  const exclude = () => queue.items().map((item) => item.lease);
  let next = await queue.nextWithVote(exclude);
  if (next === undefined) {
    try {
      const answer = await api.next(exclude());
      if (answer.status !== 200 && answer.status !== 201) {
        announce((answer.data && answer.data.detail) || "Could not get the next task");
        return;
      }
      next = answer.data;
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      announce("Offline: the next task comes when the connection is back");
      setTimeout(leaseNext, 5000);
      return;
    }
  }
  await takeNext(next);
}

function castVote() {
  const task = state.task;
  const record = {
    client_id: crypto.randomUUID(),
    lease: task.lease,
    rankings: { overall: [...state.picks] },
    latency_ms: Math.round(performance.now() - state.shownAt),
  };
  queue.add(record);
  state.history.push({ client_id: record.client_id, task });
  saveHistory();
  leaseNext();
}

function pick(slot) {
  if (!state.drawn || state.busy || state.done || slot >= cfg.k) return;
  if (state.picks.includes(slot)) return;
  state.picks.push(slot);
  grid.showPicks(cfg.rank_all && state.picks.length === NEEDED
    ? [...state.picks, [...Array(cfg.k).keys()].find((s) => !state.picks.includes(s))]
    : state.picks);
  if (state.picks.length >= NEEDED) {
    state.drawn = false; // no further pick lands on this task
    castVote();
  }
  render();
}

async function undo() {
  if (state.busy) return;
  if (state.picks.length > 0 && state.drawn) { // mid-ranking: take back the last pick
    state.picks.pop();
    grid.showPicks(state.picks);
    render();
    return;
  }
  const last = state.history.pop();
  saveHistory();
  if (!last) return;
  state.busy = true;
  render();
  try {
    if (queue.remove(last.client_id)) { // never sent: its lease is still ours
      await showTask(last.task);
      announce("Vote taken back");
      return;
    }
    await queue.idle();
    let answer;
    try {
      answer = await api.undo(last.client_id);
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      answer = { status: 0 };
    }
    if (answer.status === 201) {
      await showTask(answer.data);
      announce("Vote taken back");
    } else if (answer.status === 200) {
      announce(answer.data.detail);
    } else {
      state.history.push(last);
      saveHistory();
      announce(answer.status === 0 ? "Cannot undo while offline" : "Could not undo that vote");
    }
  } finally {
    state.busy = false;
    render();
  }
}

async function skip() {
  if (!state.task || state.busy) return;
  state.busy = true;
  render();
  try {
    await api.skip(state.task.lease);
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
  } finally {
    state.busy = false;
  }
  await leaseNext();
}

function openReport(slot) {
  if (!state.task) return;
  const dialog = $("#report-dialog");
  dialog.dataset.slot = String(slot);
  $("#report-side").textContent = String(slot + 1);
  $("#report-note").value = "";
  dialog.showModal();
}

async function sendReport() {
  const dialog = $("#report-dialog");
  const slot = dialog.dataset.slot;
  dialog.close();
  if (!state.task) return;
  const answer = await api.report(state.task.lease, slot, $("#report-note").value);
  announce(answer.status === 200 ? "Reported; thank you" : "Could not report that image");
  await leaseNext();
}

async function refreshProgress() {
  try {
    const answer = await api.campaign();
    if (answer.status === 200) state.progress = answer.data.progress;
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
  }
  render();
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if ($("#report-dialog").open) return;
  const digit = Number.parseInt(event.key, 10);
  if (digit >= 1 && digit <= cfg.k) {
    event.preventDefault();
    pick(digit - 1);
  } else if (event.key === "u" || event.key === "U" || event.key === "Backspace") {
    event.preventDefault();
    undo();
  } else if (event.key === "s" || event.key === "S") {
    event.preventDefault();
    skip();
  } else if (event.key === "0") {
    view.reset();
  }
}

function wire() {
  document.addEventListener("keydown", onKey);
  app.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.classList.contains("grid-pick")) pick(Number(target.dataset.slot));
    else if (target.classList.contains("report-btn")) openReport(Number(target.dataset.slot));
    else if (target.id === "skip-btn") skip();
    else if (target.id === "undo-btn") undo();
    else if (target.id === "zoom-reset") view.reset();
  });
  $("#report-send").addEventListener("click", (event) => {
    event.preventDefault();
    sendReport();
  });
  $("#report-cancel").addEventListener("click", () => $("#report-dialog").close());
  queue.addEventListener("change", render);
  queue.addEventListener("sent", ({ detail }) => {
    if (detail.data && detail.data.progress) state.progress = detail.data.progress;
    render();
  });
  queue.addEventListener("rejected", ({ detail }) => {
    announce((detail.data && detail.data.detail) || "A vote was refused");
  });
  queue.addEventListener("waiting", ({ detail }) => {
    announce(detail.signedOut ? "Signed out: your votes are kept until you sign in again"
      : "Offline: your votes are kept and sent when the connection is back");
  });
}

async function start() {
  wire();
  queue.flush(); // votes left in the outbox by an earlier visit
  await refreshProgress();
  let held = [];
  try {
    const answer = await api.leases();
    if (answer.status === 200) held = answer.data;
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
  }
  // A reloaded page resumes the task it showed (unless its vote still waits in the outbox).
  const voted = new Set(queue.items().map((item) => item.lease));
  const resume = held.find((task) => !voted.has(task.lease));
  if (resume) await showTask(resume);
  else await leaseNext();
}

start();
