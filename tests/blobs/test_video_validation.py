"""Which videos EvalHub accepts: PyAV decodes every frame; hostile files are refused by name."""

import pytest

from evalhub.blobs.video_validation import InvalidVideo, VideoLimits, inspect_video
from tests.videos import truncated, video_bytes, webm_bytes

LIMITS = VideoLimits(max_bytes=10**8, max_seconds=10, max_frames=300, max_pixels=640 * 480)


def test_an_h264_mp4_is_described_by_what_decoding_found():
    info = inspect_video(video_bytes(frames=12, size=(64, 48), fps=12), name="a.mp4",
                         limits=LIMITS)
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 64, 48)
    assert (info.fps, info.frame_count, info.duration_s) == (12.0, 12, 1.0)
    assert info.poster_index == 6 and len(info.sha256) == 64


def test_a_vp9_webm_with_sound_is_accepted():
    info = inspect_video(webm_bytes(frames=10, fps=5, audio=True), name="b.webm", limits=LIMITS)
    assert (info.container, info.codec, info.frame_count, info.duration_s) == (
        "webm", "vp9", 10, 2.0)


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-first"])
def test_a_truncated_mp4_is_refused_as_truncated(faststart):
    data = truncated(video_bytes(frames=30, faststart=faststart))
    with pytest.raises(InvalidVideo, match=r"^cut\.mp4: .*truncated"):
        inspect_video(data, name="cut.mp4", limits=LIMITS)


def test_a_webm_cut_short_is_refused_although_its_frames_decode():
    data = webm_bytes(frames=30, seed=3)
    with pytest.raises(InvalidVideo, match=r"cut\.webm: truncated or damaged"):
        inspect_video(data[: len(data) * 3 // 4], name="cut.webm", limits=LIMITS)


def test_a_webm_without_a_frame_count_is_stopped_at_the_frame_limit():
    few = VideoLimits(max_bytes=10**8, max_seconds=100, max_frames=5, max_pixels=10**6)
    with pytest.raises(InvalidVideo, match="6 frames or more exceeds the limit of 5 frames"):
        inspect_video(webm_bytes(frames=12), name="many.webm", limits=few)


def test_an_unexpected_codec_is_refused_naming_it():
    with pytest.raises(InvalidVideo, match=r"old\.mp4: video codec 'mpeg4' is not accepted"):
        inspect_video(video_bytes(codec="mpeg4"), name="old.mp4", limits=LIMITS)


def test_an_over_long_clip_is_refused_before_it_is_decoded():
    limits = VideoLimits(max_bytes=10**8, max_seconds=1, max_frames=300, max_pixels=10**6)
    with pytest.raises(InvalidVideo, match=r"long\.mp4: 2\.0 s or more exceeds .* 1 s"):
        inspect_video(video_bytes(frames=24, fps=12), name="long.mp4", limits=limits)


def test_too_many_frames_and_too_many_pixels_are_refused():
    few = VideoLimits(max_bytes=10**8, max_seconds=100, max_frames=5, max_pixels=10**6)
    with pytest.raises(InvalidVideo, match="frames or more exceeds the limit of 5 frames"):
        inspect_video(video_bytes(frames=12), name="many.mp4", limits=few)
    small = VideoLimits(max_bytes=10**8, max_seconds=100, max_frames=300, max_pixels=1000)
    with pytest.raises(InvalidVideo, match=r"64 x 48 = 3,072 pixels exceed the limit of 1,000"):
        inspect_video(video_bytes(), name="big.mp4", limits=small)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "file is empty"),
    (b"\x00\x01not a video at all" * 50, "not a readable video container"),
])
def test_empty_and_garbage_files_are_refused(data, message):
    with pytest.raises(InvalidVideo, match=message):
        inspect_video(data, name="x.mp4", limits=LIMITS)


def test_a_file_over_the_byte_limit_is_refused_unread():
    limits = VideoLimits(max_bytes=100, max_seconds=10, max_frames=300, max_pixels=10**6)
    with pytest.raises(InvalidVideo, match="bytes exceeds the limit of 100 bytes"):
        inspect_video(video_bytes(), name="x.mp4", limits=limits)


def test_a_file_with_sound_and_no_picture_is_refused_as_such(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "voice.webm"
    with av.open(str(path), mode="w", format="webm") as out:
        sound = out.add_stream("libopus", rate=48000)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 9600), np.float32), format="fltp",
                                           layout="mono")
        chunk.sample_rate = 48000
        for packet in [*sound.encode(chunk), *sound.encode()]:
            out.mux(packet)
    with pytest.raises(InvalidVideo, match=r"voice\.webm: has no video stream \(an audio-only"):
        inspect_video(path.read_bytes(), name="voice.webm", limits=LIMITS)


# A live-written WebM has no duration in its header: only decoding finds its length.
LIVE_LIMITS = VideoLimits(max_bytes=10**8, max_seconds=60, max_frames=3600, max_pixels=10**6)


def test_a_live_webm_over_the_duration_limit_is_refused_while_decoding():
    from tests.blobs.odd_videos import live_webm_bytes

    # 700 frames at 10 frames/s: 70 s. The decode stops at the first frame past 60 s (the
    # 601st: 60.1 s of video), and the refusal says so in seconds.
    with pytest.raises(InvalidVideo) as refused:
        inspect_video(live_webm_bytes(frames=700, fps=10), name="live_long.webm",
                      limits=LIVE_LIMITS)
    assert str(refused.value) == ("live_long.webm: 60.1 s or more exceeds the limit of 60 s "
                                  "(EVALHUB_MAX_VIDEO_SECONDS)")


def test_a_live_webm_one_frame_past_the_duration_limit_is_refused_and_one_at_it_accepted():
    from tests.blobs.odd_videos import live_webm_bytes

    # duration_s is frame_count / fps: 600 frames at 10 frames/s are 60.0 s, the limit; 601
    # frames are 60.1 s, over it.
    at_limit = inspect_video(live_webm_bytes(frames=600, fps=10), name="at.webm",
                             limits=LIVE_LIMITS)
    assert (at_limit.frame_count, at_limit.duration_s) == (600, 60.0)
    with pytest.raises(InvalidVideo, match=r"^over\.webm: 60\.1 s or more exceeds the limit"):
        inspect_video(live_webm_bytes(frames=601, fps=10), name="over.webm",
                      limits=LIVE_LIMITS)


def test_a_frame_rate_out_of_range_is_said_in_frames_per_second(tmp_path):
    from fractions import Fraction

    import av

    from tests.videos import moving_square_frames

    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w") as out:  # NTSC's 1000/1001 at 480 frames/s
        stream = out.add_stream("libx264", rate=Fraction(480000, 1001))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in moving_square_frames(6, (32, 32)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(InvalidVideo) as refused:
        inspect_video(path.read_bytes(), name="fast.mp4", limits=LIMITS)
    assert str(refused.value) == ("fast.mp4: frame rate 479.52 frames/s is not between 0 and "
                                  "240 frames/s")
