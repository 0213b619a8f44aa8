// A pair task's answers: one of left, right, tie or both bad per criterion, asked in turn.
// Keys 1/← left, 2/→ right, 3/T tie, 4/B both bad; a click answers the criterion of its row.
// Same interface as Picks (rate/picks.js): the rating page (rate.js) knows only that.

const KEYS = {
  1: "left", ArrowLeft: "left", 2: "right", ArrowRight: "right",
  3: "tie", t: "tie", 4: "both_bad", b: "both_bad",
};
const VALUES = new Set(Object.values(KEYS));

export class PairAnswers {
  /**
   * @param {Element} app the page (holding the `.criterion` rows)
   * @param {string[]} criteria the campaign's criteria keys, in the order they are asked
   */
  constructor(app, criteria) {
    this.rows = [...app.querySelectorAll(".criterion")];
    this.criteria = criteria;
    // criterion -> answer for the task on screen, in the order answered (a key answered
    // again moves to the end): undo takes back the last one.
    this.answers = {};
  }

  /** A new task on screen: nothing answered. The buttons' disabled state is the page's to
   * set (render): in the keypress that shows a prefetched pair nothing else is restyled. */
  reset() {
    this.answers = {};
    this.renderChoices();
  }

  /** The input a key means, or null. */
  fromKey(key) {
    return key in KEYS ? { value: KEYS[key] } : null;
  }

  /** The input a click on `button` means, or null. */
  fromClick(button) {
    if (!button.dataset.answer) return null;
    return { value: button.dataset.answer, criterion: button.closest(".criterion").dataset.criterion };
  }

  /** Take one answer (for its row's criterion, else the first unanswered); true once every
   * criterion has one: the vote is complete. */
  take({ value, criterion }) {
    const { criteria } = this;
    const key = criterion || criteria.find((c) => !this.answers[c]) || criteria[criteria.length - 1];
    delete this.answers[key];
    this.answers[key] = value;
    return criteria.every((c) => this.answers[c]);
  }

  /** What the vote sends (api.js). */
  fields() {
    return { answers: { ...this.answers } };
  }

  /** Take back the last answer of a vote in progress (a pair asked several questions);
   * false when nothing is answered yet: undo is then the last vote's. */
  undo() {
    const last = Object.keys(this.answers).pop();
    if (last === undefined) return false;
    delete this.answers[last];
    return true;
  }

  /** Whether a vote in progress has an answer to take back (undo). */
  pending() {
    return Object.keys(this.answers).length > 0;
  }

  /** The answers of a vote in progress, to keep across a reload (rate/draft.js): criterion
   * and side as shown, in the order answered; null when there is none. */
  choices() {
    const answers = Object.entries(this.answers);
    return answers.length ? { answers } : null;
  }

  /** Take back what choices() gave, on the same task shown alike, as if just answered; false
   * (nothing taken) for anything this screen could not have produced. */
  restore(choices) {
    const answers = choices && choices.answers;
    if (!Array.isArray(answers) || !answers.length || answers.length >= this.criteria.length
        || !answers.every((answer) => Array.isArray(answer) && answer.length === 2
                          && this.criteria.includes(answer[0]) && VALUES.has(answer[1]))
        || new Set(answers.map(([criterion]) => criterion)).size !== answers.length) {
      return false;
    }
    this.answers = Object.fromEntries(answers);
    this.renderChoices();
    return true;
  }

  /** What the last answer or undo changed, for screen readers; null: a pair's answer shows
   * as its pressed button, and the vote is announced once cast (describe). */
  announcement() {
    return null;
  }

  /** The announcement once a vote is cast. */
  describe(fields) {
    return this.criteria.length === 1
      ? `Voted ${fields.answers[this.criteria[0]].replace("_", " ")}` : "Vote saved";
  }

  /** Show which criterion is asked and what is answered; buttons live only when `ready`. */
  render(ready) {
    this.renderChoices();
    for (const button of this.buttons()) {
      if (button.disabled !== !ready) button.disabled = !ready;
    }
  }

  renderChoices() {
    const active = this.criteria.find((key) => !this.answers[key]);
    for (const row of this.rows) {
      const key = row.dataset.criterion;
      if (row.classList.contains("active") !== (key === active)) row.classList.toggle("active", key === active);
      for (const button of row.querySelectorAll("button[data-answer]")) {
        const pressed = String(this.answers[key] === button.dataset.answer);
        if (button.getAttribute("aria-pressed") !== pressed) button.setAttribute("aria-pressed", pressed);
      }
    }
  }

  buttons() {
    return this.rows.flatMap((row) => [...row.querySelectorAll("button[data-answer]")]);
  }
}
