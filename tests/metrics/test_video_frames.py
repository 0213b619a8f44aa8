"""Streaming video decoding: sampling, on-the-fly resizing, batches, hostile input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from metrics.video_frames import (
    FrameSampling,
    VideoDecodeError,
    iter_frame_batches,
    output_size,
    probe,
    read_frames,
    sample_indices,
    write_test_video,
)


def numbered_frames(n: int, height: int = 64, width: int = 96) -> np.ndarray:
    """(n,H,W,3) uint8 frames whose grey level encodes the frame index (8 levels apart)."""
    levels = (16 + 8 * np.arange(n)).clip(0, 255).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, height, width, 3)).copy()


def decoded_index(frames) -> list[int]:
    """The frame index each decoded frame shows (inverse of numbered_frames, lossy codec)."""
    return [round((float(f.float().mean()) - 16) / 8) for f in frames]


@pytest.fixture(scope="module")
def clip30(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("v") / "n30.mp4", numbered_frames(30))


def test_probe_reads_geometry_rate_and_frame_count(clip30):
    info = probe(clip30)
    assert (info.width, info.height, info.frames, info.codec) == (96, 64, 30, "h264")
    assert info.fps == pytest.approx(24)
    assert info.duration_s == pytest.approx(30 / 24, abs=0.05)


def test_evenly_spaced_sampling_takes_exactly_those_frames(clip30):
    wanted = sample_indices(30, 7)
    assert wanted == [0, 5, 10, 14, 19, 24, 29]  # round(k * 29 / 6)
    batch = read_frames(clip30, sampling=FrameSampling(count=7), batch_size=3)
    assert batch.indices == wanted
    assert decoded_index(batch.frames) == wanted  # the pixels are those frames' pixels


def test_every_nth_with_a_limit_stops_decoding_early(clip30):
    batch = read_frames(clip30, sampling=FrameSampling(every=4, limit=3))
    assert batch.indices == [0, 4, 8]
    assert decoded_index(batch.frames) == [0, 4, 8]


def test_frames_are_resized_while_converting_and_keep_their_aspect(clip30):
    batch = read_frames(clip30, sampling=FrameSampling(count=2), short_side=32)
    assert batch.frames.shape == (2, 3, 32, 48)
    assert batch.frames.dtype.is_floating_point is False
    exact = read_frames(clip30, sampling=FrameSampling(count=2), size=(20, 10))
    assert exact.frames.shape == (2, 3, 10, 20)
    assert output_size(512, 288, size=None, short_side=224) == (398, 224)


def test_channels_last_batches_hold_the_same_frames_in_the_decoders_layout(clip30):
    sampling = FrameSampling(count=5)
    default = read_frames(clip30, sampling=sampling, batch_size=2)
    batches = list(iter_frame_batches(clip30, sampling=sampling, batch_size=2, channels_last=True))
    assert all(b.frames.is_contiguous(memory_format=torch.channels_last) for b in batches)
    assert default.frames.is_contiguous()
    assert torch.equal(torch.cat([b.frames for b in batches]), default.frames)


def test_batches_are_yielded_while_the_file_is_still_being_read(tmp_path):
    # Streaming, not "decode everything then batch": the first batch of a long clip arrives
    # after only part of the file was read, and no batch is larger than batch_size. That is
    # what keeps peak memory independent of the clip's length.
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, (240, 64, 64, 3), dtype=np.uint8)  # incompressible: big file
    path = write_test_video(tmp_path / "long.mp4", noisy, options={"g": "12"})
    data = path.read_bytes()

    class CountingFile(io.BytesIO):
        bytes_read = 0  # an MP4's index sits at its end: count bytes, not the furthest offset

        def read(self, size=-1):
            out = super().read(size)
            CountingFile.bytes_read += len(out)
            return out

    batches = iter_frame_batches(CountingFile(data), batch_size=4)
    first = next(batches)
    assert first.indices == [0, 1, 2, 3]
    assert CountingFile.bytes_read < len(data) / 2
    sizes = [first.frames.shape[0]] + [b.frames.shape[0] for b in batches]
    assert max(sizes) == 4 and sum(sizes) == 240


@pytest.mark.parametrize(
    "data",
    [b"", b"not a video at all" * 50, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000],
    ids=["empty", "garbage", "mp4-header-only"],
)
def test_unreadable_input_is_a_decode_error_not_a_crash(data):
    with pytest.raises(VideoDecodeError):
        read_frames(data)


def test_a_truncated_mp4_is_refused(clip30):
    data = clip30.read_bytes()
    with pytest.raises(VideoDecodeError):
        read_frames(data[: len(data) // 2])


def test_sampling_arguments_are_checked():
    with pytest.raises(ValueError):
        FrameSampling(every=0)
    with pytest.raises(ValueError):
        FrameSampling(count=4, every=2)
    assert FrameSampling(every=2, limit=16).describe() == "every=2,limit=16"
    assert FrameSampling(count=16).describe() == "count=16"
