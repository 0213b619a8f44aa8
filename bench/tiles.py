"""Tile-building benchmark: Deep Zoom pyramids of 15360 x 8640 JPEG, PNG and WebP images.

Writes three 15360 x 8640 test pictures to ``/tmp/evalhub-bench-tiles/`` (kept for the next run):
colour gradients, a low-frequency pattern and Gaussian noise (numpy), so that they compress
like photographs or generated images rather than like flat colour (JPEG quality 90, PNG
compress level 6, lossy WebP quality 90). Each pyramid is then built in a fresh subprocess,
the way a worker builds it (``evalhub.blobs.tiles._write_pyramid``: decode, display pixels,
every level cut into 510 px tiles and written to a FileSystemStorage), and that process reports
its wall seconds and peak RSS (``VmHWM``, which includes Django and Pillow once loaded:
``base_rss_mb`` is the same process before the build; not ``ru_maxrss``, which Linux keeps
across ``execve``, so a child of a bench that had just written a 16K image reported the
bench's peak). The display derivative, which the same
worker makes for every new image (``display.write_display``), is measured the same way
(``--tasks``).

Side by side: ``--baseline REV`` (default ``7af590c~1``, the code before workers built tiles in
bounded memory: full decode, then three copies of the pixels) is exported with ``git archive``
into a temporary folder and imported instead of the working tree, in the same kind of child
process. Variants of one image run alternately, ``--repeat`` rounds, medians reported.

The rating page (``--parts page``, bench/tiles_page.py): time to the first drawn pair with
tiles present and an empty browser cache, bytes moved at fit per pair and during a scripted
deep-zoom session, in headless Chromium against gunicorn on a scratch PostgreSQL database
(``--database-url``, dropped and created), one campaign per format; see that module's doc.
``--page-baseline REV`` loads the same page from ``REV``'s code alternately, side by side;
``--page-variant NAME=REV_OR_FOLDER`` (repeatable) likewise from more versions of the code (a
folder: a copy of the tree with one lever changed).

Targets (issue 15): the worker's peak memory under 1 GB per image, the first drawn pair under
500 ms, under 1 MB moved per pair at fit. Human-readable lines first; the last line is one
JSON object whose ``targets`` holds ``worker_peak_under_1gb`` (current code, every format and
task measured), ``first_drawn_pair_under_500ms`` and ``at_fit_under_1mb_per_pair`` (every
format; null for a part not run). Run it on an idle machine: the load averages before and
after are printed with the figures. ``--quick`` checks that everything runs (a 4608 x 2592
JPEG, the smallest size that gets tiles; one pass; no baseline): not a figure.

Usage::

    python bench/tiles.py [--parts worker page] [--formats jpeg png webp]
        [--tasks tiles display] [--repeat 1] [--baseline REV | --no-baseline]
        [--size W H] [--pairs 3] [--page-repeat 5] [--page-baseline REV]
        [--page-variant NAME=REV_OR_FOLDER ...]
        [--database-url URL] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 15360, 8640
IMAGES = Path("/tmp/evalhub-bench-tiles")
TARGET_MB = 1024
CURRENT = "current"
DEFAULT_BASELINE = "7af590c~1"
SAVE = {
    "jpeg": ("JPEG", "jpg", {"quality": 90}),
    "png": ("PNG", "png", {"compress_level": 6}),
    "webp": ("WEBP", "webp", {"quality": 90, "method": 4}),
}

# Runs in the child: Django configured on a throwaway media folder, one pyramid built.
CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.environ["BENCH_CODE"])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
import django
django.setup()
from django.core.files.storage import default_storage
from evalhub.blobs import tiles
from evalhub.blobs.models import ImageBlob

def rss_mb():
    # VmHWM: this process image's peak. ru_maxrss is kept across execve on Linux, so it would
    # report the bench's own peak (3 GB after it wrote a 16K WebP) when that was higher.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

name, width, height, task = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
blob = ImageBlob(sha256="b" * 64, file=name, width=width, height=height)
base = rss_mb()
started = time.perf_counter()
files = 0
if task == "tiles":
    tiles._write_pyramid(blob)
    stack = ["tiles"]
    while stack:
        folder = stack.pop()
        dirs, names = default_storage.listdir(folder)
        files += len(names)
        stack += [f"{folder}/{d}" for d in dirs]
else:  # what blob_make_display does, without the database
    import tempfile
    from evalhub.blobs import display
    with default_storage.open(name, "rb") as handle, tempfile.TemporaryFile() as out:
        if hasattr(display, "write_display"):
            display.write_display(handle, out)
        else:  # the code before write_display: the file and the derivative in memory
            out.write(display.render_display(handle.read())[0])
    files = 1
seconds = time.perf_counter() - started
print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(rss_mb(), 1),
                  "base_rss_mb": round(base, 1), "files": files, "code": tiles.__file__}))
"""


def make_image(fmt: str) -> Path:
    """A 15360 x 8640 picture: gradients, a soft pattern and noise, saved as ``fmt``."""
    pillow, ext, options = SAVE[fmt]
    path = IMAGES / f"bench-{WIDTH}x{HEIGHT}.{ext}"
    if path.exists():
        return path
    import numpy as np
    from PIL import Image

    IMAGES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    pixels = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    x = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)
    for top in range(0, HEIGHT, 540):  # strips: float arrays of the whole image are 1.6 GB
        rows = min(540, HEIGHT - top)
        y = (np.arange(top, top + rows, dtype=np.float32) / HEIGHT)[:, None]
        wave = np.sin(x * 37.0 + y * 23.0) * np.cos(x * 11.0 - y * 41.0)
        noise = rng.normal(0.0, 6.0, (rows, WIDTH, 3)).astype(np.float32)
        strip = np.stack([40 + 170 * x + 0 * y, 30 + 190 * y + 0 * x, 128 + 90 * wave], axis=-1)
        pixels[top:top + rows] = np.clip(strip + noise, 0, 255).astype(np.uint8)
    partial = path.with_suffix(".partial")  # an interrupted run leaves no truncated image
    Image.fromarray(pixels, "RGB").save(partial, format=pillow, **options)
    partial.rename(path)
    return path


def code_folder(rev: str, tmp: Path) -> Path:
    """The tree of ``rev`` (``git archive``), to import instead of the working tree."""
    folder = tmp / f"code-{rev.replace('/', '_').replace('~', '-')}"
    folder.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def build(code: Path, image: Path, tmp: Path, task: str) -> dict:
    media = Path(tempfile.mkdtemp(dir=tmp, prefix="media-"))
    (media / "blobs").mkdir()
    (media / "blobs" / image.name).symlink_to(image)
    env = {**os.environ, "BENCH_CODE": str(code), "MEDIA_ROOT": str(media), "DEBUG": "1",
           "EVALHUB_VAR_DIR": str(tmp / "var"), "PYTHONPATH": str(code)}
    env.pop("DATABASE_URL", None)  # no database: the blob row is never saved
    out = subprocess.run([sys.executable, "-c", CHILD, f"blobs/{image.name}", str(WIDTH),
                          str(HEIGHT), task], cwd=code, env=env, capture_output=True, text=True)
    subprocess.run(["rm", "-rf", str(media)], check=True)
    if out.returncode != 0:
        raise RuntimeError(f"build failed ({code}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker_part(args: argparse.Namespace) -> list[dict]:
    """Pyramids and derivatives built in fresh processes (module doc); one entry per pair of
    format and task."""
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as name:
        tmp = Path(name)
        variants = {CURRENT: ROOT}
        if not args.no_baseline:
            variants[args.baseline] = code_folder(args.baseline, tmp)
        results = []
        for fmt, task in [(fmt, task) for fmt in args.formats for task in args.tasks]:
            image = make_image(fmt)
            runs: dict[str, list[dict]] = {variant: [] for variant in variants}
            for _ in range(args.repeat):
                for variant, code in variants.items():
                    runs[variant].append(build(code, image, tmp, task))
            entry = {"format": fmt, "task": task,
                     "file_mb": round(image.stat().st_size / 2**20, 1)}
            for variant, measured in runs.items():
                entry[variant] = {
                    "seconds": statistics.median(m["seconds"] for m in measured),
                    "peak_rss_mb": statistics.median(m["peak_rss_mb"] for m in measured),
                    "base_rss_mb": statistics.median(m["base_rss_mb"] for m in measured),
                    "files": measured[0]["files"],
                }
                got = entry[variant]
                print(f"{fmt:5} {task:8} {entry['file_mb']:6.1f} MB  {variant:10} "
                      f"{got['seconds']:6.2f} s"
                      f"  peak {got['peak_rss_mb']:7.1f} MB (process before the build "
                      f"{got['base_rss_mb']:.0f} MB)  {got['files']} files", flush=True)
            results.append(entry)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["worker", "page"],
                        choices=["worker", "page"],
                        help="worker: build seconds and peak memory; page: the rating page")
    parser.add_argument("--formats", nargs="+", default=list(SAVE), choices=list(SAVE))
    parser.add_argument("--tasks", nargs="+", default=["tiles", "display"],
                        choices=["tiles", "display"],
                        help="the pyramid, and the display derivative the same worker makes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--size", nargs=2, type=int, metavar=("W", "H"),
                        help="another size (a quick check); the target is for 15360 x 8640")
    parser.add_argument("--pairs", type=int, default=3,
                        help="page: pairs per format's campaign (2 images each)")
    parser.add_argument("--page-repeat", type=int, default=5,
                        help="page: first-drawn loads, each in a fresh browser context")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/evalhub_tilesbench",
                        help="page: a scratch database, dropped and created")
    parser.add_argument("--page-baseline", metavar="REV",
                        help="page: also load the page from REV's code (a second server on "
                             "port + 1, same database), alternately with the current code's")
    parser.add_argument("--page-variant", action="append", default=[],
                        metavar="NAME=REV_OR_FOLDER",
                        help="page: also load the page from this code (a revision, or a folder "
                             "holding a tree), in turn with the current code's; repeatable")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--step-timeout-s", type=float, default=60.0,
                        help="page: longest wait for one pair drawn or the network to settle")
    parser.add_argument("--quick", action="store_true",
                        help="a check that it runs: 4608 x 2592 JPEG, tiles only, one pass, "
                             "no baseline, 2 pairs; not a figure")
    args = parser.parse_args()
    global WIDTH, HEIGHT
    if args.quick:
        args.size = args.size or [4608, 2592]
        args.formats, args.tasks, args.no_baseline = ["jpeg"], ["tiles"], True
        args.repeat, args.pairs, args.page_repeat = 1, 2, 1
    if args.size:
        WIDTH, HEIGHT = args.size

    load_before = os.getloadavg()
    results = worker_part(args) if "worker" in args.parts else []
    page = None
    if "page" in args.parts:
        sys.path.insert(0, str(ROOT))
        from bench import tiles_page

        with tempfile.TemporaryDirectory(prefix="bench-tiles-page-") as tmp:
            variant_code = {}
            if args.page_baseline:
                variant_code[args.page_baseline] = code_folder(args.page_baseline, Path(tmp))
            for spec in args.page_variant:
                name, _, where = spec.partition("=")
                variant_code[name] = (Path(where) if Path(where).is_dir()
                                      else code_folder(where, Path(tmp)))
            page = tiles_page.summary(tiles_page.run_page(
                {fmt: make_image(fmt) for fmt in args.formats}, (WIDTH, HEIGHT),
                pairs=args.pairs, repeat=args.page_repeat, database_url=args.database_url,
                port=args.port, timeout_s=args.step_timeout_s, variant_code=variant_code))
    load_after = os.getloadavg()
    summary = {
        "bench": "tiles",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                   f"{platform.python_version()}",
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after],
        "size": [WIDTH, HEIGHT],
        "quick": args.quick,
        "baseline": None if args.no_baseline else args.baseline,
        "images": results,
        "page": page,
        "targets": {
            # The worker's peak: every task it runs for a new 16K image (pyramid, derivative).
            "worker_peak_under_1gb": all(
                entry[CURRENT]["peak_rss_mb"] < TARGET_MB for entry in results
            ) if results else None,
            "first_drawn_pair_under_500ms":
                page["targets"]["first_drawn_pair_under_500ms"] if page else None,
            "at_fit_under_1mb_per_pair":
                page["targets"]["at_fit_under_1mb_per_pair"] if page else None,
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
