// The annotator's rating page, for both task kinds: a pair (two panes, answers per criterion:
// rate/answers.js) or best of K (K panes in a grid, picks 1..K: rate/picks.js). One task on
// screen, the next one already leased, decoded and waiting behind it (rate/stage.js), votes
// written to a local outbox before they are sent. Votes count only on a task that is drawn.
// The answers given so far on a screen that takes several outlive a reload (rate/draft.js).
// See templates/campaigns/rate.html.
//
// The first task comes in the page itself (#rate-first: what next/ would answer, leased by the
// same service), so the first images are asked for before any API round trip; a tiled image's
// tiles for the view at fit are asked for before the tile viewer's script has arrived.
//
// The keypress that votes does only what the next frame needs (store the vote, swap the
// panes, the prompt); sending, the undo history, the progress line and the announcement
// follow once that frame is out (afterFrame).

import { PairAnswers } from "./rate/answers.js";
import { NetworkError, RateApi } from "./rate/api.js";
import { Draft } from "./rate/draft.js";
import { afterFrame } from "./rate/frame.js";
import { fitPicture, loadOpenSeadragon, warmFitTiles } from "./rate/images.js";
import { Picks } from "./rate/picks.js";
import { VoteQueue } from "./rate/queue.js";
import { Stage, gridItems, pairItems } from "./rate/stage.js";
import { VideoStage, isVideoTask } from "./rate/video.js";
import { SyncedView, formatScale } from "./rate/zoom.js";

const cfg = JSON.parse(document.getElementById("rate-config").textContent);
const first = JSON.parse(document.getElementById("rate-first").textContent);
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const app = $("#rate-app");
const grid = cfg.kind === "best_of_k";
const items = grid ? gridItems : pairItems;
const TASK = grid ? "task" : "pair"; // in messages
warmFirst(); // before anything else: the first tiles are the longest wait of the first load

const api = new RateApi(cfg.api);
const storagePrefix = `evalhub.rate.v1.${cfg.campaign}.${cfg.user}`;
const queue = new VoteQueue(api, `${storagePrefix}.outbox`);
const historyKey = `${storagePrefix}.history`;
/** What each place of the screen shows for `task`: the images' URLs in display order. A lease
 * fixes the sides and the order, and an undo hands its pair back shown alike. */
const layout = (task) => items(task).map(([, image]) => (image ? image.url : ""));
// The answers given so far on the screen on show, per tab, for a reload in its middle: the
// layout tells whether the task comes back shown alike.
const draft = new Draft(`${storagePrefix}.draft`, layout);
const view = new SyncedView();
const criteria = cfg.criteria.map((c) => c.key);
const root = $("#rate-stage");
// Videos (items with `video`: a pair and its source, or the grid's K) play in the same panes,
// in sync, with one playback bar heading the answers; images go to Stage.
const stage = new VideoStage(root, view, new Stage(root, view, cfg.osd, items),
                             $(".rate-answers", app), { items });
const input = grid ? new Picks(app, { k: cfg.k, rankAll: cfg.rank_all, criterion: criteria[0] })
  : new PairAnswers(app, criteria);

const UNDO_DEPTH = 20;
// While the campaign's large images (their tiles or display copies) or videos are prepared.
const PREPARING_POLL_MS = 2500;
const SLOW_MS = 100; // a pair not drawn by then shows as loading (buttons greyed, spinner)
// A vote or skip this soon after a task is drawn is a second press meant for the task before
// (a double tap, a bouncing key: the prefetched task is drawn within a frame), never a
// judgment of this one; it is ignored (EVALHUB_RATE_INPUT_GUARD_MS, far below the fast-vote
// floor). Measured from the press (the event's timeStamp), not from when the handler ran: a
// renderer busy decoding the next images can run a press 40 ms after the draw well past the
// guard, and the second press of a double tap then voted on the task behind.
const GUARD_MS = Number(cfg.input_guard_ms) || 0;
const NOT_OPEN = "campaign_not_open"; // the API's code for a paused or closed campaign
// Campaign states that never open again (CampaignStatus): the page says the campaign is over,
// and offers no reload. A paused one (or one not opened yet) may open: a reload then resumes.
// A campaign deleted while its page was open, or no longer the annotator's (removed from its
// project): the API's 404 code, kept as the campaign's status; it never opens again either.
const GONE = "campaign_not_found";
const OVER = new Set(["closed", "failed", GONE]);
// The API's code (with done false) when every task left for this annotator is leased to
// someone else now: not finished, a task comes back when its lease ends (asked again later).
const NOTHING_FREE = "nothing_free";
// The API's code for a vote that was undone: an undo of it answers 400 with it (undone by an
// earlier undo whose answer was lost, or before a reload), a vote resent under its id 409.
const VOTE_UNDONE = "vote_undone";

const state = {
  current: null, // task payload on screen
  upcoming: [], // leased tasks, preloaded, waiting their turn
  history: [], // [{clientId, task}] votes cast here, newest last, for undo (kept in storage)
  ready: false, // the pair is drawn: votes count from here
  broken: false, // a pane failed to load: only skip, report and retry
  slowTimer: null,
  shownAt: 0,
  progress: null, // {my_votes, remaining} as the server last said
  progressAt: -1, // when that answer was asked for: an older answer arriving late is ignored
  campaignStatus: null, // the campaign's status as last read (CampaignStatus), for messages
  prefetching: null,
  prefetchRetry: 0,
  prefetchTimer: null,
  done: null, // server's "nothing left" message
  waiting: null, // server's "nothing free right now" message (others hold what is left)
  notOpen: false, // the campaign answered paused or closed: the page stops (until a reload)
  preparing: null, // {done, total} while the campaign's large images are being prepared
  dismissed: new Set(), // leases skipped or reported here: never shown again, even if the
  // server has not processed the skip yet (it would hand the lease back as "held")
  started: false, // the leases held before a reload are known: safe to lease more
  advancing: null, // the advance() in progress: two at once would show two pairs in turn
  starting: null, // start() until the first pair is up: an undo right after a reload waits
  settling: null, // settleWithdrawn() while it runs
  undoing: new Set(), // the vote ids whose undo this page is asking for now (undo())
};

/** The first task's tiles for the view at fit, and the tile viewer's script, asked for now
 * (the panes are laid out: module scripts run once the page's style sheets are in). */
function warmFirst() {
  if (!first || !first.lease) return;
  // The panes' size as the task will be shown: its prompt (one line or two) and its source
  // pane change it.
  $("#rate-prompt").textContent = first.prompt;
  app.classList.toggle("has-source", Boolean(first.source_image));
  if (first.source_image) $("#rate-stage .pane-source").hidden = false;
  const panes = Object.fromEntries($$("#rate-stage .pane").map((el) => [el.dataset.side, el]));
  let viewerFirst = false;
  for (const [side, image] of items(first)) {
    if (!image || !image.tiles || image.video || !panes[side]) continue;
    const view = panes[side].querySelector(".pane-view");
    warmFitTiles(image, view);
    // A pane drawn from its fit picture opens the viewer only after the pair is drawn (stage.js):
    // its 350 kB script would otherwise be parsed while the first pictures decode.
    if (!fitPicture(image.pyramid, view.clientWidth, view.clientHeight)) viewerFirst = true;
  }
  if (viewerFirst) loadOpenSeadragon(cfg.osd).catch(() => {}); // a failure shows in its pane
}

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
  // "remaining" counts the campaign's judgments still needed from anyone, not what this
  // annotator can still give (one vote per task): "in the campaign" says so, and the tooltip
  // says it is approximate (the server's count is up to a few seconds old, and other
  // annotators vote meanwhile). Short, so that it leaves the prompt its width and fits one line
  // of a phone. Once nothing is left for this annotator it would read as work still to do
  // here: "finished" instead.
  const finished = state.done && !state.notOpen; // not open: nothing done, only paused
  const remaining = finished ? 0 : Math.max(0, state.progress.remaining - pending);
  const votes = `${mine.toLocaleString("en")} vote${mine === 1 ? "" : "s"} by you`;
  const count = $("#rate-count");
  setText(count, `${votes} · ${finished ? "finished"
    : state.notOpen ? (campaignOver() ? "campaign over" : "campaign not open")
      : `${remaining.toLocaleString("en")} left in the campaign`}`);
  count.title = finished || state.notOpen ? ""
    : "About how many judgments the whole campaign still needs, from all annotators (each "
      + `of them rates a ${TASK} once), as last counted: not how many you can still give.`;
  const bar = $("#rate-bar");
  bar.max = mine + (state.notOpen ? state.progress.remaining : remaining) || 1;
  bar.value = finished ? bar.max : mine;
}

/** "ready" (drawn: every action), "loading" (no action but undo) or "broken" (a pane failed:
 * skip, report, retry). Input follows at once; the buttons look disabled only when loading
 * lasts SLOW_MS, so a prefetched pair (drawn in the next frame) restyles nothing. */
function setInput(mode) {
  state.ready = mode === "ready";
  state.broken = mode === "broken";
  const flag = state.ready ? "1" : "0";
  if (app.dataset.ready !== flag) app.dataset.ready = flag; // tests wait for "drawn"
  clearTimeout(state.slowTimer);
  if (mode === "loading") state.slowTimer = setTimeout(renderInput, SLOW_MS);
  else renderInput();
}

function renderInput() {
  const focused = document.activeElement; // before any button it may be is disabled
  const loading = !state.ready && !state.broken && !state.done && !state.preparing
    && !state.waiting;
  if (app.classList.contains("loading") !== loading) app.classList.toggle("loading", loading);
  input.render(state.ready);
  for (const button of $$("#skip-btn, .report-btn, .error-report-btn", app)) {
    setDisabled(button, !(state.ready || state.broken));
  }
  // Undo takes back a pick or answer of the vote in progress (as U does), else the last vote.
  setDisabled($("#undo-btn"), state.history.length === 0 && !(state.current && input.pending()));
  keepFocus(focused);
}

/**
 * Focus on a button just disabled (a rank pick, an undo with nothing left to undo, a vote
 * while the next task loads) would drop to the body: a keyboard or screen-reader user would
 * start over from the top of the page. It moves on instead: to the next Pick button still
 * available (from the first again), else to the stage, else (nothing shown) the status line.
 */
function keepFocus(was) {
  if (!was || !was.disabled || !app.contains(was)) return;
  const picks = $$(".grid-pick", app).filter((button) => !button.disabled
                                              && button.offsetParent !== null);
  const next = picks.find((button) => (
    was.compareDocumentPosition(button) & Node.DOCUMENT_POSITION_FOLLOWING));
  const stage = $("#rate-stage");
  const target = next || picks[0] || (stage.hidden ? $("#rate-status") : stage);
  const byMouse = was === clicked;
  target.focus({ preventScroll: true });
  // Moved by the page, not the annotator: a mouse press's focus stays one (onKey), or Space
  // would pick the next image unseen.
  if (byMouse) clicked = target;
}

/** What a pick, an answer or its undo changed, said to screen readers ("Image 3 ranked 1st",
 * "Rank 2 undone"); the input says it, if it has anything to say. */
function announceInput() {
  const news = input.announcement();
  if (news) announce(news);
}

function setDisabled(button, disabled) {
  if (button.disabled !== disabled) button.disabled = disabled;
}

function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
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

/** A vote the server did not store leaves the undo history: an undo of it would be refused,
 * and would block every older one. */
function forgetVote(clientId) {
  state.history = state.history.filter((entry) => entry.clientId !== clientId);
  saveHistory();
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

/** Put `task` on screen; input counts once both images are drawn. */
async function showTask(task) {
  setInput("loading");
  state.current = task;
  app.dataset.lease = task.lease;
  notDone();
  notWaiting();
  input.reset();
  // Answers given on this very task before a reload come back, shown as answered.
  const kept = draft.read(task);
  if (kept && !input.restore(kept)) draft.clear();
  showPrompt(task.prompt);
  const hasSource = Boolean(task.source_image);
  if (app.classList.contains("has-source") !== hasSource) {
    app.classList.toggle("has-source", hasSource);
  }
  setHidden($("#rate-done"), true);
  setHidden($("#rate-preparing"), true);
  setHidden($("#rate-stage"), false);
  const failed = await stage.show(task);
  if (failed === null || state.current !== task) return; // an undo or skip replaced it
  afterFrame(() => {
    if (state.current === task) localStorage.setItem(`${storagePrefix}.current`, task.lease);
  });
  if (failed.length) {
    showBroken(failed);
    return;
  }
  state.shownAt = performance.now();
  setInput("ready");
  prepareNext();
}

/** The prompt, scrolled to its start; one too long for its lines is marked (a fade at the
 * bottom until it is scrolled to its end), after the frame that shows the task. */
function showPrompt(text) {
  const prompt = $("#rate-prompt");
  if (prompt.textContent !== text) prompt.textContent = text; // the first: set by warmFirst
  prompt.scrollTop = 0;
  afterFrame(() => {
    prompt.classList.toggle("clipped", prompt.scrollHeight > prompt.clientHeight + 1);
    prompt.classList.remove("read-to-end");
  });
}

/** How the page names a pane: "left", "right", "source"; best of K: "3" for slot 2. */
function paneName(side) {
  return grid && side !== "source" ? String(Number(side) + 1) : side;
}

function showBroken(failed) {
  setInput("broken");
  const noun = isVideoTask(state.current, items) ? "video" : "image";
  const what = grid ? `${noun[0].toUpperCase()}${noun.slice(1)} ${failed.map(paneName).join(" and ")}`
    : `The ${failed.join(" and ")} ${noun}`;
  announce(`${what} did not load: retry, report it, or skip`);
}

/** A pane's Retry: load it again; votes count once every pane is drawn. */
async function retryPane(side) {
  const task = state.current;
  if (!task || !state.broken) return;
  const ok = await stage.retry(side);
  if (state.current !== task || !ok) return;
  if (await stage.allDrawn() && state.current === task && !state.ready) {
    state.shownAt = performance.now();
    setInput("ready");
    prepareNext();
  }
}

/** Put the next task's images behind the current ones, once the current pair is drawn (so
 * its frame is not kept waiting for them). */
function prepareNext() {
  if (!state.ready || !state.upcoming.length) return;
  stage.prepare(state.upcoming[0]);
}

/** A request the server refused: a paused or closed campaign stops the page (nothing can be
 * rated until it reopens); anything else is said and rating goes on. */
function refused(data, message) {
  if (data && (data.code === NOT_OPEN || data.code === GONE)) {
    showDone(data.detail, data.code);
  } else {
    announce(message);
    prefetch();
  }
}

function showDone(message, code) {
  state.current = null;
  state.preparing = null;
  notWaiting();
  const stops = code === NOT_OPEN || code === GONE;
  state.upcoming = stops ? [] : state.upcoming;
  state.notOpen = stops;
  if (code === GONE) state.campaignStatus = GONE;
  state.done = message || "Nothing left to rate in this campaign for you. Thank you!";
  app.dataset.done = "1";
  showPanel(doneMessage());
  closeAutoInstructions();
  // Whether the campaign may open again (paused) or is over decides the title and whether a
  // reload is worth suggesting: its status comes with the campaign's answer (start() asks for
  // it anyway).
  if (state.notOpen && state.started) refreshProgress();
}

/** The done panel's title, and its message: the server's, and for a campaign that may open
 * again (paused, or not opened yet) the way back. */
function doneMessage() {
  let title = "You have rated everything in this campaign";
  let message = state.done;
  if (state.notOpen) {
    const status = state.campaignStatus;
    if (status === GONE) {
      message = "It was deleted, or you are no longer a member of its project.";
    }
    title = status === GONE ? "This campaign is no longer available" : campaignOver() ? "This campaign is over"
      : status === "paused" ? "This campaign is paused" : "This campaign is not open for rating";
    // Unknown until the campaign's answer comes: no advice rather than a wrong one.
    if (status && !campaignOver()) message += " Reload this page once the campaign is open.";
  }
  setText($("#rate-done-title"), title);
  return message;
}

/** Whether the campaign's status, as last read, is one that never opens again. */
function campaignOver() {
  return OVER.has(state.campaignStatus);
}

/** The done panel (its title set by the caller) in place of a task: finished, not open, or
 * waiting. No prompt, no "Waiting for the next pair" status, and Undo of the last vote live at
 * once (nothing is to be drawn). */
function showPanel(message) {
  app.dataset.lease = "";
  stage.clear();
  setHidden($("#rate-stage"), true);
  setHidden($("#rate-preparing"), true);
  setText($("#rate-done-message"), message);
  setHidden($("#rate-done"), false);
  showPrompt("");
  setHidden($(".rate-prompt-label", app), true);
  $("#rate-status").textContent = "";
  setInput("loading");
  clearTimeout(state.slowTimer);
  renderInput();
  renderProgress();
}

/** Back from the finished state (an undo put a pair on screen again). */
function notDone() {
  if (!state.done) return;
  state.done = null;
  state.notOpen = false;
  setHidden($(".rate-prompt-label", app), false);
  delete app.dataset.done;
  renderProgress();
}

/** Nothing free right now: every task left for this annotator is leased to someone else (a
 * closed tab holds its tasks until their leases end). Not finished: the page says so and asks
 * again (prefetchLater) until a task comes back or nothing is left. */
function showWaiting(message) {
  state.current = null;
  notDone(); // no longer finished: a pair may come back (one undone elsewhere, say)
  // Votes that cannot be sent keep their pairs leased to this page, up to the server's cap:
  // then the wait is for the network, not for other annotators.
  const sending = queue.size > 0;
  state.waiting = sending
    ? `Your last ${queue.size === 1 ? "vote is" : `${queue.size} votes are`} not sent yet (no `
      + `connection?); the next ${TASK} comes once ${queue.size === 1 ? "it is" : "they are"} `
      + "through. Nothing is lost: this page keeps them and sends them by itself."
    : `${message || "Every task left for you is being rated by someone else right now."}`
      + " This page checks again by itself.";
  app.dataset.waiting = "1";
  setText($("#rate-done-title"), sending ? "Sending your votes"
    : `No ${TASK} free to rate right now`);
  showPanel(state.waiting);
}

/** A task arrived (or the page finished): the waiting message goes. */
function notWaiting() {
  if (!state.waiting) return;
  state.waiting = null;
  delete app.dataset.waiting;
  setHidden($("#rate-done"), true);
  setHidden($(".rate-prompt-label", app), false);
}

/** The campaign's large images or videos are being prepared: nothing is served till then. */
function showPreparing(preparing, detail) {
  state.preparing = preparing;
  if (state.current) return; // a pair leased before is still rated meanwhile
  notWaiting();
  app.dataset.preparing = "1";
  const done = Math.max(0, Number(preparing.done) || 0);
  const total = Math.max(done, Number(preparing.total) || 0);
  setHidden($("#rate-stage"), true);
  setHidden($("#rate-done"), true);
  setHidden($("#rate-preparing"), false);
  setText($("#rate-preparing-message"),
          total ? `Preparing ${cfg.medium}s ${done} of ${total}`
                : (detail || `Preparing ${cfg.medium}s`));
  const bar = $("#rate-preparing-bar");
  bar.max = total || 1;
  bar.value = done;
  setInput("loading");
}

function notPreparing() {
  if (!state.preparing) return;
  state.preparing = null;
  delete app.dataset.preparing;
  setHidden($("#rate-preparing"), true);
}

// ---------------------------------------------------------------- leasing ahead

/** What an answer of next/ (or a vote's `next`) means: a task, {done, detail},
 * {preparing, detail} while the campaign's images are being prepared, or null. */
function nextResult(data) {
  if (!data || typeof data !== "object") return null;
  if (data.lease) return data;
  if (data.preparing) return { preparing: data.preparing, detail: data.detail };
  if (data.code === NOTHING_FREE) return { waiting: true, detail: data.detail };
  if (data.done) return { done: true, detail: data.detail, code: data.code };
  return null;
}

/** Lease one more task; returns a task, {done, detail}, {preparing, detail}, {waiting,
 * detail} (nothing free now), or null when the network failed. */
async function leaseNext() {
  // Right after a vote, the vote's own request brings the next task.
  const viaVote = nextResult(await queue.nextWithVote(knownLeases));
  if (viaVote) return viaVote;
  try {
    const { status, data } = await api.next(knownLeases());
    if (status === 201 || status === 200) return nextResult(data);
    if (status === 400 && data) return { done: true, detail: data.detail, code: data.code };
    if (status === 404 && data && data.code === GONE) {
      return { done: true, detail: data.detail, code: GONE };
    }
    return null;
  } catch (error) {
    if (error instanceof NetworkError) return null;
    throw error;
  }
}

/** Keep one task ready behind the current one. */
function prefetch() {
  if (state.notOpen) return null; // paused or closed: nothing is served until a reload
  if (state.prefetching || state.upcoming.length > 0) return state.prefetching;
  state.prefetching = (async () => {
    const result = await leaseNext();
    state.prefetching = null;
    if (state.notOpen) return null; // leased before the refusal came back: not shown
    if (result && result.lease) {
      notPreparing();
      if (!knownLeases().includes(result.lease)) state.upcoming.push(result);
      state.prefetchRetry = 0;
      if (!state.current && state.started) advance(); // the page was waiting for it
      else if (state.upcoming[0] === result) prepareNext();
    } else if (result && result.preparing) {
      showPreparing(result.preparing, result.detail);
      prefetchLater(PREPARING_POLL_MS);
    } else if (result && result.waiting) {
      // Others hold what is left: asked again, less and less often (their leases end).
      if (!state.current) showWaiting(result.detail);
      prefetchLater();
    } else if (result && !state.current && queue.size === 0) {
      showDone(result.detail, result.code);
    } else {
      // Offline, or "nothing now" while votes or a skip are still on their way (they hold
      // lease slots on the server), or until another annotator releases a task.
      prefetchLater();
    }
    return result;
  })();
  return state.prefetching;
}

/** One pending retry at a time, less and less often (the online event retries at once);
 * `delay` when given (polling while images are prepared). */
function prefetchLater(delay = Math.min(30000, 1000 * 2 ** state.prefetchRetry++)) {
  if (state.prefetchTimer) return;
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
  if (state.notOpen) return;
  state.upcoming = state.upcoming.filter(notExpired);
  let task = state.upcoming.shift();
  if (!task) {
    state.current = null;
    setInput("loading");
    const result = state.prefetching ? await state.prefetching : await leaseNext();
    task = state.upcoming.shift() || (result && result.lease ? result : null);
    if (state.notOpen) return; // the campaign was found paused or closed meanwhile
    if (!task) {
      if (result && result.preparing) {
        showPreparing(result.preparing, result.detail);
        prefetchLater(PREPARING_POLL_MS); // prefetch() calls advance() when it gets one
      } else if (result && result.waiting) {
        showWaiting(result.detail);
        prefetchLater(); // prefetch() calls advance() when it gets one
      } else if (result && result.done && queue.size === 0) {
        showDone(result.detail, result.code);
      } else {
        // Done but votes still to send: they may be refused and their pairs come back.
        announce(result && result.done ? "Sending your last votes…" : `Waiting for the next ${TASK}…`);
        prefetchLater(); // prefetch() calls advance() when it gets one
      }
      return;
    }
  }
  notPreparing();
  const shown = showTask(task);
  // The page's own first task: its images have the connections to themselves until drawn.
  if (task === first) await shown;
  prefetch();
  await shown;
}

// ---------------------------------------------------------------- actions

/** `at`: when the press that completed the vote happened (performance.now()'s clock). */
function castVote(at) {
  const task = state.current;
  const record = {
    client_id: crypto.randomUUID(),
    lease: task.lease,
    ...input.fields(), // answers (pairs), rankings (best of K)
    latency_ms: Math.max(0, Math.round(at - state.shownAt)),
  };
  queue.add(record); // stored locally (durable from here on); sent after the next frame
  draft.clear(); // the answers are the vote's now
  state.history.push({ clientId: record.client_id, task });
  state.history = state.history.slice(-UNDO_DEPTH);
  advance();
  afterFrame(() => {
    saveHistory();
    // The next task's panes failing to load is the news then, not this vote.
    if (!state.broken) announce(input.describe(record));
    renderProgress();
  });
}

/** The task on screen gives way to the next when its lease is among `closed`: a late vote
 * answered the same task (the `sent` listener), and a vote on it would not count. After the
 * task being put up, if any, is up. */
async function leaveClosed(closed) {
  if (state.advancing) await state.advancing;
  if (!state.current || !closed.includes(state.current.lease)) return;
  draft.clear(); // answers begun on screen were for the task just answered
  announce(`Your earlier vote on this ${TASK} counted`);
  await advance();
}

/** When an input event happened, on performance.now()'s clock (its timeStamp; now for one
 * without). */
function pressedAt(event) {
  return Number(event && event.timeStamp) || performance.now();
}

/** Whether a press at `at` came less than GUARD_MS after the task on screen was drawn (or
 * before it: a press queued behind the draw was meant for the task before; see GUARD_MS). */
function tooSoon(at) {
  return state.ready && at - state.shownAt < GUARD_MS;
}

/** One answer (pairs) or pick (best of K), pressed at `at`; the vote is cast once it is
 * complete. */
function take(action, at) {
  if (!state.ready || !state.current || tooSoon(at)) return;
  if (input.take(action)) castVote(at);
  else {
    renderInput(); // the answers shown, and Undo live for the pick just taken
    keepDraft();
    announceInput();
  }
}

/** Keep the screen's answers so far for a reload (rate/draft.js), or none once none is left
 * (all taken back). */
function keepDraft() {
  const choices = input.choices();
  if (choices) draft.save(state.current, choices);
  else draft.clear();
}

/** Take back the last answer (or pick) of the vote in progress on screen; false when it has
 * none. Answers restored after a reload show before the task is drawn: they count alike. */
function undoAnswer() {
  if (!state.current || !input.undo()) return false;
  renderInput();
  keepDraft();
  announceInput();
  return true;
}

async function undo() {
  // A vote in progress: U takes back its last answer or pick, not the last vote.
  if (undoAnswer()) return;
  await state.starting; // resuming after a reload would otherwise cover the undone pair
  if (state.advancing) await state.advancing; // let the pair being put up settle first
  if (undoAnswer()) return; // the task resumed after a reload came with answers
  const last = state.history.pop();
  if (!last) {
    announce("Nothing to undo");
    return;
  }
  // Stored before asking the server: a reload mid-request must not offer this vote again
  // (undone twice, the server refuses, and the entry would block every older one).
  saveHistory();
  const before = state.ready ? "ready" : state.broken ? "broken" : "loading";
  setInput("loading");
  // A vote still in the outbox and never sent is simply taken back: the server never saw it.
  // One sent at least once may be stored there with its answer lost: withdrawn (the outbox
  // never sends it again), it is undone on the server by its id, after a send on the wire
  // has landed or failed.
  const taken = queue.withdraw(last.clientId);
  if (taken !== "dropped") {
    state.undoing.add(last.clientId); // settleWithdrawn leaves it to this undo
    let back;
    try {
      if (taken === "withdrawn") await queue.idle();
      back = await undoOnServer(last, before);
    } finally {
      state.undoing.delete(last.clientId);
    }
    if (!back) return;
    last.task = back;
  }
  if (state.current) state.upcoming.unshift(state.current);
  renderProgress();
  announce("Vote undone");
  await showTask(last.task);
}

/**
 * Undo the vote of history entry `last` on the server, by its id: one the server answered
 * for, or one withdrawn from the outbox (sent, maybe stored, its answer lost). Returns the task
 * to show again; null when there is none (the page said why and gave back the input it had,
 * `before`), or the page stopped.
 */
async function undoOnServer(last, before) {
  let answer;
  try {
    // A lost answer is asked again: if the server undid the vote, it now says so
    // (VOTE_UNDONE) instead of leaving the entry to block every older one.
    answer = await sendWithRetry(() => api.undo(last.clientId));
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    answer = { status: 0, data: null };
  }
  const { status, data } = answer;
  // The refusal's code: "" for "no vote of yours has this id".
  const refusal = status === 400 && data ? data.code || "" : null;
  const stillWithdrawn = queue.has(last.clientId);
  const resume = () => {
    if (state.current && before !== "loading") setInput(before);
  };
  if (status === 200 || status === 201 || refusal === VOTE_UNDONE || refusal === "") {
    // Settled on the server (undone now or before, or never stored): never sent again.
    queue.drop(last.clientId);
  }
  if (status === 201) {
    refreshProgress();
    return data; // a fresh lease on the same pair, same sides
  }
  if (status === 200) {
    // Retracted, with no lease back: another annotator holds the task now (it comes
    // back later), or it is a retired set (asked of nobody). The server's words say which.
    refreshProgress();
    announce(data.detail);
    resume();
    return null;
  }
  if (refusal === "") {
    // A withdrawn vote the server does not have never arrived: its lease is still this
    // annotator's, and its pair comes back as a vote never sent would.
    if (stillWithdrawn && last.task) return last.task;
    // Not one of the annotator's votes (refused after all): it can never be undone, and
    // kept, it would block every older one.
    announce("That vote did not count: nothing to undo");
    resume();
    return null;
  }
  if (refusal === NOT_OPEN) {
    // Paused or closed: nothing is undone; the page stops as a refused vote stops it.
    // The entry stays, for an undo once a paused campaign is open again; a withdrawn vote is
    // not sent meanwhile (that undo, by its id, finds it stored or not).
    queue.drop(last.clientId);
    state.history.push(last);
    saveHistory();
    showDone(data.detail, NOT_OPEN);
    return null;
  }
  if (refusal === VOTE_UNDONE) {
    // Undone already, by an undo whose answer was lost: the entry goes (the next U takes
    // back the vote before it), and the pair that undo handed back, held for this
    // annotator but unknown here, is shown as if its answer had come.
    refreshProgress();
    const back = last.task ? await heldBack(last.task) : null;
    if (!back) {
      // Its pair comes with the leases held (a reload resumed them), is held by someone
      // else, or is not known here (the history keeps only ids across a reload).
      announce("That vote was undone already");
      resume();
    }
    return back;
  }
  // Offline, or the server failing: nothing is undone as far as the page knows. A withdrawn
  // vote goes back to the outbox, to be sent again (under its id: stored once at most).
  queue.restore(last.clientId);
  state.history.push(last);
  saveHistory();
  announce(status === 0 ? "Cannot undo while offline" : "Could not undo that vote");
  resume();
  return null;
}

/**
 * Undo, by its id, every vote withdrawn from the outbox whose undo was never answered (the
 * page was reloaded or closed meanwhile): the annotator asked for it, and it may be stored.
 * Settled votes leave the outbox; on a paused or closed campaign the vote's entry goes back
 * into the undo history, for an undo once it is open again. Offline: tried again when back
 * online and at the next load.
 */
function settleWithdrawn() {
  if (state.settling) return state.settling;
  const left = () => queue.withdrawn().filter((record) => !state.undoing.has(record.client_id));
  if (!left().length) return Promise.resolve();
  state.settling = (async () => {
    for (const record of left()) {
      let answer;
      try {
        answer = await sendWithRetry(() => api.undo(record.client_id));
      } catch (error) {
        if (error instanceof NetworkError) return;
        throw error;
      }
      const { status, data } = answer;
      if (status === 400 && data && data.code === NOT_OPEN) {
        state.history.push({ clientId: record.client_id });
        saveHistory();
      } else if (!(status === 200 || status === 201 || status === 400)) {
        return;
      }
      queue.drop(record.client_id);
    }
    refreshProgress();
  })().finally(() => {
    state.settling = null;
  });
  return state.settling;
}

/** The pair an undo handed back when its answer was lost: a task leased to this annotator,
 * unknown to the page, shown as `voted` was. null when there is none, or offline. */
async function heldBack(voted) {
  try {
    const { status, data } = await api.leases();
    if (status !== 200 || !Array.isArray(data)) return null;
    const known = new Set(knownLeases());
    const shown = layout(voted).join("\n");
    return data.find((task) => task && task.lease && !known.has(task.lease)
                     && layout(task).join("\n") === shown) || null;
  } catch (error) {
    if (error instanceof NetworkError) return null;
    throw error;
  }
}

/** Retry a one-off request (skip, report, undo) through brief outages and 5xx answers. */
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

async function skip(at) {
  if (!(state.ready || state.broken) || !state.current || tooSoon(at)) return;
  const lease = state.current.lease;
  state.dismissed.add(lease);
  draft.clear();
  announce("Skipped");
  // Lease the next one only once the skip freed its slot (the server caps leases held).
  const sent = sendWithRetry(() => api.skip(lease)).then(
    ({ status, data }) => {
      if (status === 200) prefetch();
      else refused(data, `Skip refused: ${(data && data.detail) || `error ${status}`}`);
    },
    () => announce(`Skip not sent (offline); the ${TASK} will come back later`));
  advance();
  await sent;
}

function openReport(side) {
  if (!(state.ready || state.broken) || !state.current) return;
  const dialog = $("#report-dialog");
  dialog.dataset.side = side;
  $("#report-side").textContent = paneName(side);
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
  draft.clear();
  const sent = sendWithRetry(() => api.report(lease, side, note)).then(
    ({ status, data }) => {
      if (status !== 200) {
        refused(data, `Report failed: ${(data && data.detail) || `error ${status}`}`);
        return;
      }
      announce(`Thanks, the ${cfg.medium} was reported`);
      prefetch();
    },
    () => announce("Report not sent (offline)"),
  );
  advance();
  await sent;
}

/** The zoom as screen pixels per image pixel ("1:1 (100%)"); per side when the two images
 * differ in size. */
function renderZoom() {
  const scales = view.scales();
  if (!scales.length) return;
  const texts = [...new Set(scales.map(formatScale))];
  const text = texts.length === 1 ? texts[0]
    : view.panes.map((pane, i) => `${paneName(pane.el.closest(".pane").dataset.side)} ${formatScale(scales[i])}`).join(" · ");
  const level = $("#zoom-level");
  setText(level, text);
  // The zoom over fit, for scripts and tests: the read-out depends on the images' sizes.
  const overFit = String(Math.round(view.state.zoom * 1e4) / 1e4);
  if (level.dataset.zoom !== overFit) level.dataset.zoom = overFit;
}

/**
 * Take the server's {my_votes, remaining}, unless an answer asked for later came first. After
 * one of this annotator's votes (`voted`), the campaign's remaining count is at most one less
 * than before it: the server's count may have been read from a cache filled before the vote
 * (another server process's, for a few seconds), and a count that stays put after a vote reads
 * as a vote not counted. (A vote on a gold pair, which the campaign's count leaves out and
 * the page cannot tell apart, lowers it by one too: "about"; a reload or an undo counts anew.)
 */
function applyProgress(progress, askedAt, voted = false) {
  if (!progress || askedAt < state.progressAt) return;
  const before = state.progress;
  state.progress = voted && before
    ? { ...progress, remaining: Math.min(progress.remaining, Math.max(0, before.remaining - 1)) }
    : progress;
  state.progressAt = askedAt;
  renderProgress();
}

async function refreshProgress() {
  const askedAt = performance.now();
  try {
    const { status, data } = await api.campaign();
    if (status === 200) {
      const news = state.campaignStatus !== data.status;
      state.campaignStatus = data.status;
      if (news && state.notOpen) setText($("#rate-done-message"), doneMessage());
      applyProgress(data.progress, askedAt);
      if (data.preparing && !state.current) showPreparing(data.preparing);
    }
  } catch {
    /* offline: keep the last numbers */
  }
}

// ---------------------------------------------------------------- wiring

// What Space and Enter activate when focused: the browser's, never a shortcut (Space is the
// videos' play/pause), or a keyboard user could not press a button on a video page.
const ACTIVATED = "button, a[href], summary, [role=button], input[type=checkbox], "
  + "input[type=radio]";

let clicked = null; // the control a pointer pressed, while it keeps the focus (onKey)

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // A sheet (instructions, report) is open: its own keys only, never a vote behind it.
  if (document.querySelector("dialog[open]")) return;
  // A target inside a dialog is stale focus: a dialog closes with focus still on its button
  // (or note), and the browser moves it to the body only a task later (when nothing had focus
  // before it opened, as for the first-visit sheet). A key pressed in that window is the
  // page's: ignoring it lost the first vote after "Start rating".
  const stale = event.target.closest("dialog");
  // The shortcuts' own switch is no field: keys work again right after it is turned on.
  if (!stale && event.target.closest("input, textarea, select")
      && event.target.id !== "keys-toggle") return;
  // A control last pressed with the mouse keeps the focus, unseen: Space or Enter never
  // presses it again (that press was the vote, skip or pick of the task before, or the
  // switch's own change). Space is then the videos' play/pause, and does nothing on images.
  if (!stale && event.target === clicked && (event.key === " " || event.key === "Enter")) {
    event.preventDefault();
    if (event.key === " " && shortcutsOn()) stage.key(" ");
    return;
  }
  if (!stale && (event.key === "Enter" || event.key === " ")
      && event.target.closest(ACTIVATED)) return;
  if (!shortcutsOn()) return; // turned off: only the buttons act
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  let handled = true;
  const action = input.fromKey(key);
  // A key held down repeats: one press is one vote, skip or undo (a held "." still steps).
  if (event.repeat && (action || ["s", "u", "Backspace"].includes(key))) {
    event.preventDefault();
    return;
  }
  if (action) take(action, pressedAt(event));
  else if (key === "?" && $("#rate-instructions")) $("#rate-instructions").showModal();
  else if (key === "s") skip(pressedAt(event));
  else if (key === "u" || key === "Backspace") undo();
  else if (key === "0") view.reset();
  else if (key === "n") view.native();
  else if (!stage.key(key)) handled = false; // a video pair's playback keys
  if (handled) event.preventDefault();
}

// ---------------------------------------------------------------- single-key shortcuts

// Per annotator, in this browser: on unless turned off (rating is fast by key).
const shortcutsKey = `evalhub.rate.v1.shortcuts.${cfg.user}`;

function shortcutsOn() {
  return !app.classList.contains("keys-off");
}

/** Turn the page's single-key shortcuts on or off: off, no key acts (onKey), the key hints
 * go (rate.css) and no control claims a shortcut (aria-keyshortcuts is put aside). */
function setShortcuts(on) {
  if (app.classList.contains("keys-off") === on) app.classList.toggle("keys-off", !on);
  for (const el of $$("[aria-keyshortcuts], [data-keyshortcuts]", app)) {
    if (on && el.dataset.keyshortcuts !== undefined) {
      el.setAttribute("aria-keyshortcuts", el.dataset.keyshortcuts);
      delete el.dataset.keyshortcuts;
    } else if (!on && el.hasAttribute("aria-keyshortcuts")) {
      el.dataset.keyshortcuts = el.getAttribute("aria-keyshortcuts");
      el.removeAttribute("aria-keyshortcuts");
    }
  }
  const toggle = $("#keys-toggle");
  if (toggle.checked !== on) toggle.checked = on;
}

function wireShortcuts() {
  let stored = null;
  try {
    stored = localStorage.getItem(shortcutsKey);
  } catch {
    /* storage unreadable: the default */
  }
  setShortcuts(stored !== "off");
  $("#keys-toggle").addEventListener("change", (event) => {
    const on = event.target.checked;
    setShortcuts(on);
    announce(`Keyboard shortcuts ${on ? "on" : "off"}`);
    try {
      localStorage.setItem(shortcutsKey, on ? "on" : "off");
    } catch {
      /* storage full: off for this visit only */
    }
  });
}

function wire() {
  wireShortcuts();
  document.addEventListener("keydown", onKey);
  document.addEventListener("pointerdown", (event) => {
    // A label's text presses its control (the shortcuts switch's words, say).
    const label = event.target.closest("label");
    clicked = (label && label.control) || event.target.closest(ACTIVATED);
  });
  document.addEventListener("focusin", (event) => {
    if (event.target !== clicked) clicked = null; // focus moved on (Tab, or the page)
  });
  app.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const action = input.fromClick(button);
    if (action) take(action, pressedAt(event));
    else if (button.id === "skip-btn") skip(pressedAt(event));
    else if (button.id === "undo-btn") undo();
    else if (button.id === "zoom-reset") view.reset();
    else if (button.id === "zoom-native") view.native();
    else if (button.classList.contains("retry-btn")) retryPane(button.closest(".pane").dataset.side);
    else if (button.dataset.side) openReport(button.dataset.side); // Report broken image
  });
  $("#report-send").addEventListener("click", (event) => {
    event.preventDefault();
    sendReport();
  });
  $("#report-cancel").addEventListener("click", () => $("#report-dialog").close());
  view.addEventListener("change", renderZoom);
  const prompt = $("#rate-prompt");
  prompt.addEventListener("scroll", () => prompt.classList.toggle("read-to-end",
    prompt.classList.contains("clipped")
    && prompt.scrollTop + prompt.clientHeight >= prompt.scrollHeight - 1));
  // After the frame: a vote is added to the outbox in the keypress that shows the next pair.
  queue.addEventListener("change", () => {
    if (state.queueRender) return;
    state.queueRender = true;
    afterFrame(() => {
      state.queueRender = false;
      renderProgress();
      saveHistory(); // a vote sent: its stored task can go
    });
  });
  queue.addEventListener("sent", ({ detail }) => {
    $("#rate-signed-out").hidden = true;
    // Stamped on arrival: it was computed after this vote, so it beats any earlier question.
    // 201: stored now (a 200 is a vote stored before, maybe counted in a later answer).
    applyProgress(detail.data && detail.data.progress, performance.now(), detail.status === 201);
    renderProgress();
    // A late vote (its lease expired) on a task served to this annotator again, after a
    // reload: it counted, and closed the newer lease (`closed`), the same task answered by it.
    const closed = (detail.data && detail.data.closed) || [];
    state.upcoming = state.upcoming.filter((task) => !closed.includes(task.lease));
    if (!state.started) return;
    if (closed.length) leaveClosed(closed);
    // Unsent votes were holding leases; with them stored there may be room for a new task.
    if (!state.current && !state.done) advance();
    else prefetch();
  });
  queue.addEventListener("rejected", ({ detail }) => {
    const reason = (detail.data && detail.data.detail) || `error ${detail.status}`;
    forgetVote(detail.record.client_id);
    refused(detail.data, `A vote was refused: ${reason}`);
  });
  queue.addEventListener("conflict", ({ detail }) => {
    // Another tab (or window) of this annotator showed the same task and its vote was stored
    // first: this one was not taken, whatever "Voted ..." said a moment ago. The page is on
    // its next task already; the vote count comes from the server again (it has the other
    // tab's vote). Or (VOTE_UNDONE) the vote was stored and then undone, in a tab sharing
    // this outbox, before this resend: it stays undone, as asked, and nothing is to be said.
    forgetVote(detail.record.client_id);
    if (!(detail.data && detail.data.code === VOTE_UNDONE)) {
      announce(`Not counted: this ${TASK} was already answered in another tab`);
    }
    refreshProgress();
    if (!state.started) return;
    if (!state.current && !state.done) advance();
    else prefetch();
  });
  queue.addEventListener("waiting", ({ detail }) => {
    // Votes stay in the outbox; the annotator only needs to sign in again, in another tab.
    $("#rate-signed-out").hidden = !detail.signedOut;
    renderProgress();
  });
  window.addEventListener("online", () => {
    renderProgress();
    settleWithdrawn();
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
  // Instructions: a sheet on the first visit, until dismissed (offerInstructions); the "?"
  // button reopens it.
  const sheet = $("#rate-instructions");
  if (sheet) {
    $("#rate-instructions-btn").addEventListener("click", () => {
      sheet.dataset.auto = "";
      sheet.showModal();
    });
    sheet.addEventListener("close", () => {
      if (sheet.dataset.auto === "closing") { // put away by the page, not read
        sheet.dataset.auto = "";
        return;
      }
      sheet.dataset.auto = ""; // read: the page never closes it for the annotator
      try {
        localStorage.setItem(instructionsKey, "read");
      } catch {
        /* storage full: shown again on the next visit, no harm */
      }
    });
  }
}

const instructionsKey = `${storagePrefix}.instructions`;

/** The instructions sheet on the first visit (until dismissed), but not over a page with
 * nothing to rate (finished, or the campaign not open): "Start rating" would lead nowhere. */
function offerInstructions() {
  const sheet = $("#rate-instructions");
  if (!sheet || state.done || sheet.open) return;
  // "closed" was written by the older page, whose box the annotator had put away.
  if (["read", "closed"].includes(localStorage.getItem(instructionsKey))) return;
  sheet.dataset.auto = "1";
  sheet.showModal();
}

/** The page found nothing to rate after all: a first-visit sheet it opened goes (unread: it
 * comes back on a visit with something to rate). One the annotator opened stays. */
function closeAutoInstructions() {
  const sheet = $("#rate-instructions");
  if (!sheet || !sheet.open || sheet.dataset.auto !== "1") return;
  sheet.dataset.auto = "closing"; // its close event comes a task later
  sheet.close();
}

/** The task the page came with is shown at once, unless this browser showed another one
 * before a reload (then every held lease is asked for, and that one comes first) or its
 * vote still waits in the outbox. Returns whether it was taken. */
function startWithFirst() {
  const onScreen = localStorage.getItem(`${storagePrefix}.current`);
  const voted = new Set(queue.items().map((item) => item.lease));
  const result = nextResult(first);
  if (result && result.lease) {
    if (voted.has(result.lease) || (onScreen && onScreen !== result.lease)) return false;
    state.upcoming = [result];
    return true;
  }
  if (result && result.done && queue.size === 0) {
    // next/ answers done only when the annotator holds nothing: nothing to resume.
    showDone(result.detail, result.code);
    return true;
  }
  // Preparing: said at once; a lease held from before is still rated meanwhile.
  if (result && result.preparing) showPreparing(result.preparing, result.detail);
  // Nothing free now: said at once (leases held from before are looked for next).
  if (result && result.waiting) showWaiting(result.detail);
  return false;
}

async function start() {
  state.history = loadHistory(); // before wire(): an outbox change would store an empty one
  wire();
  renderProgress();
  queue.flush();
  // Undos left unanswered by a reload, first: a pair one hands back is resumed with the rest.
  const settling = settleWithdrawn();
  const taken = startWithFirst();
  offerInstructions(); // after the first answer: not over a finished or closed page
  if (taken) {
    state.started = true;
    if (!state.done) await advance(); // the first images first: no API request competes
    refreshProgress();
    return;
  }
  refreshProgress();
  await settling;
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
  state.upcoming = held;
  state.started = true;
  await advance();
}

state.starting = start();
