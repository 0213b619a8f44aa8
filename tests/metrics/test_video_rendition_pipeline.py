"""The rendition writer decodes in a thread of its own (evalhub/blobs/video_display.py,
``_prefetched``): the items arrive in order, a producer's error arrives after the items before
it, a consumer that stops early stops the producer, and at most ``depth`` items wait; the
rendition's bytes are those of a plain decode-then-encode loop with the same options.

(Here rather than in tests/blobs, whose files another helper owns; the module is pure PyAV.)"""

from __future__ import annotations

import io
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from evalhub.blobs.video_display import VP9_OPTIONS, _prefetched, write_rendition
from metrics.video_frames import write_test_video


def test_prefetched_items_arrive_in_order_from_another_thread():
    producers: set[str] = set()

    def items():
        for i in range(50):
            producers.add(threading.current_thread().name)
            yield i

    assert list(_prefetched(items(), depth=3)) == list(range(50))
    assert producers == {"evalhub-video-decode"}


def test_a_producer_error_is_raised_after_the_items_before_it():
    def items():
        yield "a"
        yield "b"
        raise av.error.InvalidDataError(1094995529, "truncated")

    received = []
    with pytest.raises(av.error.InvalidDataError):
        for item in _prefetched(items(), depth=4):
            received.append(item)
    assert received == ["a", "b"]


def test_a_consumer_that_stops_early_stops_the_producer_within_depth_items():
    produced = 0

    def endless():
        nonlocal produced
        while True:
            produced += 1
            yield produced

    stream = _prefetched(endless(), depth=4)
    assert next(stream) == 1
    stream.close()  # joins the producer: the count below is final
    # one consumed, at most 4 waiting in the queue, one more made and not put
    assert 1 <= produced <= 1 + 4 + 1
    assert not any(t.name == "evalhub-video-decode" for t in threading.enumerate())


def _serial_rendition(original: bytes, fps: int) -> bytes:
    """The rendition as a plain loop: decode a frame, encode it, the writer's own settings."""
    out_buf = io.BytesIO()
    rate = Fraction(fps)
    with av.open(io.BytesIO(original)) as reader, av.open(
        out_buf, mode="w", format="webm", options={"fflags": "+bitexact"}
    ) as writer:
        stream = reader.streams.video[0]
        out = writer.add_stream("libvpx-vp9", rate=rate)
        out.width, out.height, out.pix_fmt = stream.width, stream.height, "yuv420p"
        out.codec_context.flags |= av.codec.context.Flags.bitexact
        out.codec_context.gop_size = fps
        out.options = dict(VP9_OPTIONS)
        for count, frame in enumerate(reader.decode(stream)):
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = count, 1 / rate
            for packet in out.encode(picture):
                writer.mux(packet)
        for packet in out.encode():
            writer.mux(packet)
    return out_buf.getvalue()


def test_decoding_in_a_thread_gives_the_bytes_of_a_plain_decode_then_encode_loop(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)
    original = write_test_video(tmp_path / "noise.mp4", frames, fps=12).read_bytes()

    rendition = io.BytesIO()
    assert write_rendition(io.BytesIO(original), rendition, io.BytesIO(), fps=12) == 30
    assert rendition.getvalue() == _serial_rendition(original, fps=12)
