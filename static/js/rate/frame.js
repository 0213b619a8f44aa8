// Timing helpers: work that must not delay the frame that shows a new pair.

/** Resolves after the next animation frame (or 100 ms in a background tab without frames). */
export function nextFrame() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 100);
    requestAnimationFrame(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Run `fn` once the next frame has been produced: a task queued from the frame's
 * animation callback runs after its style, layout and paint. */
export function afterFrame(fn) {
  nextFrame().then(() => setTimeout(fn, 0));
}
