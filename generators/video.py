"""Video outputs of generators: frames in, a deterministic MP4 (H.264) out.

A video generator yields a :class:`~generators.base.GenerationResult` whose ``video`` is a
:class:`Video` (frames as PIL images plus a frame rate) and whose ``image`` is the poster frame
(the middle one). :func:`encode_mp4` writes the file EvalHub stores as the run's output:
H.264 in MP4 at CRF 16 (visually lossless for these clips), ``yuv420p``, one encoder thread and
FFmpeg's bit-exact flags, so identical frames always give identical bytes (content addressing
then stores a repeated output once). Sizes are cropped to even numbers (4:2:0 needs them).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image

# Visually lossless for synthetic and diffusion clips; the web rendition is re-encoded anyway.
MP4_CRF = "16"


@dataclass(frozen=True)
class Video:
    """A generated clip: ``frames`` (RGB, same size) shown at ``fps`` frames per second."""

    frames: tuple[Image.Image, ...]
    fps: float

    @property
    def poster(self) -> Image.Image:
        """The middle frame (``frames[len // 2]``), the clip's still."""
        return self.frames[len(self.frames) // 2]


def fps_fraction(fps: float) -> Fraction:
    """The frame rate as a fraction with a small denominator (24, 30000/1001, 12.5 ...)."""
    return Fraction(fps).limit_denominator(1001)


def encode_mp4(frames: Sequence[Image.Image], fps: float) -> bytes:
    """Encode ``frames`` as H.264 MP4 deterministically (see the module doc)."""
    import av  # imported here: listing generators must not need PyAV

    if not frames:
        raise ValueError("a video needs at least one frame")
    width, height = frames[0].size
    width, height = width - width % 2, height - height % 2
    if width < 2 or height < 2:
        raise ValueError(f"frames of {frames[0].size} are too small for a video")
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4",
                 options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fps_fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.options = {"crf": MP4_CRF, "preset": "medium"}
        for frame in frames:
            rgb = frame.convert("RGB")
            if rgb.size != (width, height):
                rgb = rgb.crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(rgb)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
