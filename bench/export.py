"""Export benchmark: 1,000,000 judgments to Parquet, CSV and JSONL through the export service.

Builds a PostgreSQL database (``evalhub_exportbench`` by default) with ``manage.py migrate``,
fills it with COPY (10 runs, 5,556 prompts, 250k comparison tasks, 4 votes per task from 200
annotators: 45 % a, 45 % b, 8 % tie, 2 % both-bad), then runs each export in a fresh
subprocess through ``evalhub.exports.services.export_to_path`` (what ``manage.py
export_preferences`` calls) and reads that process's peak RSS (``ru_maxrss``), so setup
memory is not counted. Targets: >= 100,000 judgments/s and < 500 MB peak per format.

``--aggregate pair`` (one row per pair by majority, preference formats only) and
``--min-agreement X`` measure the grouping modes; their throughput is counted in judgments
(votes behind the rows) per second. ``--k K`` (3 to 6) fills a best-of-K campaign instead
(the same runs, prompts and annotators; K runs a task, one pick a vote; database name +
``_kK``): each vote is exported as the K - 1 pairs it states (exports/screens.py), so the rows
are K - 1 times the judgments.

Side by side (each variant in its own process, the variants of a format run alternately,
``--repeat`` rounds, medians reported):

- ``--baseline REV ...``: the code of these git revisions (``git archive`` into a temporary
  folder, imported instead of the working tree), e.g. the hand-written code a library
  replaced;
- ``--variants NAME ...``: library alternatives that were measured and not kept, applied to
  the working tree's code in the child process (see ``VARIANTS``): ``orjson-jsonl`` (DPO
  lines by ``orjson.dumps`` per row), ``copy-rows`` (psycopg parses a binary COPY,
  ``Copy.rows()`` with ``set_types``, tuples to Arrow).

``slowdown`` is the current code's judgments/s divided by the variant's (above 1: the
variant is slower); ``cpu_ratio`` the variant's CPU seconds (export process, all threads)
divided by the current code's. Human-readable lines first; the last line is one JSON object whose
``targets`` holds one boolean per target, for the current code.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalhub_exportbench \\
        python bench/export.py [--judgments 1000000] [--reuse] [--formats dpo-jsonl ...]
            [--aggregate pair] [--min-agreement 0.75] [--k 4] [--repeat 2]
            [--baseline REV ...] [--variants orjson-jsonl copy-rows]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.db import filled, migrate, scratch_database  # noqa: E402
from bench.machine import run_context  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evalhub_exportbench"
FORMATS = ["raw-parquet", "pickapic-parquet", "dpo-jsonl", "raw-csv"]
RUNS, ANNOTATORS, VOTES_PER_TASK = 10, 200, 4
TARGET_ROWS_PER_S, TARGET_MB = 100_000, 500
CURRENT = "current"


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def populate(judgments: int, k: int = 2) -> int:
    """Create the data; returns the campaign id.

    ``k`` above 2: a best-of-K campaign instead, K runs a task (K consecutive runs of the
    ten, ``RUNS`` sets a prompt), its votes single picks (uniform), shown in a random order.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from evalhub.campaigns.models import Campaign, CampaignStatus
    from evalhub.projects.models import Membership, Project, Role
    from evalhub.prompts.models import PromptSet
    from evalhub.runs.models import Checkpoint, GenerationRun, GenModel

    rng = random.Random(7)
    pairs_per_prompt = RUNS * (RUNS - 1) // 2 if k == 2 else RUNS
    sets = [sorted((s + i) % RUNS for i in range(k)) for s in range(RUNS)] if k > 2 else \
        [[a, b] for a in range(RUNS) for b in range(a + 1, RUNS)]
    tasks_needed = -(-judgments // VOTES_PER_TASK)
    prompts = -(-tasks_needed // pairs_per_prompt)
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic():
        project = Project.objects.create(name="bench", slug="bench")
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"ann{i}") for i in range(ANNOTATORS)])
        Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.ANNOTATOR)
                                        for u in users])
        prompt_set = PromptSet.objects.create(project=project, name="bench")
        model = GenModel.objects.create(project=project, name="sdxl")
        runs = [GenerationRun.objects.create(
            project=project, prompt_set=prompt_set, name=f"run-{i}", source="imported",
            checkpoint=Checkpoint.objects.create(model=model, name=f"step-{i}"))
            for i in range(RUNS)]
        campaign = Campaign.objects.create(
            project=project, name="bench", criteria=["overall"], status=CampaignStatus.ACTIVE,
            **({"task_kind": "best_of_k", "k": k} if k > 2 else {}))
        campaign.runs.set(runs)
        user_ids = [u.pk for u in users]
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            _copy(cursor, "prompts_prompt",
                  ["id", "prompt_set_id", "position", "text", "category", "tags", "metadata"],
                  ((p + 1, prompt_set.pk, p, f"a photo of object {p} on a table, style {p % 17}",
                    ("colour", "counting", "text")[p % 3], "[]", "{}") for p in range(prompts)))
            n_images = prompts * RUNS
            _copy(cursor, "blobs_imageblob",
                  ["id", "sha256", "file", "format", "width", "height", "mode", "size_bytes",
                   "preview", "display_token", "display", "created_at"],
                  ((i + 1, f"{i:064x}", f"blobs/{i:064x}.png", "PNG", 512, 512, "RGB", 1000,
                    "", f"t{i:063x}", "", now) for i in range(n_images)))
            _copy(cursor, "runs_image",
                  ["id", "run_id", "prompt_id", "seed", "blob_id", "metadata", "created_at"],
                  ((p * RUNS + r + 1, runs[r].pk, p + 1, 0, p * RUNS + r + 1, "{}", now)
                   for p in range(prompts) for r in range(RUNS)))

            def task_sets():
                for p in range(prompts):
                    for members in sets:
                        yield p, [p * RUNS + r + 1 for r in members], members

            def tasks():
                for task_id, (p, images, members) in enumerate(task_sets(), start=1):
                    if task_id > tasks_needed:
                        return
                    key = ",".join(map(str, images)) if k > 2 else ""
                    yield (task_id, campaign.pk, p + 1, images[0], images[1],
                           runs[members[0]].pk, runs[members[1]].pk, False, "",
                           VOTES_PER_TASK, VOTES_PER_TASK, 0.0, rng.random(), key, now)

            _copy(cursor, "campaigns_comparisontask",
                  ["id", "campaign_id", "prompt_id", "image_a_id", "image_b_id", "run_a_id",
                   "run_b_id", "is_gold", "gold_answer", "judgments_needed", "judgments_count",
                   "priority", "shuffle_key", "members_key", "created_at"], tasks())
            if k > 2:
                _copy(cursor, "campaigns_taskimage", ["task_id", "position", "image_id",
                                                      "run_id"],
                      ((task_id, position, image, runs[run].pk)
                       for task_id, (_, images, members) in enumerate(task_sets(), start=1)
                       if task_id <= tasks_needed
                       for position, (image, run) in enumerate(zip(images, members,
                                                                   strict=True))))

            def votes():
                outcomes = ["a"] * 45 + ["b"] * 45 + ["tie"] * 8 + ["both_bad"] * 2
                start = now - dt.timedelta(days=30)
                for j in range(judgments):
                    task = j // VOTES_PER_TASK + 1
                    annotator = user_ids[(task * 7 + j % VOTES_PER_TASK) % ANNOTATORS]
                    if k > 2:  # one pick, among the K shown in a random order
                        outcome, side = "ranked", ""
                        shown = rng.sample(range(k), k)
                        ranking, order = f"[{rng.randrange(k)}]", json.dumps(shown)
                    else:
                        outcome, side = rng.choice(outcomes), rng.choice(("left", "right"))
                        ranking = order = None
                    yield (j + 1, task, campaign.pk, "overall", outcome, "human", annotator,
                           "", side, rng.randint(800, 9000),
                           uuid.UUID(int=rng.getrandbits(128)),
                           start + dt.timedelta(seconds=j * 2), ranking, order)

            _copy(cursor, "campaigns_judgment",
                  ["id", "task_id", "campaign_id", "criterion", "outcome", "judge_kind",
                   "annotator_id", "metric_name", "a_side", "latency_ms", "client_id",
                   "created_at", "ranking", "shown_order"], votes())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return campaign.pk


def _orjson_jsonl() -> None:
    """DPO lines by ``orjson.dumps``, one call per row, instead of the Arrow assembly.

    The fastest use of orjson found: each column's Python values are made once per distinct
    value and spread over the rows by index (``to_pylist`` of every row is three times
    slower); timestamps are formatted as the export does, so the bytes are the same.
    """
    import orjson
    import pyarrow as pa
    import pyarrow.compute as pc

    from evalhub.exports import formats
    from evalhub.exports.jsonl import iso_utc

    def values(column: pa.Array) -> list:
        if pa.types.is_timestamp(column.type):
            column = iso_utc(column)
        if pa.types.is_integer(column.type) and not column.null_count:
            return column.to_numpy().tolist()
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        distinct = [*column.dictionary.to_pylist(), None]
        codes = pc.fill_null(column.indices, len(distinct) - 1).to_numpy().tolist()
        return list(map(distinct.__getitem__, codes))

    def json_block(keys, columns) -> pa.Buffer:
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        rows = zip(*[values(column) for column in columns], strict=True)
        return pa.py_buffer(b"".join([dumps(dict(zip(keys, row, strict=True)), option=option)
                                      for row in rows]))

    formats.json_block = json_block


def _copy_rows() -> None:
    """psycopg parses the rows (binary COPY, ``Copy.rows()`` with ``set_types``).

    Replaces the CSV text parsed by Arrow: one Python object per value, columns transposed
    into Arrow arrays per batch as the portable path does.
    """
    from itertools import islice

    import pyarrow as pa

    from evalhub.exports import sources
    from evalhub.exports.columns import TS

    pg_types = {pa.int64(): "int8", pa.string(): "text", pa.bool_(): "bool",
                TS: "timestamptz"}

    def copy_stream(conn, statement, direct, tables, size, prepare):
        statement = statement.replace("(FORMAT csv)", "(FORMAT binary)")
        types = ["uuid" if c.name == "client_id" else pg_types[c.type] for c in direct]
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            rows = copy.rows()
            while chunk := list(islice(rows, size)):
                columns = list(zip(*chunk, strict=True))
                arrays = [pa.array([None if v is None else str(v) for v in values], c.type)
                          if c.name == "client_id" else pa.array(values, c.type)
                          for values, c in zip(columns, direct, strict=True)]
                batch = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in direct])
                if prepare is not None:
                    batch = prepare(batch)
                if batch.num_rows:
                    yield sources.join_lookups(batch, tables)

    sources._copy_stream = copy_stream


# Library alternatives measured and not kept: name -> (patch, formats it applies to or None).
VARIANTS = {
    "orjson-jsonl": (_orjson_jsonl, {"dpo-jsonl"}),
    "copy-rows": (_copy_rows, None),
}


def child(campaign_id: int, fmt: str, output: str, extra: str, variant: str) -> None:
    """Runs in a fresh process: one export, then its timing and peak RSS as JSON.

    ``variant``: ``current``, a name in ``VARIANTS``, or ``code:DIR`` (import the export
    code from the source tree DIR instead of the working tree).
    """
    if variant.startswith("code:"):
        sys.path.insert(0, variant[len("code:"):])
    _django()
    import evalhub
    from evalhub.campaigns.models import Campaign
    from evalhub.exports.options import ExportOptions
    from evalhub.exports.services import export_to_path

    if variant in VARIANTS:
        VARIANTS[variant][0]()
    campaign = Campaign.objects.get(pk=campaign_id)
    options = ExportOptions(format=fmt, image_bytes=False, **json.loads(extra))
    started = time.perf_counter()
    cpu_started = time.process_time()
    summary = export_to_path(campaign=campaign, options=options, output=Path(output),
                             overwrite=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": summary.rows, "votes": summary.votes, "seconds": seconds,
                      "cpu_seconds": time.process_time() - cpu_started, "peak_mb": peak_mb,
                      "bytes": Path(output).stat().st_size,
                      "code": str(Path(evalhub.__file__).parent.parent)}))


def _source_tree(rev: str, folder: Path) -> Path:
    """The files of git revision ``rev`` under ``folder`` (read from git, no checkout)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _median_run(runs: list[dict]) -> dict:
    """Median figures of one variant's runs (peak RSS: the highest)."""
    return {"rows": runs[0]["rows"], "votes": runs[0]["votes"], "runs": len(runs),
            "seconds": statistics.median(r["seconds"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "rows_per_s": statistics.median(r["rows"] / r["seconds"] for r in runs),
            "judgments_per_s": statistics.median(r["votes"] / r["seconds"] for r in runs),
            "judgments_per_s_each": [round(r["votes"] / r["seconds"]) for r in runs],
            "peak_mb": max(r["peak_mb"] for r in runs), "bytes": runs[0]["bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already filled database")
    parser.add_argument("--formats", nargs="+", default=FORMATS)
    parser.add_argument("--aggregate", choices=["judgment", "pair"], default="judgment",
                        help="pair: one row per pair by majority (throughput is judgments/s)")
    parser.add_argument("--min-agreement", type=float, default=None,
                        help="keep pairs whose agreement is at least this")
    parser.add_argument("--k", type=int, default=2, choices=range(2, 7), metavar="K",
                        help="3-6: a best-of-K campaign (its own database, name + _kK): "
                             "each vote exported as the K - 1 pairs it states")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every variant")
    parser.add_argument("--baseline", metavar="REV", nargs="*", default=[],
                        help="also run the code of these git revisions")
    parser.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS),
                        help="also run these library alternatives (not kept)")
    parser.add_argument("--child", nargs=5,
                        metavar=("CAMPAIGN", "FORMAT", "OUTPUT", "OPTIONS", "VARIANT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), *args.child[1:])
        return
    extra: dict = {}
    if args.aggregate != "judgment":
        extra["aggregate"] = args.aggregate
    if args.min_agreement is not None:
        extra["min_agreement"] = args.min_agreement
    if args.k > 2:  # a database of its own: both fill fixed ids
        os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_URL) + f"_k{args.k}"
    scratch_database(DEFAULT_URL, reuse=args.reuse)
    env = {**os.environ, "DEBUG": "1"}
    _django()
    from django.db import connection

    from evalhub.campaigns.models import Campaign

    if not filled(Campaign, name="bench"):
        started = time.perf_counter()
        migrate(env)
        campaign_id = populate(args.judgments, args.k)
        print(f"setup: {args.judgments:,} judgments in {time.perf_counter() - started:.1f} s")
    else:
        campaign_id = Campaign.objects.get(name="bench").pk
    connection.close()  # idle while the children run
    # Raw formats have one row per judgment: they refuse aggregation.
    formats = [fmt for fmt in args.formats
               if not (extra.get("aggregate") == "pair" and fmt.startswith("raw-"))]
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict]]] = {fmt: {} for fmt in formats}
    with tempfile.TemporaryDirectory() as tmp:
        code = {CURRENT: CURRENT}
        for index, rev in enumerate(args.baseline):
            tree = _source_tree(rev, Path(tmp) / f"baseline-{index}")
            code[f"baseline:{rev}"] = f"code:{tree}"
        for name in args.variants:
            code[name] = name
        for round_ in range(args.repeat):
            for fmt in formats:
                names = [name for name in code if name not in VARIANTS
                         or VARIANTS[name][1] is None or fmt in VARIANTS[name][1]]
                shift = round_ % len(names)  # alternate who runs first
                for name in names[shift:] + names[:shift]:
                    output = Path(tmp) / f"export.{fmt}"
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", str(campaign_id), fmt,
                         str(output), json.dumps(extra), code[name]],
                        check=True, env=env, capture_output=True, text=True).stdout
                    result = json.loads(out.strip().splitlines()[-1])
                    output.unlink()
                    runs[fmt].setdefault(name, []).append(result)
                    print(f"{fmt:18s} {name:24s} {result['rows']:>9,} rows in "
                          f"{result['seconds']:6.2f} s (CPU {result['cpu_seconds']:5.2f} s) = "
                          f"{result['votes'] / result['seconds']:>9,.0f} judgments/s, "
                          f"peak RSS {result['peak_mb']:.0f} MB, "
                          f"{result['bytes'] / 1e6:.1f} MB file", flush=True)
    results = {fmt: {name: _median_run(r) for name, r in by_name.items()}
               for fmt, by_name in runs.items()}
    slowdown = {fmt: {name: r[CURRENT]["judgments_per_s"] / figures["judgments_per_s"]
                      for name, figures in r.items() if name != CURRENT}
                for fmt, r in results.items()}
    # Under load (other processes on the machine), wall times vary several-fold between runs
    # of the same code; the CPU seconds of the export process vary far less.
    cpu_ratio = {fmt: {name: figures["cpu_seconds"] / r[CURRENT]["cpu_seconds"]
                       for name, figures in r.items() if name != CURRENT}
                 for fmt, r in results.items()}
    for fmt, by_name in slowdown.items():
        for name, ratio in by_name.items():
            print(f"{fmt:18s} {name:24s} takes {ratio:.2f}x the current code's time, "
                  f"{cpu_ratio[fmt][name]:.2f}x its CPU")
    current = [r[CURRENT] for r in results.values()]
    summary = {
        "bench": "export", "judgments": args.judgments, "options": extra, "k": args.k,
        "repeat": args.repeat,
        "formats": {fmt: {name: {k: round(v, 2) if isinstance(v, float) else v
                                 for k, v in figures.items()}
                          for name, figures in by_name.items()}
                    for fmt, by_name in results.items()},
        "slowdown": {fmt: {name: round(v, 3) for name, v in by_name.items()}
                     for fmt, by_name in slowdown.items()},
        "cpu_ratio": {fmt: {name: round(v, 3) for name, v in by_name.items()}
                      for fmt, by_name in cpu_ratio.items()},
        "targets": {
            "judgments_per_s_at_least_100000": all(
                r["judgments_per_s"] >= TARGET_ROWS_PER_S for r in current),
            "peak_rss_under_500_mb": all(r["peak_mb"] < TARGET_MB for r in current),
        },
        "thresholds": {"judgments_per_s": TARGET_ROWS_PER_S, "peak_mb": TARGET_MB},
        **run_context(load_before),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
