// The video player of the rating page on a page of its own (tests/browser/test_video_sync.py
// serves it): the rating page's pane markup, the shared zoom, the image stage and the video
// stage, and the task from the page's JSON. Exposes what the test reads.

import { Stage } from "/static/js/rate/stage.js";
import { VideoStage } from "/static/js/rate/video.js";
import { SyncedView } from "/static/js/rate/zoom.js";

const task = JSON.parse(document.getElementById("task").textContent);
// As rate.js does: a third column for an edit's source.
document.getElementById("rate-app").classList.toggle("has-source", Boolean(task.source_image));
const root = document.getElementById("rate-stage");
const view = new SyncedView();
const images = new Stage(root, view, "/static/vendor/openseadragon/");
const stage = new VideoStage(root, view, images, document.getElementById("answers"),
                             { autoplay: false });
const BITS = 8;
const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });

/** Which frame `video` shows: the index its pixels carry (tests/browser/videos.py). */
function frameIndex(video) {
  const { videoWidth: width, videoHeight: height } = video;
  canvas.width = width;
  canvas.height = height;
  context.drawImage(video, 0, 0, width, height);
  const row = context.getImageData(0, Math.floor(height / 8), width, 1).data;
  const block = Math.floor(width / BITS);
  let index = 0;
  for (let bit = 0; bit < BITS; bit += 1) {
    const x = bit * block + Math.floor(block / 2);
    index = index * 2 + (row[x * 4] > 127 ? 1 : 0);
  }
  return index;
}

/** The first two videos' times and shown frames (and every video's), read in one task. */
function measure() {
  const videos = stage.player.videos;
  const [a, b] = videos;
  return {
    ta: a.currentTime, tb: b.currentTime, fa: frameIndex(a), fb: frameIndex(b),
    paused: videos.map((v) => v.paused), rates: videos.map((v) => v.playbackRate),
    times: videos.map((v) => v.currentTime), frames: videos.map(frameIndex),
    fps: stage.player.rates, durations: videos.map((v) => v.duration),
  };
}

/** The worst drift over `frames` animation frames of playback (after it settled). */
async function sampleDrift(frames) {
  let worst = { dt: 0, df: 0 };
  for (let i = 0; i < frames; i += 1) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const m = measure();
    worst = {
      dt: Math.max(worst.dt, Math.abs(m.ta - m.tb)),
      df: Math.max(worst.df, Math.abs(m.fa - m.fb)),
    };
  }
  return worst;
}

document.addEventListener("keydown", (event) => {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (stage.key(key)) event.preventDefault();
});

window.harness = { stage, player: stage.player, view, measure, sampleDrift, frameIndex };
stage.show(task).then((failed) => {
  document.body.dataset.failed = JSON.stringify(failed);
  document.body.dataset.ready = "1";
});
