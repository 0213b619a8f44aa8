"""Video files for the browser tests, made with PyAV, whose frames say which frame they are.

Every frame carries its index in binary along its top band (BITS blocks, white for 1, black
for 0, each a quarter of the height tall), large enough to survive lossy VP9 unchanged. The
page reads it back from a canvas (tests/browser/video_harness.js: ``frameIndex``), so a test
sees which frame each video actually shows, not only what its currentTime says.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

BITS = 8  # up to 256 frames


@dataclass(frozen=True)
class Clip:
    data: bytes
    width: int
    height: int
    fps: int
    frames: int
    mime: str = "video/webm"

    @property
    def duration(self) -> float:
        """Seconds: frames / fps."""
        return self.frames / self.fps


def frame_pixels(index: int, width: int, height: int, hue: int) -> np.ndarray:
    """RGB frame ``index``: the index's bits in the top band, a moving bar below it (so
    the clip looks like motion), a background tinted by ``hue``."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (40 + hue % 120, 60, 160 - hue % 120)
    band = height // 4
    block = width // BITS
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        img[:band, bit * block:(bit + 1) * block] = 255 if on else 0
    x = (index * 7) % max(1, width - 20)
    img[band + 10:height - 10, x:x + 20] = (240, 220, 80)
    return img


def make_video(*, width: int = 320, height: int = 180, fps: int = 30, frames: int = 120,
               hue: int = 0, codec: str = "libvpx-vp9") -> Clip:
    """A WebM (VP9) clip of ``frames`` frames at ``fps``, a keyframe every 15 frames (as a
    web rendition would have, so seeks decode few frames)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream(codec, rate=fps, options={
            "crf": "18", "b:v": "0", "deadline": "realtime", "cpu-used": "8"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 15
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_pixels(index, width, height, hue),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Clip(buffer.getvalue(), width, height, fps, frames)


def serve_bytes(route, data: bytes, mime: str) -> None:
    """Answer a Playwright route with ``data``, honouring a Range request (206) as a media
    server does: Chromium asks for ranges when it seeks."""
    header = route.request.headers.get("range", "")
    if header.startswith("bytes="):
        first, _, last = header[len("bytes="):].partition("-")
        start = int(first or 0)
        end = min(int(last) if last else len(data) - 1, len(data) - 1)
        route.fulfill(status=206, body=data[start:end + 1], headers={
            "Content-Type": mime, "Accept-Ranges": "bytes",
            "Content-Range": f"bytes {start}-{end}/{len(data)}"})
    else:
        route.fulfill(status=200, body=data,
                      headers={"Content-Type": mime, "Accept-Ranges": "bytes"})


def measure_script(selector: str) -> str:
    """A page function returning, for the videos ``selector`` matches, their current times,
    the frame index their pixels carry (:func:`frame_pixels`' bits), whether they are paused
    and their sources, read in one task."""
    return """() => {
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const index = (video) => {
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    context.drawImage(video, 0, 0);
    const row = context.getImageData(0, Math.floor(canvas.height / 8), canvas.width, 1).data;
    const block = Math.floor(canvas.width / 8);
    let n = 0;
    for (let bit = 0; bit < 8; bit += 1) n = n * 2 + (row[(bit * block + (block >> 1)) * 4] > 127);
    return n;
  };
  const videos = [...document.querySelectorAll(SELECTOR)];
  return { times: videos.map((v) => v.currentTime), frames: videos.map(index),
           paused: videos.map((v) => v.paused), sources: videos.map((v) => v.src) };
}""".replace("SELECTOR", json.dumps(selector))


def settle_showing(page, settled: str, measure: str,
                   frames: list[int] | Callable[[list[int]], bool] | None = None,
                   timeout_s: float = 5) -> dict:
    """Wait for ``settled`` (a page function of ``"paused"``), then until ``measure``'s
    videos' pixels show ``frames`` (a list, in the videos' order; or a test of that list;
    default: one frame, the same in all), for up to ``timeout_s``; returns the last measure.
    The player ends an operation once every video presented its frame or after
    PRESENT_WAIT_MS (static/js/rate/video.js): on a loaded host a compositor can swap the
    frame in later, and what a test checks is where every video comes to rest, not the
    instant the bar turned."""
    if frames is None:
        def shown(seen: list[int]) -> bool:
            return len(set(seen)) == 1
    elif callable(frames):
        shown = frames
    else:
        def shown(seen: list[int]) -> bool:
            return seen == frames

    def measured() -> dict:
        page.wait_for_function(settled, arg="paused")
        return page.evaluate(measure)

    return measured_until(page, measured, lambda state: shown(state["frames"]), timeout_s)


def measured_until(page, measure: Callable[[], dict], done: Callable[[dict], bool],
                   timeout_s: float) -> dict:
    """``measure()`` every 50 ms until ``done`` of it, for up to ``timeout_s``; returns the
    last measure (the caller asserts on it)."""
    state = measure()
    deadline = time.monotonic() + timeout_s
    while not done(state) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
        state = measure()
    return state
