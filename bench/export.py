"""Export benchmark: 1,000,000 judgments to Parquet and JSONL through the export service.

Builds a PostgreSQL database (``evalhub_exportbench`` by default) with ``manage.py migrate``,
fills it with COPY (10 runs, 5,556 prompts, 250k comparison tasks, 4 votes per task from 200
annotators: 45 % a, 45 % b, 8 % tie, 2 % both-bad), then runs each export in a fresh
subprocess through ``evalhub.exports.services.export_to_path`` (what ``manage.py
export_preferences`` calls) and reads that process's peak RSS (``ru_maxrss``), so setup
memory is not counted. Targets: >= 100,000 rows/s and < 500 MB peak per format.

``--aggregate pair`` (one row per pair by majority, preference formats only) and
``--min-agreement X`` measure the grouping modes; their throughput is counted in judgments
(votes behind the rows) per second.

Human-readable lines first; the last line is one JSON object.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalhub_exportbench \\
        python bench/export.py [--judgments 1000000] [--reuse] [--formats dpo-jsonl ...]
            [--aggregate pair] [--min-agreement 0.75]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evalhub_exportbench"
FORMATS = ["raw-parquet", "pickapic-parquet", "dpo-jsonl", "raw-csv"]
RUNS, ANNOTATORS, VOTES_PER_TASK = 10, 200, 4
TARGET_ROWS_PER_S, TARGET_MB = 100_000, 500


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown"


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def populate(judgments: int) -> int:
    """Create the data; returns the campaign id."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from evalhub.campaigns.models import Campaign, CampaignStatus
    from evalhub.projects.models import Membership, Project, Role
    from evalhub.prompts.models import PromptSet
    from evalhub.runs.models import Checkpoint, GenerationRun, GenModel

    rng = random.Random(7)
    pairs_per_prompt = RUNS * (RUNS - 1) // 2
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
        campaign = Campaign.objects.create(project=project, name="bench",
                                           criteria=["overall"], status=CampaignStatus.ACTIVE)
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
                   "preview", "created_at"],
                  ((i + 1, f"{i:064x}", f"blobs/{i:064x}.png", "PNG", 512, 512, "RGB", 1000,
                    "", now) for i in range(n_images)))
            _copy(cursor, "runs_image",
                  ["id", "run_id", "prompt_id", "seed", "blob_id", "metadata", "created_at"],
                  ((p * RUNS + r + 1, runs[r].pk, p + 1, 0, p * RUNS + r + 1, "{}", now)
                   for p in range(prompts) for r in range(RUNS)))

            def tasks():
                task_id = 0
                for p in range(prompts):
                    for a in range(RUNS):
                        for b in range(a + 1, RUNS):
                            task_id += 1
                            if task_id > tasks_needed:
                                return
                            yield (task_id, campaign.pk, p + 1, p * RUNS + a + 1,
                                   p * RUNS + b + 1, runs[a].pk, runs[b].pk, False, "",
                                   VOTES_PER_TASK, VOTES_PER_TASK, 0.0, rng.random(), now)

            _copy(cursor, "campaigns_comparisontask",
                  ["id", "campaign_id", "prompt_id", "image_a_id", "image_b_id", "run_a_id",
                   "run_b_id", "is_gold", "gold_answer", "judgments_needed", "judgments_count",
                   "priority", "shuffle_key", "created_at"], tasks())

            def votes():
                outcomes = ["a"] * 45 + ["b"] * 45 + ["tie"] * 8 + ["both_bad"] * 2
                start = now - dt.timedelta(days=30)
                for j in range(judgments):
                    task = j // VOTES_PER_TASK + 1
                    annotator = user_ids[(task * 7 + j % VOTES_PER_TASK) % ANNOTATORS]
                    yield (j + 1, task, campaign.pk, "overall", rng.choice(outcomes), "human",
                           annotator, "", rng.choice(("left", "right")),
                           rng.randint(800, 9000), uuid.UUID(int=rng.getrandbits(128)),
                           start + dt.timedelta(seconds=j * 2))

            _copy(cursor, "campaigns_judgment",
                  ["id", "task_id", "campaign_id", "criterion", "outcome", "judge_kind",
                   "annotator_id", "metric_name", "a_side", "latency_ms", "client_id",
                   "created_at"], votes())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return campaign.pk


def child(campaign_id: int, fmt: str, output: str, extra: str) -> None:
    """Runs in a fresh process: one export, then its timing and peak RSS as JSON."""
    _django()
    from evalhub.campaigns.models import Campaign
    from evalhub.exports.options import ExportOptions
    from evalhub.exports.services import export_to_path

    campaign = Campaign.objects.get(pk=campaign_id)
    options = ExportOptions(format=fmt, image_bytes=False, **json.loads(extra))
    started = time.perf_counter()
    summary = export_to_path(campaign=campaign, options=options, output=Path(output),
                             overwrite=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": summary.rows, "votes": summary.votes, "seconds": seconds,
                      "peak_mb": peak_mb, "bytes": Path(output).stat().st_size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already filled database")
    parser.add_argument("--formats", nargs="+", default=FORMATS)
    parser.add_argument("--aggregate", choices=["judgment", "pair"], default="judgment",
                        help="pair: one row per pair by majority (throughput is judgments/s)")
    parser.add_argument("--min-agreement", type=float, default=None,
                        help="keep pairs whose agreement is at least this")
    parser.add_argument("--child", nargs=4, metavar=("CAMPAIGN", "FORMAT", "OUTPUT", "OPTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.child[2], args.child[3])
        return
    extra: dict = {}
    if args.aggregate != "judgment":
        extra["aggregate"] = args.aggregate
    if args.min_agreement is not None:
        extra["min_agreement"] = args.min_agreement
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    url = os.environ["DATABASE_URL"]
    dbname = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              [dbname]).fetchone()
        if exists and not args.reuse:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    env = {**os.environ, "DEBUG": "1"}
    _django()
    from django.db import connection

    from evalhub.campaigns.models import Campaign

    # A new (or half-built) database has no tables yet: ask before querying them.
    migrated = Campaign._meta.db_table in connection.introspection.table_names()
    if not migrated or not Campaign.objects.filter(name="bench").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
                       check=True, env=env)
        campaign_id = populate(args.judgments)
        print(f"setup: {args.judgments:,} judgments in {time.perf_counter() - started:.1f} s")
    else:
        campaign_id = Campaign.objects.get(name="bench").pk
    results = {}
    # Raw formats have one row per judgment: they refuse aggregation.
    formats = [fmt for fmt in args.formats
               if not (extra.get("aggregate") == "pair" and fmt.startswith("raw-"))]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            output = Path(tmp) / f"export.{fmt}"
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(campaign_id), fmt, str(output),
                 json.dumps(extra)],
                check=True, env=env, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            result["rows_per_s"] = result["rows"] / result["seconds"]
            result["judgments_per_s"] = result["votes"] / result["seconds"]
            result["ok"] = (result["judgments_per_s"] >= TARGET_ROWS_PER_S
                            and result["peak_mb"] < TARGET_MB)
            results[fmt] = result
            print(f"{fmt:18s} {result['rows']:>9,} rows in {result['seconds']:6.2f} s = "
                  f"{result['rows_per_s']:>9,.0f} rows/s ({result['judgments_per_s']:,.0f} "
                  f"judgments/s), peak RSS {result['peak_mb']:.0f} MB, "
                  f"{result['bytes'] / 1e6:.1f} MB file {'OK' if result['ok'] else 'MISSED'}")
    summary = {
        "bench": "export", "judgments": args.judgments, "options": extra,
        "formats": {fmt: {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
                    for fmt, r in results.items()},
        "targets": {"rows_per_s": TARGET_ROWS_PER_S, "peak_mb": TARGET_MB},
        "machine": _cpu_model(), "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
