"""Throughput of EvalHub generators (images per second).

Usage::

    python bench/generators.py                      # shapes + tiny diffusers on CPU
    python bench/generators.py --model PATH_OR_ID   # + a real pipeline on CUDA if present

Prints human-readable lines, then, as the last line, one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path and its name
# ("generators") would shadow the real package; put the repo root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench.machine import cpu_model  # noqa: E402

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def timed(gen: Any, items: list, params: dict) -> tuple[float, int]:
    """Seconds to generate ``items`` and the number of successful images."""
    start = time.perf_counter()
    ok = sum(r.ok for r in gen.generate(items, params))
    return time.perf_counter() - start, ok


def bench_shapes(n: int) -> dict[str, Any]:
    from generators import CheckpointSpec, GenerationItem
    from generators.shapes import ShapesGenerator

    prompts = [
        "two red circles left of a blue square",
        "three small green triangles on a black background",
        "a large yellow star above two purple hexagons",
        "five small cyan circles below a large pink hexagon",
    ]
    out: dict[str, Any] = {}
    for quality in (1.0, 0.3):
        gen = ShapesGenerator(CheckpointSpec("bench", parameters={"quality": quality}))
        for size in (128, 256, 512):
            items = [GenerationItem(str(i), prompts[i % 4], i) for i in range(n)]
            timed(gen, items[:2], {"width": size, "height": size})  # warm-up
            secs, ok = timed(gen, items, {"width": size, "height": size})
            key = f"shapes_q{quality}_{size}px"
            out[key] = {
                "images": ok,
                "seconds": round(secs, 4),
                "images_per_s": round(ok / secs, 2),
            }
            print(f"{key:28s} {ok / secs:9.1f} images/s  ({ok} images, {secs:.2f}s)")
    return out


def bench_tiny_diffusers(n: int) -> dict[str, Any]:
    import torch

    from generators import CheckpointSpec, GenerationItem
    from generators.diffusers_gen import DiffusersGenerator
    from generators.testing import build_tiny_sd_pipeline

    out: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_sd_pipeline(Path(tmp) / "tiny-sd")
        spec = CheckpointSpec("tiny", str(path), {"num_inference_steps": 2})
        gen = DiffusersGenerator(spec, device="cpu")
        items = [GenerationItem(str(i), f"a red circle number {i}", i) for i in range(n)]
        for size in (32, 64):
            for batch in (1, 4):
                params = {"width": size, "height": size, "batch_size": batch}
                timed(gen, items[:batch], params)  # warm-up (also loads the pipeline)
                secs, ok = timed(gen, items, params)
                key = f"tiny_sd_cpu_{size}px_2steps_bs{batch}"
                out[key] = {
                    "images": ok,
                    "seconds": round(secs, 4),
                    "images_per_s": round(ok / secs, 2),
                }
                print(f"{key:28s} {ok / secs:9.1f} images/s  ({ok} images, {secs:.2f}s)")
        gen.close()
    return out


def bench_cuda_model(model: str | None, n: int, steps: int, size: int | None) -> dict[str, Any]:
    if not model:
        return {"skipped": "no --model given"}
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "CUDA not available", "model": model}
    from generators import CheckpointSpec, GenerationItem
    from generators.diffusers_gen import DiffusersGenerator

    params: dict[str, Any] = {"num_inference_steps": steps}
    if size:
        params.update(width=size, height=size)
    gen = DiffusersGenerator(CheckpointSpec("bench", model, params), device="cuda")
    items = [GenerationItem(str(i), "two red circles left of a blue square", i) for i in range(n)]
    out: dict[str, Any] = {"model": model, "device": torch.cuda.get_device_name(0), "steps": steps}
    for batch in (1, 4):
        timed(gen, items[:batch], {"batch_size": batch})  # warm-up, loads weights
        torch.cuda.synchronize()
        secs, ok = timed(gen, items, {"batch_size": batch})
        key = f"cuda_bs{batch}"
        out[key] = {"images": ok, "seconds": round(secs, 3), "images_per_s": round(ok / secs, 3)}
        print(f"{model} {key:10s} {ok / secs:8.2f} images/s  ({ok} images, {secs:.1f}s)")
    out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    gen.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="diffusers pipeline path or hub id (CUDA only)")
    parser.add_argument("--n", type=int, default=32, help="images per CPU measurement")
    parser.add_argument("--cuda-n", type=int, default=8, help="images per CUDA measurement")
    parser.add_argument("--steps", type=int, default=30, help="steps for --model")
    parser.add_argument("--size", type=int, default=None, help="resolution for --model")
    args = parser.parse_args(argv)

    import diffusers
    import torch

    report: dict[str, Any] = {
        "benchmark": "generators",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    print(f"machine: {report['machine']} ({report['cpu_count']} CPUs), {report['date']}")
    report["shapes"] = bench_shapes(args.n)
    report["tiny_diffusers_cpu"] = bench_tiny_diffusers(args.n)
    report["cuda_model"] = bench_cuda_model(args.model, args.cuda_n, args.steps, args.size)
    if "skipped" in report["cuda_model"]:
        print(f"real diffusers model on CUDA: skipped ({report['cuda_model']['skipped']})")
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
