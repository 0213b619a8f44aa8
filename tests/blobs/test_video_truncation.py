"""A video cut short is refused whatever stream its missing bytes belonged to: validation
checks the file's own structure (MP4 boxes, the Matroska Segment's size), demuxes every packet
of every stream to the end, and compares where the packets end with the container's declared
end (which covers a sound track longer than the pictures)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from evalhub.blobs.video_validation import InvalidVideo, VideoLimits, inspect_video

LIMITS = VideoLimits(max_bytes=10**8, max_seconds=20, max_frames=600, max_pixels=640 * 480)
FPS, FRAMES = 8, 24  # 3 s of pictures
CUTS = [0.3, 0.5, 0.7, 0.9, 0.97]


def _with_sound(*, container: str, sound_seconds: float) -> bytes:
    """FRAMES frames of a changing picture and ``sound_seconds`` of a tone, interleaved by
    time as a muxer writes them (VP9 + Opus in WebM, H.264 + AAC in MP4)."""
    codecs = {"webm": ("libvpx-vp9", "libopus"), "mp4": ("libx264", "aac")}[container]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        video = out.add_stream(codecs[0], rate=FPS)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = out.add_stream(codecs[1], rate=48000)
        chunk = 1024 if container == "mp4" else 960
        total = int(sound_seconds * 48000)
        frame = sample = 0
        while frame < FRAMES or sample < total:
            if frame < FRAMES and (frame / FPS <= sample / 48000 or sample >= total):
                picture = np.full((64, 64, 3), (frame * 10) % 256, np.uint8)
                picture[8:24, frame:frame + 16] = 255
                for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    out.mux(packet)
                frame += 1
            else:
                n = min(chunk, total - sample)
                tone = np.sin(np.arange(sample, sample + n) / 20, dtype=np.float32)[None] * 0.3
                samples = np.zeros((1, chunk), np.float32)
                samples[:, :n] = tone
                audio = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                audio.sample_rate, audio.pts = 48000, sample
                for packet in sound.encode(audio):
                    out.mux(packet)
                sample += n
        for stream in (video, sound):
            for packet in stream.encode():
                out.mux(packet)
    return buf.getvalue()


def _segment_size_unknown(data: bytes) -> bytes:
    """The same WebM with its Segment's size written as "unknown" (as a live muxer leaves it),
    so that only the demux checks can find a cut."""
    pos = data.index(bytes.fromhex("18538067")) + 4
    assert data[pos] == 0x01, "FFmpeg reserves an 8-byte Segment size"
    return data[:pos] + b"\x01" + b"\xff" * 7 + data[pos + 8:]


@pytest.fixture(scope="module", params=[3.0, 6.0, 2.0],
                ids=["sound-as-long", "sound-longer", "sound-shorter"])
def webm(request) -> bytes:
    return _with_sound(container="webm", sound_seconds=request.param)


def test_the_whole_file_is_accepted(webm):
    info = inspect_video(webm, name="clip.webm", limits=LIMITS)
    assert (info.codec, info.frame_count, info.duration_s) == ("vp9", FRAMES, 3.0)


@pytest.mark.parametrize("cut", CUTS)
def test_a_webm_with_sound_cut_anywhere_is_refused(webm, cut):
    with pytest.raises(InvalidVideo, match=r"^cut\.webm: truncated or damaged: its Segment "):
        inspect_video(webm[: int(len(webm) * cut)], name="cut.webm", limits=LIMITS)


def test_a_webm_missing_only_its_last_bytes_is_refused(webm):
    with pytest.raises(InvalidVideo, match="truncated"):
        inspect_video(webm[:-1], name="cut.webm", limits=LIMITS)


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.7, 0.9])
def test_without_a_segment_size_the_packets_ending_early_refuse_the_cut(webm, cut):
    live = _segment_size_unknown(webm)
    assert inspect_video(live, name="live.webm", limits=LIMITS).frame_count == FRAMES
    with pytest.raises(InvalidVideo, match=r"its header says its streams end at \d.\d\d s but "
                                           r"their packets end at"):
        inspect_video(live[: int(len(live) * cut)], name="cut.webm", limits=LIMITS)


@pytest.mark.parametrize("cut", CUTS)
def test_an_mp4_with_sound_cut_anywhere_is_refused(cut):
    data = _with_sound(container="mp4", sound_seconds=6.0)
    assert inspect_video(data, name="clip.mp4", limits=LIMITS).frame_count == FRAMES
    with pytest.raises(InvalidVideo, match=r"^cut\.mp4: .*(truncated|not a readable)"):
        inspect_video(data[: int(len(data) * cut)], name="cut.mp4", limits=LIMITS)
