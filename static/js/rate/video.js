// Videos on the rating page: a pair's two (or, for an edit, three) or a best-of-K task's K
// videos, played as one.
//
// SyncedVideos keeps several <video> elements on one timeline (`timeline`): its frames are
// those of the highest frame rate shown, whichever video has it, and it ends with the
// shortest video. Every time below (frame k's middle, the end, one frame of drift) is on that
// timeline; each video shows its own frame at that time. The first video is the leader; the
// others follow it:
// - play starts only once every video can play (readyState HAVE_FUTURE_DATA, else their
//   `canplay`), all in the same task; a video that stalls while playing (`waiting`) pauses
//   the others until all can play again, from the same time;
// - pause, seek and frame step pause every video and seek all of them to the centre of one
//   timeline frame, (k + 0.5) / fps: the same currentTime everywhere, and a time that shows
//   frame k whatever the container rounded its timestamps to (WebM stores milliseconds: frame
//   2 of a 30 fps clip is at 67 ms, after 2/30 s); with the timeline at the highest rate every
//   frame of every video is one step away (a step is no longer than any video's frame). Pause
//   keeps the leader's frame: the centre of the timeline frame it is in, at most half a
//   timeline frame from where it was. The operation ends once every video has
//   presented that frame, not at `seeked`: Chromium fires `seeked` before its compositor swaps
//   the new frame in (under load a canvas read right after it gave the frame from before the
//   seek about once in 180 seeks), so both videos said they were done while one still showed
//   another frame. Each video's last presented frame comes from requestVideoFrameCallback,
//   which fires only for a new frame (none when a seek lands on the frame already shown);
//   PRESENT_WAIT_MS bounds the wait where the callback does not exist or never comes. A video
//   that still shows another frame then is seeked again (at most twice), to another time in
//   the same frame of its own and back to the same time (a seek can leave the frame it showed
//   while playing on screen);
// - while playing, every frame of the leader (requestVideoFrameCallback, else
//   requestAnimationFrame) compares each follower's currentTime with the leader's: within a
//   quarter of a frame the follower plays at the chosen speed; beyond it its playbackRate is
//   nudged (at most MAX_NUDGE of the speed) to close the gap in about CATCH_UP_S; beyond
//   RESYNC_FRAMES frames (a decoder that fell behind) every video pauses, seeks to the
//   leader's time and starts again together;
// - loop is done here, not with the `loop` attribute (each video would wrap on its own clock):
//   at the shared end (the shortest video's `ended`, or the leader past the timeline's end)
//   all seek to the first frame and start together; without loop, all pause on the last
//   timeline frame. A seek into a video's last frame leaves it `ended` in Chromium (before its
//   end, paused), and play() would rewind it to 0: play and seek while playing start only the
//   videos that have not ended (the others show their last frame, up to the shared end; the
//   leader's time is then the first playing video's, `clock`), and nothing when all have:
//   that is the end of playback.
//
// VideoControls is the bar under the videos (play, frame step, one seek bar, time, speed,
// loop) and the keys. VideoStage puts a task's videos into the rating page's panes (Stage
// shows images; a task whose items carry `video` goes here): a pair and its source
// (pairItems), or the K panes of the best-of-K grid and its source (gridItems), with the shared zoom
// (zoom.js) on the video surfaces. It resolves like Stage.show once every video's first frame
// is decoded and drawn: votes count only from then on, as for images.

import { nextFrame } from "./frame.js";
import { pairItems } from "./stage.js";

export const RATES = [0.25, 0.5, 0.75, 1, 1.5, 2];
const HAVE_CURRENT_DATA = 2;
const HAVE_FUTURE_DATA = 3;
const DEADBAND_FRAMES = 0.25; // no correction below this drift (in frames)
const RESYNC_FRAMES = 4; // beyond this drift a nudge would take too long: start together again
const CATCH_UP_S = 0.3; // a nudge closes the drift in about this many seconds of media time
const MAX_NUDGE = 0.15; // a follower's rate stays within 15 % of the chosen speed
const PRESENT_WAIT_MS = 250; // longest wait for a seeked video to present its new frame

/** Resolves with the first of `events` that `el` fires (and forgets the others). */
function once(el, events) {
  return new Promise((resolve) => {
    const handler = (event) => {
      for (const name of events) el.removeEventListener(name, handler);
      resolve(event.type);
    };
    for (const name of events) el.addEventListener(name, handler);
  });
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
const delay = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
/** The index of the frame `time` falls in at `fps` (a frame's own start counts as in it). */
const frameAt = (time, fps) => Math.floor(time * fps + 1e-6);

/**
 * The timeline several videos play on, from their payloads' `video` ({fps, frames, duration},
 * docs/video.md "The annotator page"): `fps`, the highest frame rate among them (frames per
 * second: one frame step, one position of the seek bar), and `duration`, the shortest video's
 * length in seconds (its frames / fps, else its `duration`; 0 when none is known, and then the
 * elements' own durations count once loaded). At the highest rate one step is no longer than
 * a frame of any video, so every frame of every video can be stepped to.
 */
export function timeline(clips) {
  let fps = 0;
  let duration = Infinity;
  for (const clip of clips) {
    const rate = Number(clip && clip.fps) || 0;
    const frames = Number(clip && clip.frames) || 0;
    if (rate > 0) fps = Math.max(fps, rate);
    const length = rate > 0 && frames > 0 ? frames / rate : Number(clip && clip.duration) || 0;
    if (length > 0) duration = Math.min(duration, length);
  }
  return { fps: fps || 30, duration: Number.isFinite(duration) ? duration : 0 };
}

/**
 * The frame a video last presented (its index at `fps`), kept from requestVideoFrameCallback
 * from `start` to `stop`. `shown(frames)` resolves once one of those frames is on screen, or
 * after PRESENT_WAIT_MS.
 */
class PresentedFrame {
  constructor(video, fps) {
    this.video = video;
    this.fps = fps;
    // Attached after firstFrame (seeked, then a frame drawn): what currentTime says is shown.
    this.frame = frameAt(video.currentTime, fps);
    this.handle = null;
    this.waiters = [];
  }

  start() {
    if (!this.video.requestVideoFrameCallback) return;
    const presented = (_now, metadata) => {
      // Frame k's timestamp is k / fps, give or take the container's millisecond rounding.
      this.frame = Math.round(metadata.mediaTime * this.fps);
      this.handle = this.video.requestVideoFrameCallback(presented);
      this.settle();
    };
    this.handle = this.video.requestVideoFrameCallback(presented);
  }

  stop() {
    if (this.handle !== null) this.video.cancelVideoFrameCallback(this.handle);
    this.handle = null;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
  }

  /** Resolves true once one of `frames` is on screen (or nothing is watched), false if
   * another frame still is after PRESENT_WAIT_MS. */
  shown(frames) {
    if (this.handle === null || frames.includes(this.frame)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { frames, resolve: () => resolve(true) };
      this.waiters.push(waiter);
      delay(PRESENT_WAIT_MS).then(() => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(this.handle === null || frames.includes(this.frame));
      });
    });
  }

  settle() {
    const done = this.waiters.filter((w) => w.frames.includes(this.frame));
    this.waiters = this.waiters.filter((w) => !w.frames.includes(this.frame));
    for (const waiter of done) waiter.resolve();
  }
}

export class SyncedVideos extends EventTarget {
  constructor({ rate = 1, loop = true } = {}) {
    super();
    this.videos = [];
    this.fps = 30; // the timeline's rate (`timeline`)
    this.duration = 0; // the shared duration in seconds (0: from the elements)
    this.rates = []; // each video's own frame rate
    this.rate = rate;
    this.loop = loop;
    this.playing = false; // what the annotator asked for (the videos may wait to start)
    this.op = 0; // incremented by every operation: an older one's remaining steps are dropped
    this.epoch = 0; // incremented by attach/detach: the videos' operations of an older pair
    this.busy = 0; // operations in flight (seeks, waits for data)
    this.tickHandle = null;
    this.presented = []; // a PresentedFrame per video
    this.corrections = { nudges: 0, resyncs: 0 };
    this.onEnded = () => this.ended();
    // A seek of any kind (the first frame's too) moves what the bar shows.
    this.onSeeked = () => this.changed();
    this.onWaiting = (event) => {
      // A video ran out of data: the others would run ahead. All wait, then start together.
      if (this.playing && !this.busy && !event.target.seeking) {
        this.restart(this.leader.currentTime);
      }
    };
  }

  /**
   * Play `videos` (leader first) as one, on the timeline of `clips` (`timeline`): each
   * video's payload `video` ({fps, frames, duration}), in the same order.
   */
  attach(videos, clips) {
    this.detach();
    this.videos = videos;
    const { fps, duration } = timeline(clips);
    this.fps = fps;
    this.duration = duration;
    this.rates = videos.map((_, index) => Number(clips[index] && clips[index].fps) || fps);
    for (const video of videos) {
      video.muted = true;
      video.loop = false;
      video.playbackRate = this.rate;
      video.addEventListener("ended", this.onEnded);
      video.addEventListener("waiting", this.onWaiting);
      video.addEventListener("seeked", this.onSeeked);
    }
    this.presented = videos.map((video, index) => new PresentedFrame(video, this.rates[index]));
    for (const frame of this.presented) frame.start();
    this.changed();
  }

  /** Stop and forget the videos (they are reused for the next pair). */
  detach() {
    this.op += 1;
    this.epoch += 1;
    this.playing = false;
    this.busy = 0;
    this.stopTicking();
    for (const frame of this.presented) frame.stop();
    this.presented = [];
    for (const video of this.videos) {
      video.removeEventListener("ended", this.onEnded);
      video.removeEventListener("waiting", this.onWaiting);
      video.removeEventListener("seeked", this.onSeeked);
      video.pause();
    }
    this.videos = [];
  }

  get leader() {
    return this.videos[0];
  }

  /**
   * The video whose time is the timeline's: the leader, unless it sits on its last frame
   * (`ended`) while another video does not. Chromium marks a video ended once a seek lands in
   * its last frame, paused, before its end (a 2 s 8 fps clip seeked to 1.90 s), and play()
   * would rewind such a video to 0 (`restart` leaves it paused on that frame, which it shows
   * up to its end, no earlier than the timeline's end); the others play the rest of the
   * timeline, at most one of its frames.
   */
  get clock() {
    const leader = this.leader;
    if (!leader || !leader.ended) return leader;
    return this.videos.find((video) => !video.ended) || leader;
  }

  /** The shared duration in seconds: the shortest video's (0 while none is known). */
  get sharedDuration() {
    if (this.duration > 0) return this.duration;
    const durations = this.videos.map((v) => v.duration)
      .filter((d) => Number.isFinite(d) && d > 0);
    return durations.length ? Math.min(...durations) : 0;
  }

  /** The last timeline frame: the last whose middle, (k + 0.5) / fps, is before the end
   * (frames at the timeline's rate; end * fps of them when that is whole). */
  get lastFrame() {
    return Math.max(0, Math.ceil(this.sharedDuration * this.fps - 0.5 - 1e-6) - 1);
  }

  /** The timeline frame the leader (the `clock`) is at (its index from 0). */
  currentFrame() {
    if (!this.leader) return 0;
    return clamp(frameAt(this.clock.currentTime, this.fps), 0, this.lastFrame);
  }

  /** The leader's (the `clock`'s) time in seconds, within the shared duration. */
  time() {
    if (!this.leader) return 0;
    const end = this.sharedDuration;
    const time = this.clock.currentTime;
    return end > 0 ? Math.min(time, end) : time;
  }

  /** The time that shows timeline frame `frame` in every video (its middle), in seconds. */
  timeOf(frame) {
    return (clamp(frame, 0, this.lastFrame) + 0.5) / this.fps;
  }

  changed() {
    this.dispatchEvent(new CustomEvent("change"));
  }

  // ------------------------------------------------------------ operations

  toggle() {
    return this.playing ? this.pause() : this.play();
  }

  /** Play every video from where they are (from the start if on the last frame). */
  async play() {
    if (!this.videos.length) return;
    this.playing = true;
    // Not "a video has ended": a video paused in its last frame may say so before the end
    // (`clock`), and the frames of the others up to the end are still to play.
    const frame = this.currentFrame();
    await this.restart(this.timeOf(frame >= this.lastFrame ? 0 : frame));
  }

  /** Pause every video on the frame the leader shows (the middle of its timeline frame). */
  async pause() {
    if (!this.videos.length) return;
    this.playing = false;
    const token = this.begin();
    for (const video of this.videos) video.pause();
    this.changed();
    await this.seekAll(this.timeOf(this.currentFrame()), token);
    this.end(token);
  }

  /** Move `delta` timeline frames (pausing first), within the shared duration. */
  async step(delta) {
    if (!this.videos.length) return;
    this.playing = false;
    const frame = this.currentFrame();
    const token = this.begin();
    for (const video of this.videos) video.pause();
    await this.seekAll(this.timeOf(frame + delta), token);
    this.end(token);
  }

  /** Go to timeline frame `frame`; playback goes on from there if it was playing. */
  async seekFrame(frame) {
    if (!this.videos.length) return;
    const time = this.timeOf(frame);
    if (this.playing) {
      await this.restart(time);
      return;
    }
    const token = this.begin();
    for (const video of this.videos) video.pause();
    await this.seekAll(time, token);
    this.end(token);
  }

  /** The speed of every video (0.25x to 2x). */
  setRate(rate) {
    this.rate = clamp(Number(rate) || 1, RATES[0], RATES[RATES.length - 1]);
    if (this.playing && this.videos.length) {
      // Changing the rate of running videos leaves their decoders behind by different
      // amounts (0.25x to 1x showed frames 7 apart while currentTime agreed): start again
      // together at the new speed instead.
      this.restart(this.timeOf(this.currentFrame()));
    } else {
      for (const video of this.videos) video.playbackRate = this.rate;
      this.changed();
    }
  }

  /** One step along RATES (-1 slower, +1 faster). */
  stepRate(direction) {
    const index = RATES.findIndex((r) => r >= this.rate - 1e-9);
    this.setRate(RATES[clamp((index < 0 ? RATES.length - 1 : index) + direction, 0, RATES.length - 1)]);
  }

  setLoop(loop) {
    this.loop = Boolean(loop);
    this.changed();
  }

  /** Resolves once no operation is in flight and, when playing, every video plays. */
  async settled() {
    for (;;) {
      // A video on its last frame while the others play the rest stays paused (`clock`).
      const playing = this.videos.every((v) => (!v.paused || v.ended) && !v.seeking
                                        && v.readyState >= HAVE_FUTURE_DATA);
      if (this.busy === 0 && (!this.playing || playing)) return;
      await nextFrame();
    }
  }

  // ------------------------------------------------------------ internals

  begin() {
    this.busy += 1;
    this.op += 1;
    this.stopTicking();
    return { op: this.op, epoch: this.epoch };
  }

  /** An operation is over (one of another pair's, finishing late, counts for nothing). */
  end(token) {
    if (token.epoch !== this.epoch) return;
    this.busy = Math.max(0, this.busy - 1);
    if (token.op === this.op || this.busy === 0) this.changed();
  }

  current(token) {
    return token.op === this.op && token.epoch === this.epoch;
  }

  /** Seek every video to `time` (within its own length); resolves when all have seeked and
   * presented the frame at that time (see the top), or a newer operation began. */
  async seekAll(time, token) {
    const waits = this.videos.map(async (video, index) => {
      const rate = this.rates[index] || this.fps;
      // Within its own length, half a timeline frame from its end (the timeline ends no later).
      const end = Number.isFinite(video.duration) ? video.duration - 0.5 / this.fps : time;
      const at = Math.max(0, Math.min(time, end));
      const presented = this.presented[index];
      // A seek can fire `seeked` and leave the frame presented while playing on screen (a
      // paused pair showed frames 5 and 4 at the same currentTime for seconds, in CI; on a
      // loaded host, pixels still showed frame 29 250 ms after a seek into frame 26, and a
      // second seek showed 26): at most twice, the video is seeked to another time in the
      // same frame of its own (its middle, or 0.2 of a frame before it when `at` is there)
      // and back to `at` (every video keeps the same currentTime).
      const own = frameAt(at, rate);
      // Within a millisecond of one of its frame boundaries (the 30 fps timeline's frame 42
      // is 34/24 s, where a 24 fps video's frame 34 begins), either frame is right: the
      // container rounds its timestamps to milliseconds (frame 34 at 1.417 s).
      const frames = [...new Set([-1e-3, 0, 1e-3].map((d) => frameAt(at + d, rate)))];
      const middle = (own + 0.5) / rate;
      const away = Math.abs(at - middle) > 1e-3 ? middle : (own + 0.3) / rate;
      const seek = async (target) => {
        video.currentTime = target;
        return await once(video, ["seeked", "emptied", "error"]) === "seeked";
      };
      if (!(await seek(at))) return;
      for (let tries = 0; presented && !(await presented.shown(frames)); tries += 1) {
        if (tries === 2 || !this.current(token) || !(await seek(away)) || !(await seek(at))) {
          return;
        }
      }
    });
    await Promise.all(waits);
    return this.current(token);
  }

  /** Pause all, seek all to `time`, wait until every video can play, start them together;
   * one that the seek left on its last frame (`ended`, see `clock`) stays there, and when
   * all are, playback is at its end (`ended`). */
  async restart(time) {
    const token = this.begin();
    for (const video of this.videos) video.pause();
    this.changed();
    try {
      if (!(await this.seekAll(time, token))) return;
      await Promise.all(this.videos.map((video) => (
        video.readyState >= HAVE_FUTURE_DATA ? null
          : once(video, ["canplay", "canplaythrough", "emptied", "error"]))));
      if (!this.current(token) || !this.playing) return;
      // play() on an ended video seeks it to 0 first: Chromium's ended after a seek into the
      // last frame played every video from the start, then stopped.
      const playable = this.videos.filter((video) => !video.ended);
      if (!playable.length) {
        this.ended();
        return;
      }
      for (const video of this.videos) video.playbackRate = this.rate;
      // In one task: each starts on its own clock, and these are as close as they get.
      await Promise.all(playable.map((video) => video.play().catch(() => {})));
      if (this.current(token) && this.playing) this.startTicking();
    } finally {
      this.end(token);
    }
  }

  ended() {
    if (!this.playing) return;
    if (this.loop) {
      this.restart(this.timeOf(0));
    } else {
      this.playing = false;
      const token = this.begin();
      for (const video of this.videos) video.pause();
      this.seekAll(this.timeOf(this.lastFrame), token).then(() => this.end(token));
    }
  }

  startTicking() {
    this.stopTicking();
    const leader = this.leader;
    // The frames of the video that plays: not those of a leader left on its last frame.
    const clock = this.clock;
    const tick = () => {
      this.tickHandle = null;
      if (!this.playing || this.leader !== leader || this.busy) return;
      // Past the shared end (a video longer than the shortest one leads, and the shortest
      // one's `ended` has not come): the end of playback, as `ended`.
      const end = this.sharedDuration;
      if (end > 0 && clock.currentTime >= end) {
        this.ended();
        return;
      }
      this.correct();
      this.schedule(clock, tick);
      this.dispatchEvent(new CustomEvent("tick"));
    };
    this.schedule(clock, tick);
  }

  schedule(leader, tick) {
    // Each frame the leader presents; rAF where that callback does not exist.
    if (leader.requestVideoFrameCallback) {
      this.tickHandle = { video: leader, id: leader.requestVideoFrameCallback(tick) };
    } else {
      this.tickHandle = { id: requestAnimationFrame(tick) };
    }
  }

  stopTicking() {
    const handle = this.tickHandle;
    if (!handle) return;
    if (handle.video) handle.video.cancelVideoFrameCallback(handle.id);
    else cancelAnimationFrame(handle.id);
    this.tickHandle = null;
  }

  /** One drift correction: every follower's time against the leader's (see the top), in
   * frames of the timeline's rate. */
  correct() {
    const leader = this.leader;
    if (leader.paused || leader.seeking) return;
    const target = leader.currentTime;
    const frame = 1 / this.fps;
    for (const video of this.videos.slice(1)) {
      if (video.seeking || video.ended || target >= video.duration) continue;
      const drift = target - video.currentTime; // > 0: the follower is behind
      if (Math.abs(drift) > RESYNC_FRAMES * frame) {
        this.corrections.resyncs += 1;
        this.restart(target);
        return;
      }
      let rate = this.rate;
      if (Math.abs(drift) > DEADBAND_FRAMES * frame) {
        rate = this.rate + clamp(drift / CATCH_UP_S, -MAX_NUDGE * this.rate, MAX_NUDGE * this.rate);
        this.corrections.nudges += 1;
      }
      if (video.playbackRate !== rate) video.playbackRate = rate;
    }
  }
}

// ---------------------------------------------------------------- controls

const KEY_HINTS = { play: "Space K", back: ",", forward: ".", slower: "[", faster: "]", loop: "L" };

function button(className, label, keys, title) {
  const el = document.createElement("button");
  el.type = "button";
  el.className = className;
  el.setAttribute("aria-keyshortcuts", keys);
  el.title = title;
  const kbd = document.createElement("kbd");
  kbd.textContent = keys.split(" ")[0] === "Space" ? "Space" : keys;
  const text = document.createElement("span");
  text.textContent = label;
  el.append(kbd, " ", text);
  return el;
}

/** The playback bar (built here: the rating template only holds a place for it) and the keys:
 * Space or K play/pause, `,` `.` one frame back/forward, `[` `]` slower/faster, L loop. */
export class VideoControls {
  constructor(player, host) {
    this.player = player;
    const bar = document.createElement("div");
    bar.className = "rate-video-bar";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Video playback (all videos together)");
    bar.hidden = true;
    this.play = button("vid-play", "Play", KEY_HINTS.play, "Play or pause all videos");
    this.back = button("vid-back", "‹ Frame", KEY_HINTS.back, "One frame back");
    this.forward = button("vid-forward", "Frame ›", KEY_HINTS.forward, "One frame forward");
    this.seek = document.createElement("input");
    this.seek.type = "range";
    this.seek.className = "vid-seek";
    this.seek.min = "0";
    this.seek.step = "1";
    this.seek.value = "0";
    this.seek.setAttribute("aria-label", "Position of all videos (frame)");
    this.time = document.createElement("span");
    this.time.className = "vid-time";
    this.speed = document.createElement("select");
    this.speed.className = "vid-rate";
    this.speed.setAttribute("aria-label", "Speed of all videos ([ slower, ] faster)");
    for (const rate of RATES) this.speed.append(new Option(`${rate}×`, String(rate)));
    const loopLabel = document.createElement("label");
    loopLabel.className = "vid-loop-label";
    this.loop = document.createElement("input");
    this.loop.type = "checkbox";
    this.loop.className = "vid-loop";
    const loopKbd = document.createElement("kbd");
    loopKbd.textContent = "L";
    loopLabel.append(this.loop, " ", loopKbd, " Loop");
    bar.append(this.play, this.back, this.seek, this.forward, this.time, this.speed, loopLabel);
    host.prepend(bar);
    this.bar = bar;

    this.play.addEventListener("click", () => player.toggle());
    this.back.addEventListener("click", () => player.step(-1));
    this.forward.addEventListener("click", () => player.step(1));
    this.seek.addEventListener("input", () => player.seekFrame(Number(this.seek.value)));
    // Give the keys back to the page: a focused range or select would take the arrows (votes),
    // and the page ignores every key aimed at an input. A range's `change` is not enough: it
    // fires only when the value at release differs from the value at press, so a click on the
    // thumb fires none, and neither did a click whose seek re-rendered the bar at its old frame
    // before the bar had focus. Focus goes back when the pointer is released, wherever that is
    // (a drag may end off the bar); `pressed` keeps render() off the bar meanwhile.
    this.pressed = false;
    this.seek.addEventListener("change", () => this.seek.blur());
    this.seek.addEventListener("pointerdown", () => {
      this.pressed = true;
      const giveBack = () => {
        window.removeEventListener("pointerup", giveBack, true);
        window.removeEventListener("pointercancel", giveBack, true);
        this.pressed = false;
        if (document.activeElement === this.seek) this.seek.blur();
      };
      window.addEventListener("pointerup", giveBack, true);
      window.addEventListener("pointercancel", giveBack, true);
    });
    this.speed.addEventListener("change", () => {
      player.setRate(Number(this.speed.value));
      this.speed.blur();
    });
    this.loop.addEventListener("change", () => {
      player.setLoop(this.loop.checked);
      this.loop.blur();
    });
    player.addEventListener("change", () => this.render());
    player.addEventListener("tick", () => this.render());
    this.render();
  }

  show(visible) {
    if (this.bar.hidden === visible) this.bar.hidden = !visible;
    this.render();
  }

  /** Space/K, `,` `.`, `[` `]`, L: true when `key` (KeyboardEvent.key, letters lower case) is
   * one of them. */
  key(key) {
    const player = this.player;
    if (key === " " || key === "k") player.toggle();
    else if (key === ",") player.step(-1);
    else if (key === ".") player.step(1);
    else if (key === "[") player.stepRate(-1);
    else if (key === "]") player.stepRate(1);
    else if (key === "l") player.setLoop(!player.loop);
    else return false;
    return true;
  }

  render() {
    const player = this.player;
    const label = player.playing ? "Pause" : "Play";
    const text = this.play.querySelector("span");
    if (text.textContent !== label) text.textContent = label;
    this.play.setAttribute("aria-pressed", String(player.playing));
    // For scripts and tests: "busy" while an operation runs (seeks, waiting for data).
    const state = player.busy ? "busy" : player.playing ? "playing" : "paused";
    if (this.bar.dataset.state !== state) this.bar.dataset.state = state;
    const last = player.lastFrame;
    const frame = player.currentFrame();
    if (this.seek.max !== String(last)) this.seek.max = String(last);
    if (!this.pressed && document.activeElement !== this.seek
        && this.seek.value !== String(frame)) {
      this.seek.value = String(frame);
    }
    // Timeline frames (the highest rate shown: what `,` `.` step) and the leader's time.
    const seconds = `${player.time().toFixed(2)} s`;
    const time = `${(frame + 1)} / ${last + 1} · ${seconds}`;
    if (this.time.textContent !== time) this.time.textContent = time;
    if (this.seek.getAttribute("aria-valuetext") !== seconds) {
      this.seek.setAttribute("aria-valuetext", seconds);
    }
    if (this.speed.value !== String(player.rate)) this.speed.value = String(player.rate);
    if (this.loop.checked !== player.loop) this.loop.checked = player.loop;
  }
}

// ---------------------------------------------------------------- the rating page's panes

/** Whether the task shows videos: its compared items (`items(task)`, the source aside)
 * carry `video` (a campaign compares one medium). */
export function isVideoTask(task, items = pairItems) {
  return Boolean(task) && items(task).some(([side, item]) => (
    side !== "source" && item && item.video));
}

/**
 * The rating page's stage for every task: videos here, images through `images` (a Stage).
 * Same interface as Stage (show, prepare, retry, allDrawn, clear), plus key(). `options`:
 * `items` (a task's items by pane, as Stage takes: pairItems, the default, or gridItems),
 * `autoplay` (false: a task's videos wait for Play; they wait anyway when the annotator's
 * system asks for reduced motion), and SyncedVideos' `rate` and `loop`.
 */
export class VideoStage {
  /**
   * @param {Element} root the element holding the `.pane` figures
   * @param {import("./zoom.js").SyncedView} view the zoom shared by the panes
   * @param {import("./stage.js").Stage} images the image stage
   * @param {Element} barHost where the playback bar goes (its first child)
   */
  constructor(root, view, images, barHost, options = {}) {
    this.view = view;
    this.images = images;
    this.items = options.items || pairItems;
    this.player = new SyncedVideos(options);
    this.controls = new VideoControls(this.player, barHost);
    this.autoplay = options.autoplay !== false;
    this.active = false; // a video task is shown
    this.showing = 0;
    this.panes = {};
    for (const el of root.querySelectorAll(".pane")) {
      const view = el.querySelector(".pane-view");
      const make = (className) => {
        const video = document.createElement("video");
        video.className = className;
        video.muted = true;
        video.playsInline = true;
        video.preload = "auto";
        video.disablePictureInPicture = true;
        video.disableRemotePlayback = true;
        video.setAttribute("aria-hidden", "true");
        view.append(video);
        return video;
      };
      const error = el.querySelector(".pane-error");
      const message = error && error.querySelector("p");
      this.panes[el.dataset.side] = {
        side: el.dataset.side,
        el,
        view,
        error,
        // The template's "The left image did not load": said of a video while one is shown.
        message,
        imageText: message ? message.textContent : "",
        shown: make("pane-video"),
        next: make("pane-video-next"),
        nextUrl: null,
        item: null,
        drawn: null,
        retries: 0,
      };
    }
  }

  /** Show `task`; resolves like Stage.show (failed sides, or null when replaced). */
  async show(task) {
    if (!isVideoTask(task, this.items)) {
      this.stopVideos();
      return this.images.show(task);
    }
    const token = ++this.showing;
    this.active = true;
    this.player.detach();
    // A still source image (an edit of a picture into a video) is the image stage's to show;
    // it clears the shared zoom and hides the panes it has nothing for.
    const still = task.source_image && !task.source_image.video ? task.source_image : null;
    const imageShown = still ? this.images.show({ prompt: task.prompt, source_image: still })
      : (this.images.clear(), Promise.resolve([]));
    if (!still) {
      this.view.clear();
      this.view.reset();
    }
    const waits = [imageShown.then((failed) => failed || [])];
    const entries = this.items(task);
    // Leader first: the compared items in the task's order (left, right; slots 0..K-1), the
    // source last.
    const rank = new Map(entries.filter(([side]) => side !== "source")
      .map(([side], index) => [side, index]));
    const byPane = new Map(entries);
    const shown = [...Object.keys(this.panes)].sort(
      (a, b) => (rank.get(a) ?? entries.length) - (rank.get(b) ?? entries.length))
      .map((side) => {
        const entry = byPane.get(side);
        return [side, entry && entry.video ? entry : null];
      });
    // One timeline for every video shown, the source's included (`timeline`).
    const clips = shown.filter(([, item]) => item).map(([, item]) => item.video);
    const { fps } = timeline(clips);
    const videos = [];
    for (const [side, item] of shown) {
      const pane = this.panes[side];
      pane.item = item;
      if (!item) {
        if (!(side === "source" && still)) {
          setHidden(pane.el, true);
          this.unload(pane.shown);
        }
        continue;
      }
      setHidden(pane.el, false);
      setHidden(pane.error, true);
      if (pane.el.dataset.kind !== "video") pane.el.dataset.kind = "video";
      if (pane.message) setText(pane.message, pane.imageText.replace(/\bimage\b/g, "video"));
      pane.drawn = this.showVideo(pane, item, fps);
      videos.push(pane.shown);
      waits.push(pane.drawn.then((ok) => (ok ? [] : [side])));
    }
    this.player.attach(videos, clips);
    this.controls.show(true);
    const failed = (await Promise.all(waits)).flat();
    if (token !== this.showing) return null;
    for (const side of failed) setHidden(this.panes[side].error, false);
    if (!failed.length && this.startsPlaying()) this.player.play();
    return failed;
  }

  /** Put `item`'s video in the pane (the prepared one if it is); resolves with whether its
   * first frame (of a timeline at `fps`) is decoded and drawn. */
  showVideo(pane, item, fps, url = item.video.url) {
    let video;
    if (pane.nextUrl === url) {
      // Prepared: swap the two elements' roles, as Stage does with images.
      const { shown, next } = pane;
      next.classList.replace("pane-video-next", "pane-video");
      shown.classList.replace("pane-video", "pane-video-next");
      pane.shown = next;
      pane.next = shown;
      pane.nextUrl = null;
      this.view.setStandby(pane.view, null);
      this.unload(pane.next);
      video = pane.shown;
    } else {
      video = pane.shown;
      video.src = url;
      video.load();
    }
    const { width, height } = size(item);
    this.view.add({ el: pane.view, img: video, width, height });
    return firstFrame(video, fps);
  }

  /** Whether a task's videos start by themselves once drawn: not when the system asks for
   * reduced motion (WCAG 2.3.3: motion nobody started); asked at each task, as the setting
   * may change while the page is open. */
  startsPlaying() {
    return this.autoplay
      && !(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  /** Load the next task's videos into the panes' standby elements (first frame decoded). */
  prepare(task) {
    if (!isVideoTask(task, this.items)) {
      this.images.prepare(task);
      return;
    }
    const entries = this.items(task);
    const { fps } = timeline(entries.filter(([, item]) => item && item.video)
      .map(([, item]) => item.video));
    for (const [side, item] of entries) {
      const pane = this.panes[side];
      if (!pane || !item || !item.video || pane.nextUrl === item.video.url) continue;
      if (pane.shown.getAttribute("src") === item.video.url) continue;
      pane.nextUrl = item.video.url;
      pane.next.src = item.video.url;
      pane.next.load();
      const { width, height } = size(item);
      this.view.setStandby(pane.view, pane.next, width, height);
      firstFrame(pane.next, fps);
    }
  }

  /** Load a failed pane again; resolves with true once it is drawn. */
  async retry(side) {
    const pane = this.panes[side];
    if (!this.active || !pane || !pane.item) return this.images.retry(side);
    const token = this.showing;
    setHidden(pane.error, true);
    pane.retries += 1;
    this.view.remove(pane.view);
    const url = retryUrl(pane.item.video.url, pane.retries);
    pane.drawn = this.showVideo(pane, pane.item, this.player.fps, url);
    const ok = await pane.drawn;
    if (token === this.showing && !ok) setHidden(pane.error, false);
    // The last pane to come back starts the pair, as show() would have.
    if (ok && this.startsPlaying() && token === this.showing && !this.player.playing
        && await this.allDrawn() && token === this.showing) this.player.play();
    return ok && token === this.showing;
  }

  async allDrawn() {
    if (!this.active) return this.images.allDrawn();
    const shown = Object.values(this.panes).filter((pane) => pane.item);
    const videos = (await Promise.all(shown.map((pane) => pane.drawn))).every(Boolean);
    return videos && this.images.allDrawn();
  }

  /** Nothing on screen (all done). */
  clear() {
    this.stopVideos();
    this.images.clear();
  }

  /** The playback keys while videos are shown; true when `key` was one. */
  key(key) {
    return this.active && this.controls.key(key);
  }

  stopVideos() {
    this.showing += 1;
    this.active = false;
    this.player.detach();
    this.controls.show(false);
    for (const pane of Object.values(this.panes)) {
      pane.item = null;
      if (pane.message) setText(pane.message, pane.imageText);
      this.unload(pane.shown);
    }
  }

  unload(video) {
    if (!video.hasAttribute("src")) return;
    video.pause();
    video.removeAttribute("src");
    video.load(); // frees the decoder
  }
}

/**
 * Resolves with true once `video` has its first frame decoded (seeked to the middle of frame
 * 0 of a timeline at `fps`, which also drops the poster) and a frame later on screen; false if
 * it fails to load.
 */
export async function firstFrame(video, fps) {
  if (video.error) return false;
  // A seek in flight (the prepared video's own first-frame seek, when its pair is shown the
  // moment the next one was prepared) holds readyState under HAVE_CURRENT_DATA after
  // `loadeddata` has fired, and it fires once per load: waiting for it, the pair never came
  // up. The seek below supersedes that one, and its `seeked` says the frame is there.
  if (video.readyState < HAVE_CURRENT_DATA && !video.seeking) {
    // Not "emptied": load() queues one for the file this element held before.
    const event = await once(video, ["loadeddata", "error"]);
    if (event !== "loadeddata") return false;
  }
  video.currentTime = 0.5 / fps;
  const event = await once(video, ["seeked", "error"]);
  if (event !== "seeked") return false;
  await nextFrame();
  return !video.error;
}

function retryUrl(url, attempt) {
  const base = url.replace(/[?&]retry=\d+$/, "");
  return `${base}${base.includes("?") ? "&" : "?"}retry=${attempt}`;
}

function size(item) {
  const video = item.video;
  return { width: video.width || item.width, height: video.height || item.height };
}

function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
