"""Scientist pages benchmark: server time of every page a scientist reads, on a large project.

Builds a PostgreSQL database (``evalhub_dashbench`` by default) with ``manage.py migrate`` and
fills it through the ORM: one project with 5 models x 10 checkpoints (training steps) = 50
runs of one prompt set of 400 prompts (4 categories) and one seed, so 20,000 images (blobs are
rows only: no page here reads pixels); a CLIP-score per image, FID and CLIP-score per run, a
finished metric job per run; one active campaign over the 50 runs with 33,334 tasks (every
prompt of the first two runs' pair, then random pairs of runs on random prompts, 1 % gold) and
3 human votes per task from 100 annotators (100,000 votes; outcomes drawn from a
Bradley-Terry model of the runs' strengths, so the leaderboard has something to find), and the
LPIPS distance of the first two runs' pairs. The background refresh a vote queues
(``campaign_leaderboards_refresh``: the leaderboard snapshot with its charts, and the annotator
quality) runs once before the timing (a page finds them fresh, as it does between votes; the
refresh is timed apart).

Then, in this process with Django's test client signed in as a scientist, each page is
requested ``--warmup`` times untimed and ``--requests`` times timed: the time of the request
through Django's handler (middleware, view, template), which is the server's time without
the network. Pages:

- ``dashboard``: the dashboards' home (``/dashboard/``);
- ``campaign``: the campaign's leaderboard page (ranking table and charts);
- ``model``: a model's page (its checkpoints along training);
- ``gallery_turn``: a gallery page turn (the first two runs, prompt order, pages 1, 2, ...);
- ``gallery_turn_sorted``: the same, sorted by metric-vs-human disagreement (reads every pair
  of the two runs);
- ``campaign_quality``: the campaign's management page (progress per annotator, quality,
  agreement, gold pairs);
- ``job_list``: the workspace's metric jobs page (the form and the last 50 jobs);
- ``run_list``: the workspace's runs page.

Targets (issue 16): every page under 500 ms at p95, a gallery page turn under 150 ms at p95.
No peer is named for this bench. Human-readable lines first; the last line is one JSON object
whose ``targets`` holds one boolean per target.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalhub_dashbench \\
        python bench/dashboards.py [--requests 20] [--warmup 2] [--reuse]
            [--runs 50] [--prompts 400] [--votes 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.db import filled, migrate, scratch_database  # noqa: E402
from bench.machine import cpu_model  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/evalhub_dashbench"
PROJECT = "dashbench"
MODELS = 5
CATEGORIES = ("colour", "counting", "text", "spatial")
ANNOTATORS, VOTES_PER_TASK = 100, 3
GOLD_SHARE = 0.01
PAGE_TARGET_MS, TURN_TARGET_MS = 500.0, 150.0
BATCH = 5000


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.config.settings")
    os.environ.setdefault("DEBUG", "1")
    # Nothing here should reach a worker; an in-memory broker keeps a stray message local.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    import django

    django.setup()


def populate(*, runs_n: int, prompts_n: int, votes: int, seed: int = 7) -> None:
    """Fill the database (see the module docstring); the first two runs are the gallery's."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from evalhub.blobs.models import ImageBlob
    from evalhub.blobs.names import display_token
    from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask, Judgment
    from evalhub.evaluation.models import (
        ImageMetric,
        JobStatus,
        MetricJob,
        PairMetric,
        RunMetric,
    )
    from evalhub.projects.models import Membership, Project, Role
    from evalhub.prompts.models import Prompt, PromptSet
    from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, RunStatus

    rng = random.Random(seed)
    User = get_user_model()
    provenance = {"backbone_id": "bench", "weights_sha256": "random", "calibrated": False}
    with transaction.atomic():
        project = Project.objects.create(name=PROJECT, slug=PROJECT)
        scientist = User.objects.create_user(username="scientist", password="bench")
        Membership.objects.create(project=project, user=scientist, role=Role.SCIENTIST)
        annotators = User.objects.bulk_create(
            [User(username=f"ann{i:03d}") for i in range(ANNOTATORS)])
        Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.ANNOTATOR)
                                        for u in annotators])
        prompt_set = PromptSet.objects.create(project=project, name="bench prompts")
        prompts = Prompt.objects.bulk_create([
            Prompt(prompt_set=prompt_set, position=p, category=CATEGORIES[p % len(CATEGORIES)],
                   text=f"a photo of object {p} on a table, style {p % 17}")
            for p in range(prompts_n)])
        models = [GenModel.objects.create(project=project, name=f"model-{m}")
                  for m in range(MODELS)]
        per_model = math.ceil(runs_n / MODELS)
        checkpoints = Checkpoint.objects.bulk_create([
            Checkpoint(model=models[r // per_model], name=f"step-{(r % per_model + 1) * 1000}",
                       training_step=(r % per_model + 1) * 1000) for r in range(runs_n)])
        runs = GenerationRun.objects.bulk_create([
            GenerationRun(project=project, checkpoint=checkpoints[r], prompt_set=prompt_set,
                          name=f"run-{r:02d}", source="imported", seeds=[0],
                          status=RunStatus.COMPLETED, items_total=prompts_n,
                          items_done=prompts_n) for r in range(runs_n)])
        blobs = ImageBlob.objects.bulk_create([
            ImageBlob(sha256=f"{i:064x}", display_token=display_token(f"{i:064x}"),
                      file=f"blobs/{i:064x}.png", format="PNG", width=512, height=512,
                      mode="RGB", size_bytes=200_000)
            for i in range(runs_n * prompts_n)], batch_size=BATCH)
        images = Image.objects.bulk_create([
            Image(run=runs[r], prompt=prompts[p], seed=0, blob=blobs[r * prompts_n + p])
            for r in range(runs_n) for p in range(prompts_n)], batch_size=BATCH)

        def image(r: int, p: int) -> Image:
            return images[r * prompts_n + p]

        strength = [rng.gauss(0, 1) for _ in range(runs_n)]
        ImageMetric.objects.bulk_create([
            ImageMetric(image=img, metric="clip_score", value=25 + 3 * strength[i // prompts_n]
                        + rng.gauss(0, 2), **provenance) for i, img in enumerate(images)],
            batch_size=BATCH)
        RunMetric.objects.bulk_create([
            RunMetric(run=run, metric=metric, value=value, n_images=prompts_n, **provenance)
            for r, run in enumerate(runs)
            for metric, value in (("fid", 30 - 5 * strength[r] + rng.gauss(0, 1)),
                                  ("clip_score", 25 + 3 * strength[r]))])
        now = dt.datetime.now(dt.UTC)
        MetricJob.objects.bulk_create([
            MetricJob(project=project, run=run, metrics=["fid", "clip_score"],
                      status=JobStatus.COMPLETED, shards_total=4, shards_done=4,
                      images_total=prompts_n, created_by=scientist, started_at=now,
                      finished_at=now) for run in runs])
        PairMetric.objects.bulk_create([
            PairMetric(image_a=image(0, p), image_b=image(1, p), metric="lpips",
                       value=rng.uniform(0.05, 0.7), **provenance) for p in range(prompts_n)])

        campaign = Campaign.objects.create(project=project, name="bench campaign",
                                           criteria=["overall"], status=CampaignStatus.ACTIVE,
                                           judgments_per_pair=VOTES_PER_TASK,
                                           gold_rate=GOLD_SHARE, created_by=scientist)
        campaign.runs.set(runs)
        n_tasks = math.ceil(votes / VOTES_PER_TASK)
        pairs: list[tuple[int, int, int]] = [(p, 0, 1) for p in range(min(prompts_n, n_tasks))]
        seen = set(pairs)
        while len(pairs) < n_tasks:
            a, b = sorted(rng.sample(range(runs_n), 2))
            key = (rng.randrange(prompts_n), a, b)
            if key not in seen:
                seen.add(key)
                pairs.append(key)
        tasks = []
        for index, (p, a, b) in enumerate(pairs):
            gold = index >= prompts_n and rng.random() < GOLD_SHARE
            stronger = "a" if strength[a] >= strength[b] else "b"
            tasks.append(ComparisonTask(
                campaign=campaign, prompt=prompts[p], image_a=image(a, p), image_b=image(b, p),
                run_a=runs[a], run_b=runs[b], is_gold=gold, gold_answer=stronger if gold else "",
                judgments_needed=VOTES_PER_TASK, judgments_count=VOTES_PER_TASK,
                shuffle_key=rng.random()))
        tasks = ComparisonTask.objects.bulk_create(tasks, batch_size=BATCH)
        judgments = []
        left = votes
        for task, (_, a, b) in zip(tasks, pairs, strict=True):
            p_a = 1 / (1 + math.exp(strength[b] - strength[a]))
            for annotator in rng.sample(annotators, min(VOTES_PER_TASK, left)):
                draw = rng.random()
                outcome = ("tie" if draw < 0.06 else "both_bad" if draw < 0.08
                           else "a" if rng.random() < p_a else "b")
                judgments.append(Judgment(
                    task=task, campaign=campaign, criterion="overall", outcome=outcome,
                    annotator=annotator, a_side=rng.choice(("left", "right")),
                    latency_ms=rng.randint(800, 9000), client_id=uuid.UUID(
                        int=rng.getrandbits(128))))
                left -= 1
            if len(judgments) >= BATCH:
                Judgment.objects.bulk_create(judgments)
                judgments = []
        Judgment.objects.bulk_create(judgments)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(*, requests: int, warmup: int) -> dict[str, dict]:
    """Time each page; returns name -> figures in milliseconds (and queries per request)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from evalhub.campaigns.models import Campaign
    from evalhub.leaderboards.services import campaign_leaderboards_refresh
    from evalhub.projects.models import Project
    from evalhub.runs.models import GenerationRun, GenModel

    project = Project.objects.get(slug=PROJECT)
    campaign = Campaign.objects.get(project=project)
    started = time.perf_counter()
    campaign_leaderboards_refresh(campaign=campaign)
    refresh_s = time.perf_counter() - started
    model = GenModel.objects.filter(project=project).order_by("name").first()
    left, right = GenerationRun.objects.filter(project=project).order_by("name")[:2]
    pages = -(-left.images.count() // 24)
    gallery = f"/gallery/{project.pk}/?a={left.pk}&b={right.pk}"

    def turns(sort: str = ""):
        # One request per page, cycling through the pages (a scientist paging on).
        return [f"{gallery}{sort}&page={1 + i % pages}" for i in range(requests + warmup)]

    urls = {
        "dashboard": ["/dashboard/"],
        "campaign": [f"/dashboard/campaigns/{campaign.pk}/"],
        "model": [f"/dashboard/models/{model.pk}/"],
        "gallery_turn": turns(),
        "gallery_turn_sorted": turns("&sort=metric_disagreement"),
        "campaign_quality": [f"/campaigns/{campaign.pk}/manage/"],
        "job_list": [f"/workspace/{project.pk}/metrics/"],
        "run_list": [f"/workspace/{project.pk}/runs/"],
    }
    client = Client()
    client.force_login(get_user_model().objects.get(username="scientist"))
    figures: dict[str, dict] = {}
    for name, sequence in urls.items():
        times = []
        for i in range(warmup + requests):
            url = sequence[i % len(sequence)]
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{name}: {url} answered {response.status_code}")
            if i >= warmup:
                times.append(elapsed)
        with CaptureQueriesContext(connection) as queries:
            client.get(sequence[0])
        figures[name] = {"p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(_percentile(times, 95), 1),
                         "max_ms": round(max(times), 1), "queries": len(queries),
                         "requests": len(times)}
        print(f"{name:20s} p50 {figures[name]['p50_ms']:7.1f} ms  p95 "
              f"{figures[name]['p95_ms']:7.1f} ms  max {figures[name]['max_ms']:7.1f} ms  "
              f"{len(queries):3d} queries", flush=True)
    figures["_refresh"] = {"seconds": round(refresh_s, 2)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per page first")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already filled database")
    args = parser.parse_args()
    if args.runs < 2 or args.prompts < 1 or args.votes < args.prompts:
        parser.error("need at least 2 runs, 1 prompt and as many votes as prompts")
    scratch_database(DEFAULT_URL, reuse=args.reuse)
    _django()
    from evalhub.projects.models import Project

    setup_s = None
    if not filled(Project, slug=PROJECT):
        started = time.perf_counter()
        migrate()
        populate(runs_n=args.runs, prompts_n=args.prompts, votes=args.votes)
        setup_s = time.perf_counter() - started
        print(f"setup: {args.runs} runs, {args.runs * args.prompts:,} images, "
              f"{args.votes:,} votes in {setup_s:.1f} s")
    load_before = os.getloadavg()
    figures = measure(requests=args.requests, warmup=args.warmup)
    refresh = figures.pop("_refresh")
    turns = ("gallery_turn", "gallery_turn_sorted")
    summary = {
        "bench": "dashboards", "runs": args.runs, "images": args.runs * args.prompts,
        "votes": args.votes, "requests": args.requests, "warmup": args.warmup,
        "pages": figures, "leaderboard_refresh_s": refresh["seconds"],
        "setup_s": None if setup_s is None else round(setup_s, 1),
        "targets": {
            "every_page_p95_under_500_ms": all(f["p95_ms"] < PAGE_TARGET_MS
                                               for f in figures.values()),
            "gallery_turn_p95_under_150_ms": all(figures[name]["p95_ms"] < TURN_TARGET_MS
                                                 for name in turns),
        },
        "thresholds": {"page_p95_ms": PAGE_TARGET_MS, "gallery_turn_p95_ms": TURN_TARGET_MS},
        "server_time": "Django test client in-process: handler time, no network",
        "machine": cpu_model(), "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
