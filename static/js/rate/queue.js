// Outbox of votes: every vote is written to localStorage before it is sent, and leaves the
// outbox only when the server has answered for it. A reload, a dropped connection or a crash
// therefore loses nothing, and because a vote keeps its client_id for life, re-sending one the
// server already stored is answered 200 and never counted twice.
//
// A vote is marked `sent` (in storage) before its first request leaves: from then on the server
// may have stored it even though no answer came. An undo of such a vote (withdraw) marks it
// `withdrawn` instead of deleting it: it is never sent again, from this page or after a reload,
// and the page undoes it on the server by its id; only a vote never sent is simply deleted.

import { NetworkError } from "./api.js";
import { afterFrame } from "./frame.js";

const MAX_BACKOFF_MS = 30_000;

/** Answers that mean "the session is gone": keep the vote and ask the user to sign in again. */
function isAuthFailure(status, data) {
  const detail = (data && data.detail) || "";
  return status === 401 || (status === 403 && /CSRF|credentials|authenticat/i.test(detail));
}

export class VoteQueue extends EventTarget {
  /**
   * @param {import("./api.js").RateApi} api
   * @param {string} storageKey one key per campaign and user
   */
  constructor(api, storageKey) {
    super();
    this.api = api;
    this.key = storageKey;
    this.inFlight = null; // client_id being sent right now
    this.tried = new Set(); // client_ids this page has sent (should marking them `sent` fail)
    this.running = null; // promise of the current flush
    this.attempt = 0;
    this.timer = null;
    window.addEventListener("online", () => this.retryNow());
  }

  /** @returns {Array<object>} the votes not yet acknowledged, oldest first */
  items() {
    try {
      return JSON.parse(localStorage.getItem(this.key) || "[]");
    } catch {
      return [];
    }
  }

  /** The votes waiting to be sent (a withdrawn one is waiting for its undo, not to be sent). */
  get size() {
    return this.items().filter((item) => !item.withdrawn).length;
  }

  /** The votes withdrawn whose undo has not been answered yet (see withdraw). */
  withdrawn() {
    return this.items().filter((item) => item.withdrawn);
  }

  save(items) {
    localStorage.setItem(this.key, JSON.stringify(items));
    const size = items.filter((item) => !item.withdrawn).length;
    this.dispatchEvent(new CustomEvent("change", { detail: { size } }));
  }

  /** Set `fields` on the stored vote `clientId`, if it is still there. */
  mark(clientId, fields, { quiet = false } = {}) {
    const items = this.items().map((item) => (
      item.client_id === clientId ? { ...item, ...fields } : item));
    if (quiet) localStorage.setItem(this.key, JSON.stringify(items));
    else this.save(items);
  }

  /** Store the vote in localStorage (synchronously: it survives a crash from here on), and
   * send it soon. */
  add(record) {
    this.save([...this.items(), { ...record, sent: false }]);
    // Sent once the frame that shows the next pair is out (the request's own work must not
    // delay it), and after the page asked for its next pair (nextWithVote): that request
    // travels inside this vote.
    this.flushSoon();
  }

  flushSoon() {
    if (this.soon) return;
    this.soon = true;
    afterFrame(() => {
      this.soon = false;
      this.flush();
    });
  }

  /**
   * The next task, asked for inside the next vote that leaves: one round trip instead of two.
   * Resolves with that answer's `next` (a task, or {done, detail}), or with undefined when no
   * vote is about to leave or its answer carried none; the caller then leases on its own.
   * @param {() => string[]} exclude the leases the page already has, read as the vote leaves
   */
  nextWithVote(exclude) {
    const unsent = this.items().some((item) => !item.withdrawn
                                     && item.client_id !== this.inFlight);
    if (!unsent || this.timer) return Promise.resolve(undefined); // nothing, or backing off
    if (!this.nextWaiter) {
      let resolve;
      const promise = new Promise((done) => { resolve = done; });
      this.nextWaiter = { exclude, resolve, promise };
      this.flushSoon();
    }
    return this.nextWaiter.promise;
  }

  /** Tell a caller of nextWithVote that no vote will bring its task: it leases on its own. */
  releaseWaiter() {
    const waiter = this.nextWaiter;
    this.nextWaiter = null;
    if (waiter) waiter.resolve(undefined);
  }

  /**
   * Take back (undo) a vote still in the outbox. "dropped": it was never sent, and is deleted
   * here (the server never saw it). "withdrawn": it was sent at least once, or is on the wire
   * now, so the server may have stored it with its answer lost; it is marked withdrawn (in
   * storage: never sent again, not even after a reload) and the caller undoes it on the
   * server by its id once `idle()` (a send on the wire lands first), then `drop`s it, or
   * `restore`s it when the undo could not be made. null: not in the outbox (the server
   * answered for it: the caller undoes it there).
   */
  withdraw(clientId) {
    const items = this.items();
    const record = items.find((item) => item.client_id === clientId);
    if (!record) return null;
    // `sent` is undefined on a vote stored by an older page: it may have been sent.
    if (record.sent === false && !this.tried.has(clientId)) {
      this.save(items.filter((item) => item !== record));
      return "dropped";
    }
    if (!record.withdrawn) this.mark(clientId, { withdrawn: true });
    return "withdrawn";
  }

  /** A withdrawn vote whose undo could not be made (offline) is a vote to send again, as if
   * it had never been taken back: resent under its id, it is never counted twice. */
  restore(clientId) {
    if (!this.items().some((item) => item.client_id === clientId && item.withdrawn)) return;
    this.mark(clientId, { withdrawn: false });
    if (!this.timer) this.flushSoon();
  }

  has(clientId) {
    return this.items().some((item) => item.client_id === clientId);
  }

  retryNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.flush();
  }

  /** Send queued votes in order; resolves when the queue is empty or sending must wait. */
  flush() {
    if (!this.running) {
      this.running = this.drain().finally(() => {
        this.running = null;
        this.releaseWaiter(); // asked while the last vote was on the wire
      });
    }
    return this.running;
  }

  /** Resolves once nothing is being sent (used by undo, which must not race a send). */
  async idle() {
    while (this.running) await this.running;
  }

  async drain() {
    for (;;) {
      // A withdrawn vote is never sent again: the page undoes it by its id instead.
      const record = this.items().find((item) => !item.withdrawn);
      if (!record) {
        this.attempt = 0;
        return;
      }
      this.inFlight = record.client_id;
      this.tried.add(record.client_id);
      if (record.sent !== true) {
        try {
          this.mark(record.client_id, { sent: true }, { quiet: true });
        } catch {
          /* storage full: `tried` still tells this page; the vote goes out regardless */
        }
      }
      const waiter = this.nextWaiter;
      this.nextWaiter = null;
      let answer;
      try {
        answer = await this.api.vote(record, waiter ? waiter.exclude() : undefined);
      } catch (error) {
        if (!(error instanceof NetworkError)) {
          if (waiter) waiter.resolve(undefined);
          throw error;
        }
        answer = { status: 0, data: null };
      } finally {
        this.inFlight = null;
      }
      const { status, data } = answer;
      if (waiter) {
        waiter.resolve((status === 200 || status === 201) && data ? data.next : undefined);
      }
      if (status === 200 || status === 201) {
        // 200: stored before (a resend of this very vote, same id: never counted twice).
        this.drop(record.client_id);
        this.dispatchEvent(new CustomEvent("sent", { detail: { record, status, data } }));
        continue;
      }
      if (status === 409) {
        // A different vote for this lease is stored already, under another id: this
        // annotator answered it in another tab or window that showed the same lease (the
        // server refuses a reused id with other answers alike). This one was NOT stored;
        // it is dropped (resending it would be refused again) and the page says so. With code
        // vote_undone, this very vote was stored and then undone before this resend: it stays
        // undone, and is dropped alike.
        this.drop(record.client_id);
        this.dispatchEvent(new CustomEvent("conflict", { detail: { record, status, data } }));
        continue;
      }
      const signedOut = isAuthFailure(status, data);
      if (status === 0 || status >= 500 || status === 429 || signedOut) {
        this.dispatchEvent(new CustomEvent("waiting", { detail: { status, data, signedOut } }));
        this.schedule();
        return;
      }
      // 400/403/404: the server will never take this vote (lease given away, campaign
      // closed). Keeping it would block every later vote, so it is dropped and reported.
      this.drop(record.client_id);
      this.dispatchEvent(new CustomEvent("rejected", { detail: { record, status, data } }));
    }
  }

  /** The vote leaves the outbox for good: answered for by the server (its vote or its undo). */
  drop(clientId) {
    this.save(this.items().filter((item) => item.client_id !== clientId));
  }

  /** Exponential backoff with jitter, so a recovering server is not hit by every page at once. */
  schedule() {
    if (this.timer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, delay);
  }
}
