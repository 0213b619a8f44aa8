// A best-of-K task's picks: keys 1..K (or a click on a pane's Pick) choose the best image; in
// a rank-all campaign, the next best, and so on until every image has its place (the last is
// forced, so K - 1 picks complete a ranking). U takes back the last pick before it becomes a
// vote. Each pane shows the rank given to it. Same interface as PairAnswers (rate/answers.js).

export class Picks {
  /**
   * @param {Element} app the page (holding the `.grid-pane` figures)
   * @param {{k: number, rankAll: boolean, criterion: string}} options
   */
  constructor(app, { k, rankAll, criterion }) {
    this.k = k;
    this.rankAll = rankAll;
    this.criterion = criterion; // best of K asks one question
    this.needed = rankAll ? k - 1 : 1; // picks per vote
    this.picks = []; // slots, best first
    this.news = null; // what the last pick or undo changed (announcement)
    this.panes = [...app.querySelectorAll(".grid-pane")].map((figure) => {
      const button = figure.querySelector(".grid-pick");
      // The rank in the button's accessible name ("…, ranked 1st"), as the badge over the
      // image shows it: appended, so that the button's own words stay the template's.
      const said = document.createElement("span");
      said.className = "visually-hidden grid-pick-rank";
      button.append(said);
      return {
        figure,
        slot: Number(figure.dataset.slot),
        name: figure.dataset.name, // "image 3", "video 3": as the server names the pane
        rank: figure.querySelector(".grid-rank"),
        button,
        said,
      };
    });
  }

  /** A new task on screen: nothing picked (the buttons' state is the page's: render). */
  reset() {
    this.picks = [];
    this.news = null;
    this.showRanks(this.picks);
  }

  fromKey(key) {
    const digit = /^[1-9]$/.test(key) ? Number(key) : 0;
    return digit >= 1 && digit <= this.k ? { slot: digit - 1 } : null;
  }

  fromClick(button) {
    return button.classList.contains("grid-pick") ? { slot: Number(button.dataset.slot) } : null;
  }

  /** Take one pick (an image already ranked is ignored); true once the ranking is complete. */
  take({ slot }) {
    if (slot >= this.k || this.picks.includes(slot)) return false;
    this.picks.push(slot);
    const { name } = this.panes.find((pane) => pane.slot === slot);
    this.news = `${name[0].toUpperCase()}${name.slice(1)} ranked ${ordinal(this.picks.length)}`;
    const complete = this.picks.length >= this.needed;
    if (complete && this.rankAll) {
      // Shown with its forced last place; the server appends it too (serving/kwise.py).
      this.showRanks([...this.picks, [...Array(this.k).keys()].find((s) => !this.picks.includes(s))]);
    } else {
      this.showRanks(this.picks);
    }
    return complete;
  }

  fields() {
    return { answers: {}, rankings: { [this.criterion]: [...this.picks] } };
  }

  /** Take back the last pick of a ranking in progress; false when there is none. */
  undo() {
    if (!this.picks.length) return false;
    this.news = `Rank ${this.picks.length} undone`;
    this.picks.pop();
    this.showRanks(this.picks);
    return true;
  }

  /** What the last pick or undo of a ranking in progress changed ("Image 3 ranked 1st",
   * "Rank 2 undone"), once; null when nothing is new. A pick that completes the vote is
   * announced as the vote (describe). */
  announcement() {
    const news = this.news;
    this.news = null;
    return news;
  }

  describe(fields) {
    const picks = fields.rankings[this.criterion];
    return this.rankAll ? "Ranking saved"
      : `Picked ${this.panes.find((pane) => pane.slot === picks[0]).name}`;
  }

  /** Whether a ranking in progress has a pick to take back (undo). */
  pending() {
    return this.picks.length > 0;
  }

  /** The picks of a ranking in progress, to keep across a reload (rate/draft.js): slots as
   * displayed, best first; null when there is none. */
  choices() {
    return this.picks.length ? { picks: [...this.picks] } : null;
  }

  /** Take back what choices() gave, on the same task shown alike, as if just picked; false
   * (nothing taken) for anything this screen could not have produced. */
  restore(choices) {
    const picks = choices && choices.picks;
    if (!Array.isArray(picks) || !picks.length || picks.length >= this.needed
        || !picks.every((slot) => Number.isInteger(slot) && slot >= 0 && slot < this.k)
        || new Set(picks).size !== picks.length) {
      return false;
    }
    this.picks = [...picks];
    this.showRanks(this.picks);
    return true;
  }

  /** Pick buttons live when `ready`, except for images ranked already. */
  render(ready) {
    for (const { button, slot } of this.panes) {
      const disabled = !ready || this.picks.includes(slot);
      if (button.disabled !== disabled) button.disabled = disabled;
    }
    this.showRanks(this.picks);
  }

  /** ranks[i] is the slot ranked i + 1. */
  showRanks(ranks) {
    for (const { figure, rank, slot, said } of this.panes) {
      const at = ranks.indexOf(slot);
      const text = at < 0 ? "" : `#${at + 1}`;
      const name = at < 0 ? "" : `, ranked ${ordinal(at + 1)}`;
      if (said.textContent !== name) said.textContent = name;
      if (figure.classList.contains("picked") !== at >= 0) figure.classList.toggle("picked", at >= 0);
      if (rank.hidden !== at < 0) rank.hidden = at < 0;
      if (rank.textContent !== text) rank.textContent = text;
    }
  }
}

/** 1st, 2nd, 3rd, 4th … (K is at most 9). */
function ordinal(n) {
  return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[n] || "th"}`;
}
