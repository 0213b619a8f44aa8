// The answers given so far on the screen on show, when one screen takes several (a pair asked
// several criteria, a rank-all ranking): kept in the tab's sessionStorage, so that a reload or
// a crash in the middle of the screen brings them back when the same task does (its lease is
// still the annotator's). Nothing here is sent anywhere: the vote is still one request, cast
// once the screen is complete.
//
// Only the choices are kept, as the page names them (a side, a slot as displayed), under the
// task's lease and beside a fingerprint of what the screen showed where (the images' opaque
// URLs in display order). The server fixes the sides and the order per lease, so they come back
// alike; an entry is applied only to that very lease shown in that very order, and anything
// else (another lease, another order, an entry that cannot be read) is dropped unread.

const VERSION = 1;

/** A short fingerprint of `text` (32-bit FNV-1a, hex): whether two layouts are the same, not a
 * way to tell what they show. */
function fingerprint(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16);
}

export class Draft {
  /**
   * @param {string} prefix one per campaign and annotator; an entry's key adds its lease
   * @param {(task: object) => string[]} layout what each place of the screen shows, in order
   */
  constructor(prefix, layout) {
    this.prefix = `${prefix}.`;
    this.layout = layout;
    // Keys of entries this tab holds: the ones left by the page before a reload, then ours.
    this.keys = new Set();
    try {
      for (const key of Object.keys(sessionStorage)) {
        if (key.startsWith(this.prefix)) this.keys.add(key);
      }
    } catch {
      /* no storage here: nothing is kept, rating goes on */
    }
  }

  /** The choices kept for `task` as it is shown, or null. Entries of other tasks go: a task
   * on screen is the only one answers can be kept for. */
  read(task) {
    const key = this.prefix + task.lease;
    for (const other of this.keys) {
      if (other !== key) this.remove(other);
    }
    let stored = null;
    try {
      const raw = sessionStorage.getItem(key);
      if (raw === null) return null; // the usual case: nothing kept for this task
      stored = JSON.parse(raw);
    } catch {
      stored = null;
    }
    if (stored && stored.v === VERSION && stored.layout === this.signature(task)
        && stored.choices && typeof stored.choices === "object") {
      this.keys.add(key);
      return stored.choices;
    }
    this.remove(key);
    return null;
  }

  /** Keep `choices` (the input's, rate/answers.js or rate/picks.js) for `task` on screen. */
  save(task, choices) {
    const key = this.prefix + task.lease;
    try {
      sessionStorage.setItem(key, JSON.stringify({
        v: VERSION, layout: this.signature(task), choices }));
      this.keys.add(key);
    } catch {
      /* storage full or refused: a reload would ask again, nothing else is lost */
    }
  }

  /** Nothing kept any more: the screen's vote is cast, or the task left the screen. */
  clear() {
    for (const key of this.keys) this.remove(key);
  }

  remove(key) {
    this.keys.delete(key);
    try {
      sessionStorage.removeItem(key);
    } catch {
      /* no storage: nothing was kept */
    }
  }

  signature(task) {
    return fingerprint(this.layout(task).join("\n"));
  }
}
