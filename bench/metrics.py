"""Benchmark: EvalHub's FID feature pipeline vs what users write with torchmetrics.

On the same N synthetic JPEGs (generated into a temp dir), each pipeline runs in its own
subprocess so that peak RSS (``ru_maxrss``) is per pipeline:

* ``evalhub``: ``features_for`` (on CPU: independent single-threaded streams that each decode,
  resize and infer their own batches on a BatchNorm-folded channels_last InceptionV3; features
  stored in a DirectoryFeatureCache) + GaussianStats.
* ``evalhub_cached``: the same call again; every feature comes from the directory cache.
* ``torchmetrics``: ``FrechetInceptionDistance(feature=2048).update()`` fed by a torch
  DataLoader over a PIL Dataset (``Image.open(...).convert("RGB")`` + ``PILToTensor``).
* ``pytorch_fid`` / ``clean_fid``: run only when their own weights are in the torch hub cache
  (they cannot use random weights); otherwise reported as ``"skipped: <reason>"``.

Offline, ``EVALHUB_RANDOM_WEIGHTS=1`` is set by default and the output says
``"uncalibrated": true``; both EvalHub and torchmetrics then run the *same* random weights.
Timings exclude model construction. ``--repeats R`` runs the evalhub and torchmetrics phases R
times, alternating, so that both see the same machine load: the speed-up is the median of the
R side-by-side ratios. Each phase records the 1-minute load average before it starts and its
CPU time per image (its own process and its DataLoader workers). The last printed line is one
JSON object; its ``targets`` say which targets were measured and met.

    python bench/metrics.py --n 256 --size 512 --batch-size 32 --loader-workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import cpu_model  # noqa: E402

#: Targets of issue #19 (CPU) and of the metrics section of docs/benchmarks.md.
CPU_SPEEDUP_TARGET = 1.5  # EvalHub vs torchmetrics + DataLoader, same machine, side by side
CACHED_SPEEDUP_TARGET = 50.0  # cached re-run vs first run
GPU_IMAGES_PER_S_TARGET = 4000.0  # H100/H200, 512 and 1024 px JPEGs, at most 4 CPU cores


def _peak_rss_mb() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux; children = DataLoader worker processes.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(kids, 1)}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timing(n: int, seconds: float, cpu_seconds: float) -> dict[str, float]:
    return {
        "seconds": seconds,
        "images_per_s": n / seconds,
        "cpu_ms_per_image": round(1000 * cpu_seconds / n, 1),
    }


def _cuda_peak_mb(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def make_jpegs(directory: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """N deterministic size x size JPEGs (smooth colour fields + texture), quality 90."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        cells = rng.integers(2, 12)
        coarse = rng.random((cells, cells, 3))
        img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        arr = np.asarray(img, dtype=np.float32)
        freq = rng.uniform(4, 40)
        arr += 25 * np.sin(2 * np.pi * freq * (xx * rng.random() + yy * rng.random()))[..., None]
        arr += rng.normal(0, 6, size=arr.shape)
        path = directory / f"img_{i:05d}.jpg"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def phase_evalhub(args, paths: list[Path]) -> dict:
    import torch

    from metrics.feature_cache import DirectoryFeatureCache, features_for
    from metrics.gaussian import GaussianStats
    from metrics.imageio import decode_image
    from metrics.inception import InceptionFeatureExtractor

    device = _device(args.device)
    extractor = InceptionFeatureExtractor(device=device, batch_size=args.batch_size)
    cache = DirectoryFeatureCache(args.cache_dir)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cpu0, start = _cpu_seconds(), time.perf_counter()
    items = []
    for p in paths:
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        items.append((sha, lambda p=p: decode_image(p)))
    feats = features_for(items, extractor, cache, chunk_size=max(args.batch_size * 4, 128))
    stats = GaussianStats.from_features(feats)
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
    return {
        **_timing(len(paths), elapsed, cpu),
        "feature_sum": float(stats.sum.sum()),
        "backbone_id": extractor.backbone_id,
        "calibrated": extractor.info.calibrated,
        "cuda_peak_mb": _cuda_peak_mb(device),
        **_peak_rss_mb(),
    }


class _PilDataset:
    """What a torchmetrics user typically writes."""

    def __init__(self, paths):
        from torchvision.transforms import PILToTensor

        self.paths = paths
        self.to_tensor = PILToTensor()

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return self.to_tensor(im.convert("RGB"))


def phase_torchmetrics(args, paths: list[Path]) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from torchmetrics.image.fid import FrechetInceptionDistance

    from metrics.inception import InceptionFeatureExtractor, state_dict_file

    device = _device(args.device)
    # Same weights as EvalHub (random offline), loaded through torchmetrics' own path.
    weights = InceptionFeatureExtractor(device="cpu").net.state_dict()
    fid = FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=state_dict_file(weights)
    ).to(device)
    del weights
    loader = DataLoader(
        _PilDataset(paths),
        batch_size=args.batch_size,
        num_workers=args.loader_workers,
        pin_memory=device.type == "cuda",
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cpu0, start = _cpu_seconds(), time.perf_counter()
    for batch in loader:
        fid.update(batch.to(device), real=True)
    # An exhausted loader has joined its workers: their CPU time is in RUSAGE_CHILDREN.
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
    return {
        **_timing(len(paths), elapsed, cpu),
        "feature_sum": float(fid.real_features_sum.sum()),
        "cuda_peak_mb": _cuda_peak_mb(device),
        **_peak_rss_mb(),
    }


def phase_pytorch_fid(args, paths: list[Path]) -> dict:
    import torch

    try:
        from pytorch_fid import fid_score
        from pytorch_fid.inception import FID_WEIGHTS_URL
    except ImportError as exc:
        return {"skipped": f"pytorch-fid not importable: {exc}"}
    weights = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_URL.rsplit("/", 1)[-1]
    if not weights.is_file():
        return {"skipped": f"offline: {weights.name} not in {weights.parent} (no random mode)"}
    from pytorch_fid.inception import InceptionV3

    device = _device(args.device)
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device)
    start = time.perf_counter()
    fid_score.get_activations(
        [str(p) for p in paths], model, args.batch_size, 2048, device, args.loader_workers
    )
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "images_per_s": len(paths) / elapsed, **_peak_rss_mb()}


def phase_clean_fid(args, paths: list[Path]) -> dict:
    import torch

    try:
        import cleanfid  # noqa: F401
        from cleanfid import fid as cfid
    except ImportError as exc:
        return {"skipped": f"clean-fid not importable: {exc}"}
    name = "inception-2015-12-05.pt"
    candidates = [Path(tempfile.gettempdir()) / name, Path(torch.hub.get_dir()) / name]
    if not any(c.is_file() for c in candidates):
        return {"skipped": f"offline: {name} (torchscript) not cached in /tmp (no random mode)"}
    device = _device(args.device)
    start = time.perf_counter()
    cfid.get_folder_features(
        str(paths[0].parent),
        num_workers=args.loader_workers,
        batch_size=args.batch_size,
        device=device,
        mode="clean",
    )
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "images_per_s": len(paths) / elapsed, **_peak_rss_mb()}


PHASES = {
    "evalhub": phase_evalhub,
    "evalhub_cached": phase_evalhub,
    "torchmetrics": phase_torchmetrics,
    "pytorch_fid": phase_pytorch_fid,
    "clean_fid": phase_clean_fid,
}


def _run_phase(name: str, args, image_dir: Path) -> dict:
    cmd = [
        sys.executable, __file__, "--phase", name, "--image-dir", str(image_dir),
        "--cache-dir", str(args.cache_dir), "--batch-size", str(args.batch_size),
        "--device", args.device, "--loader-workers", str(args.loader_workers),
    ]  # fmt: skip
    load = round(os.getloadavg()[0], 2)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"skipped": f"failed (rc={proc.returncode}): {proc.stderr.strip()[-400:]}"}
    return {**json.loads(lines[-1]), "load_avg_1min_before": load}


def _print_phase(name: str, r: dict) -> None:
    if "skipped" in r:
        print(f"{name:15s} skipped: {r['skipped']}")
        return
    print(
        f"{name:15s} {r['images_per_s']:8.1f} img/s  {r['seconds']:7.2f} s  "
        f"CPU {r['cpu_ms_per_image']:7.1f} ms/img  peak RSS {r['peak_rss_mb']:.0f} MB  "
        f"load before {r['load_avg_1min_before']}"
        + (f"  CUDA peak {r['cuda_peak_mb']} MB" if r.get("cuda_peak_mb") else "")
    )


def _ratio(a: dict, b: dict) -> float | None:
    if "images_per_s" in a and "images_per_s" in b:
        return round(a["images_per_s"] / b["images_per_s"], 2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--size", type=int, default=512, choices=[256, 512, 1024])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="evalhub/torchmetrics side-by-side runs, alternating (speed-up: median ratio)",
    )  # fmt: skip
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    real_weights = os.environ.get("EVALHUB_RANDOM_WEIGHTS", "").lower() in {"0", "false"}
    if not real_weights:
        os.environ["EVALHUB_RANDOM_WEIGHTS"] = "1"

    if args.phase:  # child process: run one pipeline, print its JSON
        paths = sorted(Path(args.image_dir).glob("*.jpg"))
        print(json.dumps(PHASES[args.phase](args, paths)))
        return

    import torch

    with tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp:
        image_dir = Path(tmp) / "images"
        image_dir.mkdir()
        args.cache_dir = Path(tmp) / "feature-cache"
        t0 = time.perf_counter()
        make_jpegs(image_dir, args.n, args.size)
        print(f"generated {args.n} {args.size}px JPEGs in {time.perf_counter() - t0:.1f}s")
        # Cache cleared between repeats, so that every evalhub run computes every feature.
        runs: list[dict[str, dict]] = []
        for rep in range(args.repeats):
            shutil.rmtree(args.cache_dir, ignore_errors=True)
            run = {}
            order = ("evalhub", "torchmetrics") if rep % 2 == 0 else ("torchmetrics", "evalhub")
            for name in order:
                run[name] = _run_phase(name, args, image_dir)
                _print_phase(name if args.repeats == 1 else f"{name} #{rep + 1}", run[name])
            runs.append(run)
        results = dict(runs[0])
        for name in ("evalhub_cached", "pytorch_fid", "clean_fid"):
            results[name] = _run_phase(name, args, image_dir)
            _print_phase(name, results[name])

    ratios = [_ratio(r["evalhub"], r["torchmetrics"]) for r in runs]
    ratios_ok = [x for x in ratios if x is not None]
    speedup = statistics.median(ratios_ok) if ratios_ok else None
    eh, tm = results["evalhub"], results["torchmetrics"]
    same = None
    if "feature_sum" in eh and "feature_sum" in tm:
        # Both pipelines saw the same images and weights: feature sums must agree closely.
        same = abs(eh["feature_sum"] - tm["feature_sum"]) <= 1e-4 * abs(tm["feature_sum"])
    cached = _ratio(results["evalhub_cached"], eh)
    on_cpu = _device(args.device).type == "cpu"
    gpu_rate = eh.get("images_per_s") if not on_cpu else None

    def target(value: float | None, goal: float, applies: bool, what: str) -> dict:
        measured = value if applies else None
        return {
            "what": what,
            "target": goal,
            "measured": measured,
            "met": None if measured is None else measured >= goal,
        }

    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "n": args.n,
        "size": args.size,
        "batch_size": args.batch_size,
        "loader_workers": args.loader_workers,
        "device": args.device,
        "repeats": args.repeats,
        "uncalibrated": not real_weights,
        "features_agree_with_torchmetrics": same,
        "results": results,
        "repeated_runs": runs[1:],
        "evalhub_vs_torchmetrics_each_run": ratios,
        "evalhub_vs_torchmetrics": speedup,
        "cached_speedup": cached,
        "evalhub_vs_pytorch_fid": _ratio(eh, results["pytorch_fid"]),
        "evalhub_vs_clean_fid": _ratio(eh, results["clean_fid"]),
        "targets": {
            "cpu_evalhub_vs_torchmetrics": target(
                speedup, CPU_SPEEDUP_TARGET, on_cpu,
                "CPU: EvalHub images/s over torchmetrics + DataLoader, median of the "
                "side-by-side runs (issue #19: on an idle 2-core machine)",
            ),
            "cached_speedup": target(
                cached, CACHED_SPEEDUP_TARGET, True, "cached re-run over the first run"
            ),
            "gpu_images_per_s": target(
                gpu_rate, GPU_IMAGES_PER_S_TARGET, not on_cpu,
                "H100/H200: EvalHub FID features/s from 512 and 1024 px JPEGs, at most 4 "
                "CPU cores (not measured on CPU)",
            ),
        },
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
