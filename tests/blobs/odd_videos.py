"""Video files the import must refuse by what they are, written with PyAV: a WebM written
live (no duration in its header, so only decoding finds its length) and AVI files."""

from __future__ import annotations

import os
import tempfile

import av

from tests.videos import moving_square_frames


def _written(container: str, codec: str, *, frames: int, fps: int, size: tuple[int, int],
             pix_fmt: str, options: dict[str, str] | None = None) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"clip.{container}")
        with av.open(path, mode="w", format=container, options=options or {}) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = size
            stream.pix_fmt = pix_fmt
            for frame in moving_square_frames(frames, size):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        with open(path, "rb") as handle:
            return handle.read()


def live_webm_bytes(*, frames: int, fps: int = 10, size: tuple[int, int] = (32, 32)) -> bytes:
    """A VP8 WebM as a live recorder writes it: no Segment size, no duration, no frame count
    in its header."""
    return _written("webm", "libvpx", frames=frames, fps=fps, size=size, pix_fmt="yuv420p",
                    options={"live": "1"})


def avi_bytes(codec: str, *, frames: int = 6, size: tuple[int, int] = (32, 32)) -> bytes:
    """An AVI file: ``codec`` "mjpeg" (a camera's Motion JPEG) or "libx264" (H.264 in AVI)."""
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    return _written("avi", codec, frames=frames, fps=10, size=size, pix_fmt=pix_fmt)
