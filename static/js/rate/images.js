// Getting images on screen: preloading plain files, and opening tiled ones in OpenSeadragon.

const decoding = new Map(); // url -> Promise<void> while a decode is in flight

/** Download and decode an image off-screen (the prefetch), resolving when it can be painted.
 * Not remembered once done: Chromium drops decoded pixels nobody shows, so an image seen in an
 * earlier pair is decoded again here, before its pair is shown, not after the keypress
 * (measured with bench/rating_page.py: pairs with a seen image drew at p50 180 ms). */
export function preloadImage(url) {
  if (!decoding.has(url)) {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    const ready = img.decode().then(
      () => { decoding.delete(url); },
      () => { decoding.delete(url); throw new Error(`could not load ${url}`); });
    decoding.set(url, ready);
  }
  return decoding.get(url);
}

/** Preload what a task shows: whole files, or only the descriptor of a tiled image (which
 * also makes the server build a missing pyramid before the pair is on screen). */
export function preloadTask(task) {
  const images = [task.left, task.right, task.source_image].filter(Boolean);
  return Promise.allSettled(images.map((image) => (
    image.tiles ? fetch(image.tiles, { credentials: "same-origin" }) : preloadImage(image.url)
  )));
}

let osdLoading = null;

/** OpenSeadragon is 350 kB: load it only when a campaign actually has a tiled image. */
export function loadOpenSeadragon(base) {
  if (window.OpenSeadragon) return Promise.resolve(window.OpenSeadragon);
  if (!osdLoading) {
    osdLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${base}openseadragon.min.js`;
      script.onload = () => resolve(window.OpenSeadragon);
      script.onerror = () => {
        osdLoading = null;
        reject(new Error("could not load the tile viewer"));
      };
      document.head.append(script);
    });
  }
  return osdLoading;
}

/** Open a DZI pyramid in `container`; resolves with the viewer once the descriptor is read
 * (nothing drawn yet: see tilesDrawn), rejects if it cannot be opened. */
export async function openViewer(container, dziUrl, base) {
  const OSD = await loadOpenSeadragon(base);
  const viewer = OSD({
    element: container,
    tileSources: dziUrl,
    prefixUrl: `${base}images/`,
    drawer: "canvas", // WebGL buys nothing here and fails on machines without a GPU
    showNavigationControl: false,
    mouseNavEnabled: false, // the shared SyncedView handles every input
    visibilityRatio: 0,
    constrainDuringPan: false,
    minZoomImageRatio: 0.01,
    maxZoomPixelRatio: 64,
    animationTime: 0,
    blendTime: 0,
    immediateRender: true,
    ajaxWithCredentials: true,
    // A tile that failed is asked for again before the pane reports an error.
    tileRetryMax: 2,
    tileRetryDelay: 1000,
  });
  try {
    await new Promise((resolve, reject) => {
      viewer.addOnceHandler("open-failed", (event) => {
        reject(new Error(event.message || "tiles failed to open"));
      });
      viewer.addOnceHandler("open", resolve);
    });
  } catch (error) {
    viewer.destroy();
    throw error;
  }
  return viewer;
}

/**
 * Resolves once every tile the viewer's current view needs is loaded and drawn; rejects when a
 * tile could not be loaded (after OpenSeadragon's retries and its 30 s timeout). No time
 * limit of its own: a slow tile keeps the pane "loading", it never counts as drawn.
 */
export function tilesDrawn(viewer) {
  return new Promise((resolve, reject) => {
    const item = viewer.world.getItemAt(0);
    if (!item) {
      reject(new Error("no image in the tile viewer"));
      return;
    }
    const failed = (event) => {
      cleanup();
      reject(new Error(event.message || "a tile did not load"));
    };
    const loaded = (event) => {
      if (!event.fullyLoaded) return;
      cleanup();
      // OpenSeadragon draws in the same animation frame in which it finds the view fully
      // loaded; the next frame has it on screen.
      requestAnimationFrame(() => resolve());
    };
    const cleanup = () => {
      viewer.removeHandler("tile-load-failed", failed);
      item.removeHandler("fully-loaded-change", loaded);
    };
    viewer.addHandler("tile-load-failed", failed);
    item.addHandler("fully-loaded-change", loaded);
    if (item.getFullyLoaded()) loaded({ fullyLoaded: true });
  });
}

/**
 * Open a DZI pyramid in `container`. Resolves with the viewer once the visible tiles are drawn
 * (or after a few seconds, so a slow tile never blocks the gallery forever). The rating page
 * waits on tilesDrawn instead: it must never let a vote be cast on an undrawn pane.
 */
export async function openTiled(container, dziUrl, base) {
  const viewer = await openViewer(container, dziUrl, base);
  let timer;
  await Promise.race([
    tilesDrawn(viewer).catch(() => {}),
    new Promise((resolve) => { timer = setTimeout(resolve, 6000); }),
  ]);
  clearTimeout(timer);
  return viewer;
}
