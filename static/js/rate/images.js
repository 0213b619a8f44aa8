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

const DZI_NS = "http://schemas.microsoft.com/deepzoom/2008";
const MIN_PIXEL_RATIO = 0.5; // OpenSeadragon's minPixelRatio (its default; openViewer keeps it)
const pyramids = new WeakMap(); // tileSource() object -> the payload's pyramid

/** What OpenSeadragon opens for a tiled image: the descriptor's content built from the
 * pyramid's geometry in the payload (no round trip for the .dzi), else the descriptor URL.
 * `queryParams` (the annotator's tile grant, blobs/tile_grants.py) ends every tile URL. */
export function tileSource(image) {
  const pyramid = image.pyramid;
  if (!pyramid) return image.tiles;
  const source = {
    Image: {
      xmlns: DZI_NS,
      Url: pyramid.url,
      Format: pyramid.format,
      Overlap: String(pyramid.overlap),
      TileSize: String(pyramid.tile_size),
      Size: { Width: String(pyramid.width), Height: String(pyramid.height) },
    },
    queryParams: pyramid.query || "",
  };
  pyramids.set(source, pyramid);
  return source;
}

function maxLevel(pyramid) {
  return Math.ceil(Math.log2(Math.max(pyramid.width, pyramid.height, 1)));
}

/** Pixel size of `level` (blobs/tiles.py Pyramid.level_size: ceil(W / 2^(max - level))). */
function levelSize(pyramid, level) {
  const scale = 2 ** (maxLevel(pyramid) - level);
  return [Math.ceil(pyramid.width / scale), Math.ceil(pyramid.height / scale)];
}

/**
 * The level OpenSeadragon draws for `pyramid` at fit in a pane of `paneWidth` x `paneHeight`
 * CSS pixels.
 *
 * The image is shown `dw` = W * fit pixels wide; level L (of max = ceil(log2(max(W, H)))) is
 * W / 2^(max - L) pixels wide, so one of its pixels covers dw * 2^(max - L) / W screen
 * pixels. OpenSeadragon draws (with immediateRender, only) the finest level whose pixels
 * cover at least MIN_PIXEL_RATIO screen pixels: L = floor(log2(dw * 2^max / (W *
 * MIN_PIXEL_RATIO))), at most max.
 */
export function fitLevel(pyramid, paneWidth, paneHeight) {
  const { width, height } = pyramid;
  const max = maxLevel(pyramid);
  const fit = Math.min(paneWidth / width, paneHeight / height);
  // dw * 2^max / (W * MIN_PIXEL_RATIO) with dw = W * fit.
  return Math.max(0, Math.min(max, Math.floor(
    Math.log2((fit * 2 ** max) / MIN_PIXEL_RATIO) + 1e-9)));
}

function isWhole(pyramid, level) {
  return (pyramid.whole_levels || []).includes(level);
}

/** A level stored whole, as one picture (blobs/tiles.py whole_path); the grant ends it. */
function wholeUrl(pyramid, level) {
  return `${pyramid.url}${level}/whole.${pyramid.format}${pyramid.query || ""}`;
}

/** One tile of `level` (blobs/tiles.py tile_path); the grant ends it. */
function tileUrl(pyramid, level, col, row) {
  return `${pyramid.url}${level}/${col}_${row}.${pyramid.format}${pyramid.query || ""}`;
}

/**
 * The whole fit-level picture of `pyramid` for a pane of `paneWidth` x `paneHeight` CSS pixels
 * at `density` device pixels per CSS pixel, or null: {url, level, width, height}.
 *
 * Given only when the level OpenSeadragon would draw at fit (fitLevel) is stored whole and has
 * at least as many pixels as the pane shows of the image at fit (W * fit * density by
 * H * fit * density device pixels). Then that picture IS the view's pixels at fit: the viewer
 * would draw the same file, scaled the same way, so the pane may show it as a plain <img> and
 * count as drawn once it is decoded and on screen. With fewer pixels than shown (a dense
 * screen), it would be an upscaled stand-in, and the pane takes the viewer's path instead.
 */
export function fitPicture(pyramid, paneWidth, paneHeight, density = window.devicePixelRatio || 1) {
  if (!pyramid || !paneWidth || !paneHeight) return null;
  const level = fitLevel(pyramid, paneWidth, paneHeight);
  if (!isWhole(pyramid, level)) return null;
  const fit = Math.min(paneWidth / pyramid.width, paneHeight / pyramid.height);
  const [width, height] = levelSize(pyramid, level);
  // 1e-6: the level's size is rounded up (ceil), the shown size is not rounded at all.
  if (width < pyramid.width * fit * density - 1e-6
      || height < pyramid.height * fit * density - 1e-6) return null;
  return { url: wholeUrl(pyramid, level), level, width, height };
}

/**
 * The URLs of what OpenSeadragon draws first for `pyramid` at fit in a pane of `paneWidth` x
 * `paneHeight` CSS pixels: the fit level (fitLevel) as one picture when the server stores it
 * whole (`whole_levels`: blobs/tiles.py), else every tile of that level (its size and tile
 * grid follow the server's arithmetic: blobs/tiles.py Pyramid).
 */
export function fitTileUrls(pyramid, paneWidth, paneHeight) {
  const level = fitLevel(pyramid, paneWidth, paneHeight);
  if (isWhole(pyramid, level)) return [wholeUrl(pyramid, level)];
  const [levelWidth, levelHeight] = levelSize(pyramid, level);
  const cols = Math.ceil(levelWidth / pyramid.tile_size);
  const rows = Math.ceil(levelHeight / pyramid.tile_size);
  const urls = [];
  for (let col = 0; col < cols; col += 1) {
    for (let row = 0; row < rows; row += 1) {
      urls.push(tileUrl(pyramid, level, col, row));
    }
  }
  return urls;
}

/**
 * The tile source (OpenSeadragon's custom-source form: the DZI's geometry and URLs, with its
 * hooks) that asks for a whole level (one picture) where the server stores one, for a viewer
 * of `paneWidth` x `paneHeight` CSS pixels, or null when it stores none: that level
 * counts as one tile the level's size, at `level/whole.format`. Its pixels are the level's
 * own (the tiles are cut from them), so "drawn" keeps its meaning: every pixel of the view at
 * the level OpenSeadragon chose. Its base level (drawn under finer ones while they load, and
 * loaded along with them: its "closest level") becomes the fit level when that is whole, so at
 * fit the pane asks for exactly one file, and a deep zoom has the fit picture (cached) under
 * its tiles instead of a 480 px one.
 */
function wholeLevelSource(pyramid, paneWidth, paneHeight) {
  const whole = new Set(pyramid.whole_levels || []);
  if (!whole.size) return null;
  const size = pyramid.tile_size;
  let single = 0; // the finest level of one tile (OpenSeadragon's own closest level)
  while (single < maxLevel(pyramid)
         && Math.max(...levelSize(pyramid, single + 1)) <= size) single += 1;
  const fit = fitLevel(pyramid, paneWidth, paneHeight);
  const base = whole.has(fit) ? fit : single;
  // A custom tile source (OpenSeadragon calls these hooks; the geometry is the DZI's).
  return {
    width: pyramid.width,
    height: pyramid.height,
    tileSize: size,
    tileOverlap: pyramid.overlap,
    minLevel: 0,
    maxLevel: maxLevel(pyramid),
    tilesUrl: pyramid.url,
    getTileWidth: (level) => (whole.has(level) ? levelSize(pyramid, level)[0] : size),
    getTileHeight: (level) => (whole.has(level) ? levelSize(pyramid, level)[1] : size),
    getTileUrl: (level, x, y) => (whole.has(level) ? wholeUrl(pyramid, level)
      : tileUrl(pyramid, level, x, y)),
    getClosestLevel: () => base,
  };
}

const warming = new Map(); // URL -> its Image while it loads (kept so it is not collected)
const warmed = new Set(); // URLs asked for already (bounded: see warmFitTiles)
const WARMED_KEPT = 2000;

/**
 * Ask for a tiled image's pictures for the view at fit now (fitTileUrls), before its viewer
 * (or the viewer's script) is there: the viewer's requests for the same URLs are then
 * answered by the request already in flight, or by the browser's caches (tiles are
 * immutable). `pane` is the element the image will fill. An image without geometry in its
 * payload: only its descriptor.
 */
export function warmFitTiles(image, pane) {
  if (!image.pyramid) {
    fetch(image.tiles, { credentials: "same-origin" }).catch(() => {});
    return;
  }
  const width = pane.clientWidth;
  const height = pane.clientHeight;
  if (!width || !height) return; // not laid out (hidden): the viewer asks when shown
  for (const url of fitTileUrls(image.pyramid, width, height)) {
    if (warmed.has(url)) continue;
    if (warmed.size >= WARMED_KEPT) warmed.clear();
    warmed.add(url);
    const img = new Image();
    const done = () => warming.delete(url);
    img.onload = done;
    img.onerror = done;
    warming.set(url, img);
    img.src = url;
  }
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

/** Open a DZI pyramid in `container` (`source`: the descriptor's URL, or its content:
 * tileSource); resolves with the viewer once the descriptor is read (nothing drawn yet: see
 * tilesDrawn), rejects if it cannot be opened. */
export async function openViewer(container, source, base) {
  const OSD = await loadOpenSeadragon(base);
  const pyramid = pyramids.get(source);
  const whole = pyramid
    && wholeLevelSource(pyramid, container.clientWidth, container.clientHeight);
  const tileSources = whole || source;
  const viewer = OSD({
    element: container,
    tileSources,
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
