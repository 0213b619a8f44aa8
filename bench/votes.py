"""Lease-and-vote throughput: many simulated annotators against gunicorn + PostgreSQL.

Creates a fresh PostgreSQL database, seeds a campaign with enough tasks, starts gunicorn, and
runs N concurrent annotators (asyncio, one keep-alive connection each) for a fixed time. Each
annotator votes and receives its next task in one request (the page's round trip); a share of
votes is re-sent with the same client id, as a flaky network would, to prove retries never
count twice. At the end every vote the server acknowledged is counted in the database.

    python bench/votes.py --annotators 100 --duration 20 --web-workers 3

Prints human-readable lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

SEED_SCRIPT = r"""
import json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.building import campaign_create
from evalhub.projects.models import Membership, Role
from evalhub.projects.services import project_create
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, Image, RunSource
from PIL import Image as P
import io

annotators, prompts, seeds, runs = map(int, sys.argv[1:5])
User = get_user_model()
owner = User.objects.create(username="owner")
project = project_create(name="bench", owner=owner)
prompt_set = PromptSet.objects.create(project=project, name="p")
Prompt.objects.bulk_create(Prompt(prompt_set=prompt_set, position=i, text=f"prompt {i}")
                           for i in range(prompts))
blobs = []
for i in range(8):
    out = io.BytesIO(); P.new("RGB", (64, 64), (i * 30, 80, 120)).save(out, format="PNG")
    blobs.append(blob_store_bytes(out.getvalue(), name=f"{i}.png"))
model = GenModel.objects.create(project=project, name="m")
run_rows = []
prompt_ids = list(prompt_set.prompts.values_list("id", flat=True))
for r in range(runs):
    ckpt = Checkpoint.objects.create(model=model, name=f"c{r}", training_step=r)
    run = GenerationRun.objects.create(project=project, checkpoint=ckpt, prompt_set=prompt_set,
                                       name=f"run{r}", source=RunSource.IMPORTED)
    Image.objects.bulk_create(Image(run=run, prompt_id=p, seed=s, blob=blobs[(p + s + r) % 8])
                              for p in prompt_ids for s in range(seeds))
    run_rows.append(run)
campaign = campaign_create(project=project, name="bench", runs=run_rows,
                           judgments_per_pair=3, lease_seconds=600, build_now=True)
tokens = []
for a in range(annotators):
    user = User.objects.create(username=f"annotator{a}")
    Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps({"campaign": campaign.pk, "tasks": campaign.tasks.count(), "tokens": tokens}))
"""

COUNT_SCRIPT = r"""
import json
import django
django.setup()
from django.db.models import Count
from evalhub.campaigns.models import ComparisonTask, Judgment
live = Judgment.objects.filter(retracted_at__isnull=True)
per_task = ComparisonTask.objects.annotate(n=Count("judgments")).values_list(
    "judgments_count", "n")
print(json.dumps({
    "judgments": live.count(),
    "distinct_client_ids": live.values("client_id").distinct().count(),
    "counter_mismatches": sum(1 for stored, actual in per_task if stored != actual),
}))
"""


def psql(database: str, sql: str, base_url: str) -> None:
    subprocess.run(["psql", base_url.rsplit("/", 1)[0] + "/" + database, "-qc", sql],
                   check=True, capture_output=True)


class Client:
    """A minimal HTTP/1.1 keep-alive JSON client (keeps the load generator's CPU small)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Token {self.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        self.writer.write(head + payload)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b"{}"
        if close:
            self.writer.close()
            self.writer = None
        return status, json.loads(data)


async def annotator_loop(client: Client, campaign: int, deadline: float, stats: dict,
                         retry_share: float, rng: random.Random) -> None:
    status, task = await client.request(f"/api/v1/rate/{campaign}/next/", {})
    while time.monotonic() < deadline and not task.get("done"):
        vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
                "answers": {"overall": rng.choice(["left", "right", "tie", "both_bad"])},
                "latency_ms": rng.randint(500, 4000), "next": {"exclude": [task["lease"]]}}
        start = time.perf_counter()
        status, body = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
        stats["latency"].append(time.perf_counter() - start)
        stats["status"][status] = stats["status"].get(status, 0) + 1
        if status == 201:
            stats["acknowledged"] += 1
        if rng.random() < retry_share:  # the network lost our ack: send the same vote again
            status, _ = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
            stats["retries"] += 1
            stats["retry_status"][status] = stats["retry_status"].get(status, 0) + 1
        task = body.get("next") or {"done": True}


async def drive(port: int, seed: dict, annotators: int, duration: float,
                retry_share: float) -> dict:
    stats = {"latency": [], "status": {}, "acknowledged": 0, "retries": 0, "retry_status": {}}
    deadline = time.monotonic() + duration
    clients = [Client("127.0.0.1", port, token) for token in seed["tokens"][:annotators]]
    start = time.monotonic()
    await asyncio.gather(*(annotator_loop(c, seed["campaign"], deadline, stats, retry_share,
                                          random.Random(i)) for i, c in enumerate(clients)))
    stats["elapsed_s"] = time.monotonic() - start
    return stats


def wait_for_port(port: int, timeout: float = 60) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--retry-share", type=float, default=0.02)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/evalhub_votesbench")
    args = parser.parse_args()

    db_name = args.database_url.rsplit("/", 1)[1]
    psql("postgres", f"DROP DATABASE IF EXISTS {db_name}", args.database_url)
    psql("postgres", f"CREATE DATABASE {db_name}", args.database_url)
    var_dir = Path("/tmp/evalhub-votesbench")
    env = {**os.environ, "DATABASE_URL": args.database_url, "DEBUG": "0",
           "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "EVALHUB_VAR_DIR": str(var_dir), "DATABASE_CONN_MAX_AGE": "600",
           "DJANGO_SETTINGS_MODULE": "evalhub.config.settings", "LOG_LEVEL": "WARNING"}
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    seeded = subprocess.run([PY, "-c", SEED_SCRIPT, str(args.annotators), str(args.prompts),
                             str(args.seeds), str(args.runs)], cwd=REPO, env=env, check=True,
                            capture_output=True, text=True)
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    # A database in service has planner statistics; a freshly bulk-loaded one does not yet.
    psql(db_name, "ANALYZE", args.database_url)
    print(f"seeded campaign {seed['campaign']}: {seed['tasks']} tasks, "
          f"{args.annotators} annotators")

    web = subprocess.Popen(
        [PY, "-m", "gunicorn", "evalhub.config.wsgi", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.web_workers), "--threads", str(args.threads),
         "--worker-class", "gthread" if args.threads > 1 else "sync", "--keep-alive", "30",
         "--preload", "--log-level", "warning"], cwd=REPO, env=env)
    try:
        wait_for_port(args.port)
        time.sleep(1.0)
        stats = asyncio.run(drive(args.port, seed, args.annotators, args.duration,
                                  args.retry_share))
    finally:
        web.terminate()
        web.wait(30)
    counted = json.loads(subprocess.run([PY, "-c", COUNT_SCRIPT], cwd=REPO, env=env,
                                        check=True, capture_output=True, text=True)
                         .stdout.strip().splitlines()[-1])
    latency_ms = np.array(stats["latency"]) * 1000
    votes_per_s = stats["acknowledged"] / stats["elapsed_s"]
    result = {
        "benchmark": "votes",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform_cpu(),
        "cpus": os.cpu_count(),
        "annotators": args.annotators,
        "web_workers": args.web_workers,
        "threads": args.threads,
        "duration_s": round(stats["elapsed_s"], 2),
        "votes_acknowledged": stats["acknowledged"],
        "votes_per_s": round(votes_per_s, 1),
        "latency_p50_ms": round(float(np.percentile(latency_ms, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(latency_ms, 99)), 1),
        "status_counts": stats["status"],
        "retries_sent": stats["retries"],
        "retry_status_counts": stats["retry_status"],
        "judgments_in_db": counted["judgments"],
        "lost_votes": stats["acknowledged"] - counted["distinct_client_ids"],
        "duplicated_votes": counted["judgments"] - counted["distinct_client_ids"],
        "task_counter_mismatches": counted["counter_mismatches"],
        "targets": {"votes_per_s>=500": votes_per_s >= 500,
                    "p99_ms<100": float(np.percentile(latency_ms, 99)) < 100},
    }
    print(f"{result['votes_per_s']} votes/s, p50 {result['latency_p50_ms']} ms, "
          f"p99 {result['latency_p99_ms']} ms, lost {result['lost_votes']}, "
          f"duplicated {result['duplicated_votes']}")
    print(json.dumps(result))


def platform_cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
