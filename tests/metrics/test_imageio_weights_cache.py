"""Decoding of awkward images, the weights policy, and the feature cache."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import struct
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metrics.feature_cache import DirectoryFeatureCache, InMemoryFeatureCache, features_for
from metrics.imageio import ImageDecodeError, decode_image, decode_many
from metrics.weights import (
    ALEXNET_FILENAME,
    INCEPTION_FILENAME,
    WeightsFetchError,
    WeightsMissingError,
    cached_random_weights,
    fetch_all_weights,
    random_weights_enabled,
)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _png16_rgb(arr: np.ndarray) -> bytes:
    """Minimal encoder for a 16-bit RGB PNG (PIL cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --- decoding ---------------------------------------------------------------------------------


def test_grayscale_is_replicated_to_three_channels():
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    t = decode_image(_png(Image.fromarray(grey, mode="L")))
    assert t.dtype == torch.uint8 and t.shape == (3, 6, 8)
    for c in range(3):
        assert torch.equal(t[c], torch.from_numpy(grey))


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (200, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black becomes white
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black becomes mid grey
    t = decode_image(_png(Image.fromarray(rgba, mode="RGBA")))
    assert t[:, 0, 0].tolist() == [200, 0, 0]
    assert t[:, 0, 1].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in t[:, 1, 0].tolist())


def test_16bit_grey_png_is_rescaled_not_clipped():
    grey16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    t = decode_image(_png(Image.fromarray(grey16)))
    assert t[0, 0].tolist() == [0, 1, 128, 255]


def test_16bit_rgb_png_keeps_the_low_byte_when_rescaling():
    arr = np.zeros((1, 3, 3), dtype=np.uint16)
    arr[0, 0] = (65535, 0, 257)
    arr[0, 1] = (32767, 32768, 128)  # v/257 = 127.5, 127.5, 0.498
    arr[0, 2] = (386, 12850, 65278)  # 1.502 -> 2, 50 -> 50, 254 -> 254
    t = decode_image(_png16_rgb(arr))
    assert t[:, 0, 0].tolist() == [255, 0, 1]
    assert t[:, 0, 1].tolist() == [127, 128, 0]
    assert t[:, 0, 2].tolist() == [2, 50, 254]


def test_palette_images_are_expanded_and_transparent_index_is_white():
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    assert decode_image(_png(pal))[:, 0, :].T.tolist() == [[10, 20, 30], [40, 50, 60]]
    pal.info["transparency"] = 1
    assert decode_image(_png(pal))[:, 0, 1].tolist() == [255, 255, 255]


def test_corrupt_bytes_raise_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageDecodeError, match=r"broken\.jpg"):
        decode_image(bad)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_png(Image.new("RGB", (64, 64), (1, 2, 3)))[:60])
    with pytest.raises(ImageDecodeError, match=r"truncated\.png"):
        decode_many([truncated])


def test_decompression_bomb_guard_refuses_from_the_header():
    with pytest.raises(ImageDecodeError, match="pixel limit"):
        decode_image(_png(Image.new("RGB", (100, 100))), max_pixels=5000)


def test_threaded_decoding_keeps_order_and_mixed_sizes(tmp_path):
    paths = []
    for i, size in enumerate([(16, 8), (40, 30), (9, 9), (64, 20)] * 3):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", size, (i, 2 * i, 3 * i)).save(p)
        paths.append(p)
    out = decode_many(paths, num_threads=3)
    assert [tuple(t.shape[1:]) for t in out] == [
        (h, w) for w, h in [(16, 8), (40, 30), (9, 9), (64, 20)] * 3
    ]
    assert [t[:, 0, 0].tolist() for t in out] == [[i, 2 * i, 3 * i] for i in range(12)]


# --- weights policy -------------------------------------------------------------------------


def test_random_weights_env_values(monkeypatch):
    for value, expected in (("1", True), ("true", True), ("TRUE", True), ("0", False), ("", False)):
        monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", value)
        assert random_weights_enabled() is expected


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    """Real-weights mode with empty torch hub / HF caches."""
    import huggingface_hub.constants

    monkeypatch.delenv("EVALHUB_RANDOM_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


def test_missing_weights_fail_fast_with_file_and_directory_named(empty_caches):
    import lpips  # noqa: F401  (imported before the clock starts: importing is not the wait
    import open_clip  # noqa: F401  measured here, and takes seconds on a loaded machine)

    from metrics.clip_score import ClipEmbedder
    from metrics.inception import InceptionFeatureExtractor
    from metrics.lpips_distance import LpipsScorer

    checkpoints = str(empty_caches / "torch" / "hub" / "checkpoints")
    cases = [
        (InceptionFeatureExtractor, INCEPTION_FILENAME, checkpoints),
        (LpipsScorer, ALEXNET_FILENAME, checkpoints),
        (ClipEmbedder, "open_clip_pytorch_model.bin", str(empty_caches / "hf")),
    ]
    for build, filename, directory in cases:
        start = time.monotonic()
        with pytest.raises(WeightsMissingError) as err:
            build(device="cpu")
        assert time.monotonic() - start < 3.0, build
        msg = str(err.value)
        assert filename in msg and directory in msg
        assert "python manage.py fetch_weights" in msg and "EVALHUB_RANDOM_WEIGHTS=1" in msg


def test_fetch_all_weights_offline_raises_a_clear_error_quickly(empty_caches, monkeypatch):
    # A proxy on a closed local port makes every download fail at once, network or not.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    # urllib builds its global opener from the proxy variables on first use: a dead proxy
    # cached there would outlive this test (a later urlopen of a local server is refused).
    monkeypatch.setattr(urllib.request, "_opener", None)
    start = time.monotonic()
    with pytest.raises(WeightsFetchError, match="could not download"):
        fetch_all_weights(progress=False)
    assert time.monotonic() - start < 10.0


# --- random weights kept on disk -----------------------------------------------------------------


def _small_weights(log: Path):
    """A cheap stand-in for a calibration: logs each call (one line per call, any process)."""

    def build():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7}

    return build


def _build_in_child(cache_dir: str, log: str, queue) -> None:
    os.environ["EVALHUB_CACHE_DIR"] = cache_dir
    weights = cached_random_weights("test-net", {"seed": "0"}, _small_weights(Path(log)))
    queue.put(weights["w"].numpy().tobytes())


def test_random_weights_are_built_by_the_first_process_only_and_read_back_bit_for_bit(
        tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("fork")  # the children need no torch re-import
    queue = ctx.Queue()
    children = [ctx.Process(target=_build_in_child, args=(str(tmp_path / "cache"), str(log), queue))
                for _ in range(3)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert len(log.read_text().splitlines()) == 1  # three processes, one build
    files = list((tmp_path / "cache" / "random-weights").glob("test-net-*.pt"))
    assert len(files) == 1
    expected = (torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7).numpy().tobytes()
    assert results == [expected] * 3
    # This process reads the file too; another seed is another file.
    again = cached_random_weights("test-net", {"seed": "0"}, _small_weights(log))
    assert again["w"].numpy().tobytes() == expected
    cached_random_weights("test-net", {"seed": "1"}, _small_weights(log))
    assert len(log.read_text().splitlines()) == 2


def test_an_unreadable_random_weights_file_is_rebuilt_and_an_unwritable_cache_only_warns(
        tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "builds.log"
    cached_random_weights("test-net", {"seed": "0"}, _small_weights(log))
    (path,) = (tmp_path / "cache" / "random-weights").glob("test-net-*.pt")
    path.write_bytes(path.read_bytes()[:50])  # truncated
    rebuilt = cached_random_weights("test-net", {"seed": "0"}, _small_weights(log))
    assert len(log.read_text().splitlines()) == 2
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], rebuilt["w"])

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(blocker))
    with pytest.warns(UserWarning, match="random weights not cached"):
        built = cached_random_weights("test-net", {"seed": "0"}, _small_weights(log))
    assert torch.equal(built["w"], rebuilt["w"])


# --- feature cache ------------------------------------------------------------------------------


class CountingExtractor:
    """Deterministic fake backbone: features = per-channel means, counts images it sees."""

    backbone_id = "test/means"

    def __init__(self) -> None:
        self.calls = 0
        self.images_seen = 0

    def extract(self, images):
        self.calls += 1
        self.images_seen += len(images)
        return np.stack([img.float().mean(dim=(1, 2)).numpy() for img in images])


def _items(n: int, offset: int = 0):
    items = []
    for i in range(offset, offset + n):
        img = torch.full((3, 4, 4), i, dtype=torch.uint8)
        sha = hashlib.sha256(img.numpy().tobytes()).hexdigest()
        items.append((sha, lambda img=img: img))
    return items


@pytest.mark.parametrize("make_cache", [lambda p: InMemoryFeatureCache(), DirectoryFeatureCache])
def test_second_call_is_served_from_the_cache(make_cache, tmp_path):
    cache, extractor = make_cache(tmp_path), CountingExtractor()
    first = features_for(_items(10), extractor, cache, chunk_size=4)
    assert extractor.images_seen == 10 and extractor.calls == 3
    second = features_for(_items(10), extractor, cache)
    assert extractor.images_seen == 10 and extractor.calls == 3  # nothing recomputed
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first[:, 0], np.arange(10))


def test_only_missing_and_distinct_images_are_computed(tmp_path):
    cache, extractor = DirectoryFeatureCache(tmp_path), CountingExtractor()
    features_for(_items(5), extractor, cache)
    items = _items(8) + _items(2, offset=6)  # 3 new images, two of them listed twice
    out = features_for(items, extractor, cache)
    assert extractor.images_seen == 5 + 3
    np.testing.assert_allclose(out[:, 0], [0, 1, 2, 3, 4, 5, 6, 7, 6, 7])
    # Another backbone never sees these entries.
    other = CountingExtractor()
    other.backbone_id = "test/other"
    features_for(_items(2), other, cache)
    assert other.images_seen == 2


def test_features_for_zero_images_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        features_for([], CountingExtractor(), InMemoryFeatureCache())
