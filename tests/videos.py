"""Small real video files for tests, good and hostile, written with PyAV."""

from __future__ import annotations

import io
import os
import tempfile

import av
import numpy as np


def moving_square_frames(count: int, size: tuple[int, int], *, seed: int = 0) -> list[np.ndarray]:
    """``count`` RGB frames of a white square moving right on a coloured background."""
    width, height = size
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 200, 3, dtype=np.uint8)
    frames = []
    for index in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = background
        x = (index * 3) % max(1, width - 8)
        frame[height // 4: height // 4 + 8, x: x + 8] = 255
        frames.append(frame)
    return frames


def video_bytes(*, frames: int = 12, size: tuple[int, int] = (64, 48), fps: int = 12,
                codec: str = "libx264", container: str = "mp4", seed: int = 0,
                metadata: dict[str, str] | None = None, audio: bool = False,
                faststart: bool = False) -> bytes:
    """A video of a moving square. ``metadata`` goes into the container's tags (a title naming
    a model, say); ``audio`` adds a silent AAC-less PCM/Opus track where the container allows."""
    options = {"movflags": "+faststart"} if faststart else {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"clip.{container}")
        with av.open(path, mode="w", format=container, options=options) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            for key, value in (metadata or {}).items():
                out.metadata[key] = value
            sound = out.add_stream("libopus" if container == "webm" else "aac",
                                   rate=48000) if audio else None
            for frame in moving_square_frames(frames, size, seed=seed):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
            if sound is not None:
                samples = np.zeros((1, 960 * 10), np.float32)
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate = 48000
                for packet in sound.encode(chunk):
                    out.mux(packet)
                for packet in sound.encode():
                    out.mux(packet)
        with open(path, "rb") as handle:
            return handle.read()


def webm_bytes(**kwargs) -> bytes:
    return video_bytes(codec="libvpx-vp9", container="webm", **kwargs)


def truncated(data: bytes) -> bytes:
    """The first half of a file, as an interrupted download leaves it."""
    return data[: len(data) // 2]


def decode_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
