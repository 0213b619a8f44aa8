"""Lease-and-vote throughput: many simulated annotators against gunicorn + PostgreSQL.

Creates a fresh PostgreSQL database, seeds a campaign with enough tasks, starts gunicorn, and
runs N concurrent annotators (asyncio, one connection each) in two phases on the same server:

- saturation: every annotator votes again as soon as the answer arrives (closed loop, no
  thinking time): the most votes per second the machine sustains, whatever the latency;
- paced: the annotators together offer ``--rate`` votes/s, each on a fixed schedule (as real
  annotators vote at their own pace, not when the server lets them). Latency is measured from
  the moment a vote was *due*, so a slow answer also delays and counts against the votes queued
  behind it (no coordinated omission).

Each vote carries the request for the next task (the page's one round trip per vote); a share
of votes is re-sent with the same client id, as a flaky network would, to prove retries never
count twice. At the end every vote the server acknowledged is counted in the database. CPU time
of the web workers, PostgreSQL and this load generator is reported per vote.

    python bench/votes.py --annotators 100 --duration 20 --rate 525

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
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils.crypto import get_random_string
from evalhub.campaigns.rating_tokens import rating_token_issue
tokens, sessions, rating_tokens = [], [], []
for a in range(annotators):
    user = User.objects.create(username=f"annotator{a}")
    Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    tokens.append(Token.objects.create(user=user).key)
    # What logging in through the page leaves: a session, and the CSRF secret in a cookie.
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0]})
    session.create()
    sessions.append({"sessionid": session.session_key, "csrftoken": get_random_string(32)})
    # What the rating page's view embeds for its next/ and votes/ requests.
    rating_tokens.append(rating_token_issue(user_id=user.pk, campaign_id=campaign.pk))
print(json.dumps({"campaign": campaign.pk, "tasks": campaign.tasks.count(), "tokens": tokens,
                  "sessions": sessions, "rating_tokens": rating_tokens}))
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
    """A minimal HTTP/1.1 keep-alive JSON client (keeps the load generator's CPU small).

    Authenticates like a script (an API token), like the rating page (its rating token), or
    like the page's fallback when its token cannot be renewed (the session cookie and the CSRF
    token).
    """

    def __init__(self, host: str, port: int, token: str | None = None,
                 session: dict[str, str] | None = None, rating_token: str | None = None
                 ) -> None:
        self.host, self.port = host, port
        if rating_token is not None:
            self.credentials = f"Authorization: Rating {rating_token}\r\n"
        elif session is not None:
            self.credentials = (f"Cookie: sessionid={session['sessionid']}; "
                                f"csrftoken={session['csrftoken']}\r\n"
                                f"X-CSRFToken: {session['csrftoken']}\r\n")
        else:
            self.credentials = f"Authorization: Token {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"{self.credentials}Content-Type: application/json\r\n"
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


def new_stats() -> dict:
    return {"latency": [], "service": [], "due": [], "status": {}, "acknowledged": 0,
            "retries": 0, "retry_status": {}}


async def cast(client: Client, campaign: int, task: dict, stats: dict, retry_share: float,
               rng: random.Random, due: float) -> dict:
    """Send one vote (asking for the next task); return the next task."""
    vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": rng.choice(["left", "right", "tie", "both_bad"])},
            "latency_ms": rng.randint(500, 4000), "next": {"exclude": [task["lease"]]}}
    sent = time.perf_counter()
    status, body = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
    done = time.perf_counter()
    stats["latency"].append(done - due)
    stats["service"].append(done - sent)
    stats["due"].append(due)
    stats["status"][status] = stats["status"].get(status, 0) + 1
    if status == 201:
        stats["acknowledged"] += 1
    if rng.random() < retry_share:  # the network lost our ack: send the same vote again
        status, _ = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
        stats["retries"] += 1
        stats["retry_status"][status] = stats["retry_status"].get(status, 0) + 1
    return body.get("next") or {"done": True}


async def annotator_loop(client: Client, campaign: int, task: dict, start: float,
                         deadline: float, interval: float, stats: dict, retry_share: float,
                         rng: random.Random) -> dict:
    """Vote until the deadline: every ``interval`` seconds, or back to back when it is 0."""
    due = start
    while not task.get("done"):
        if interval:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            due = time.perf_counter()
        if due >= deadline:
            break
        task = await cast(client, campaign, task, stats, retry_share, rng, due)
        due += interval
    return task


async def drive(clients: list[Client], campaign: int, tasks: list[dict], duration: float,
                rate: float, retry_share: float, seed: int) -> tuple[dict, list[dict]]:
    """One phase: closed loop when ``rate`` is 0, else ``rate`` votes/s offered in total."""
    stats = new_stats()
    interval = len(clients) / rate if rate else 0.0
    start, stats["wall_start"] = time.perf_counter(), time.time()
    deadline = start + duration
    # Paced annotators start evenly spread over one interval, as independent people would.
    offsets = [interval * k / len(clients) for k in range(len(clients))]
    tasks = await asyncio.gather(*(
        annotator_loop(c, campaign, t, start + off, deadline, interval, stats, retry_share,
                       random.Random(seed + i))
        for i, (c, t, off) in enumerate(zip(clients, tasks, offsets, strict=True))))
    stats["elapsed_s"] = time.perf_counter() - start
    stats["start"] = start
    return stats, list(tasks)


def process_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, from /proc (seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def pids_of(parent: int) -> list[int]:
    """The process and its descendants (a process may exit while we look)."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        children = []
    found = [parent]
    for child in children:
        found += pids_of(int(child))
    return found


def postgres_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and (p / "comm").exists() and (p / "comm").read_text().strip() == "postgres"]


class CpuMeter:
    """CPU seconds used by the web server, PostgreSQL and this process during a phase."""

    def __init__(self, web_pid: int) -> None:
        self.web_pid = web_pid

    def read(self) -> dict[str, float]:
        return {"web": process_cpu_seconds(pids_of(self.web_pid)),
                "postgres": process_cpu_seconds(postgres_pids()),
                "load_generator": time.process_time()}


def worst_seconds(stats: dict, count: int = 3) -> list[dict]:
    """The seconds of the phase (by due time) with the highest p99 latency: where a tail is."""
    second = (np.array(stats["due"]) - stats["start"]).astype(int)
    latency_ms = np.array(stats["latency"]) * 1000
    rows = [{"second": int(s), "votes": int((second == s).sum()),
             "p99_ms": round(float(np.percentile(latency_ms[second == s], 99)), 1)}
            for s in np.unique(second)]
    return sorted(rows, key=lambda row: -row["p99_ms"])[:count]


def write_timeline(path: Path, phase: str, stats: dict) -> None:
    """One CSV row per vote: phase, due offset (s), latency and service time (ms)."""
    new = not path.exists()
    with path.open("a") as out:
        if new:
            out.write("phase,due_s,latency_ms,service_ms\n")
        for due, latency, service in zip(stats["due"], stats["latency"], stats["service"],
                                         strict=True):
            out.write(f"{phase},{due - stats['start']:.4f},{latency * 1000:.2f},"
                      f"{service * 1000:.2f}\n")


def summarize(stats: dict, cpu: dict[str, float], rate: float) -> dict:
    latency_ms = np.array(stats["latency"]) * 1000
    service_ms = np.array(stats["service"]) * 1000
    votes = stats["acknowledged"]
    return {
        "started_at": dt.datetime.fromtimestamp(stats["wall_start"], dt.UTC).isoformat(
            timespec="milliseconds"),
        "offered_votes_per_s": rate or None,
        "duration_s": round(stats["elapsed_s"], 2),
        "votes_acknowledged": votes,
        "votes_per_s": round(votes / stats["elapsed_s"], 1),
        "latency_p50_ms": round(float(np.percentile(latency_ms, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(latency_ms, 99)), 1),
        "latency_max_ms": round(float(latency_ms.max()), 1),
        "service_p99_ms": round(float(np.percentile(service_ms, 99)), 1),
        "worst_seconds": worst_seconds(stats),
        "status_counts": stats["status"],
        "retries_sent": stats["retries"],
        "retry_status_counts": stats["retry_status"],
        "cpu_ms_per_vote": {name: round(1000 * seconds / max(votes, 1), 2)
                            for name, seconds in cpu.items()},
    }


async def run_phases(port: int, seed: dict, args: argparse.Namespace, meter: CpuMeter
                     ) -> dict[str, dict]:
    if args.auth == "session":
        clients = [Client("127.0.0.1", port, session=session)
                   for session in seed["sessions"][:args.annotators]]
    elif args.auth == "page":
        clients = [Client("127.0.0.1", port, rating_token=token)
                   for token in seed["rating_tokens"][:args.annotators]]
    else:
        clients = [Client("127.0.0.1", port, token=token)
                   for token in seed["tokens"][:args.annotators]]
    tasks = [(await c.request(f"/api/v1/rate/{seed['campaign']}/next/", {}))[1]
             for c in clients]
    # Warm-up, not measured: a database in service holds leases and judgments and has planner
    # statistics for them (autovacuum's ANALYZE). Fresh empty tables would give every server
    # connection plans made for empty tables, kept until the next ANALYZE invalidates them.
    warmup, tasks = await drive(clients, seed["campaign"], tasks, args.warmup, 0.0, 0.0, seed=7)
    psql(args.database_url.rsplit("/", 1)[1], "ANALYZE", args.database_url)
    vacuum = asyncio.create_task(vacuum_periodically(args))
    results = {"warmup": {"acknowledged": warmup["acknowledged"]}}
    phases = [("saturation", 0.0), ("paced", args.rate)]
    for index, (name, rate) in enumerate(phases):
        before = meter.read()
        stats, tasks = await drive(clients, seed["campaign"], tasks, args.duration, rate,
                                   args.retry_share, seed=1000 * index)
        after = meter.read()
        cpu = {key: after[key] - before[key] for key in before}
        results[name] = summarize(stats, cpu, rate)
        results[name]["acknowledged"] = stats["acknowledged"]
        if args.timeline:
            write_timeline(args.timeline, name, stats)
        if any(task.get("done") for task in tasks):
            raise SystemExit(f"the campaign ran out of tasks during {name}: seed more prompts")
    vacuum.cancel()
    return results


HOT_TABLES = "campaigns_comparisontask, campaigns_lease, campaigns_judgment"


async def vacuum_periodically(args: argparse.Namespace) -> None:
    """Do autovacuum's job every ``--vacuum-every`` seconds, on the tables votes churn.

    Every vote leaves a dead task and lease row version behind. A default PostgreSQL's
    autovacuum removes them and refreshes statistics in the background; this machine's server
    runs with autovacuum off, so the bench does it (and its CPU counts against the votes).
    """
    while args.vacuum_every > 0:
        await asyncio.sleep(args.vacuum_every)
        process = await asyncio.create_subprocess_exec(
            # Throttled like autovacuum (its default cost delay and limit), not one burst.
            "psql", args.database_url, "-qc", "SET vacuum_cost_delay = 2",
            "-c", "SET vacuum_cost_limit = 200", "-c", f"VACUUM (ANALYZE) {HOT_TABLES}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await process.wait()


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
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of votes before the measured phases (then ANALYZE)")
    parser.add_argument("--vacuum-every", type=float, default=10.0,
                        help="seconds between VACUUM (ANALYZE) of the hot tables (0: never)")
    parser.add_argument("--rate", type=float, default=525.0,
                        help="votes/s the annotators offer together in the paced phase")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"],
                        help="gthread keeps connections alive; sync closes each one")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads per worker (gthread: keeps connections alive)")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--retry-share", type=float, default=0.02)
    parser.add_argument("--auth", choices=["token", "page", "session"], default="token",
                        help="annotators as API clients (API token), as the rating page (its "
                             "rating token), or as the page's fallback (session + CSRF)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--timeline", type=Path,
                        help="append one CSV row per vote (phase, due time, latency) here")
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
        [PY, "-m", "gunicorn", "-c", "evalhub/config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.web_workers), "--threads", str(args.threads),
         "--worker-class", args.worker_class, "--log-level", "warning"], cwd=REPO, env=env)
    try:
        wait_for_port(args.port)
        time.sleep(1.0)
        phases = asyncio.run(run_phases(args.port, seed, args, CpuMeter(web.pid)))
    finally:
        web.terminate()
        web.wait(30)
    counted = json.loads(subprocess.run([PY, "-c", COUNT_SCRIPT], cwd=REPO, env=env,
                                        check=True, capture_output=True, text=True)
                         .stdout.strip().splitlines()[-1])
    acknowledged = sum(phase.pop("acknowledged") for phase in phases.values())
    phases.pop("warmup")
    saturation, paced = phases["saturation"], phases["paced"]
    result = {
        "benchmark": "votes",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform_cpu(),
        "cpus": os.cpu_count(),
        "annotators": args.annotators,
        "web_workers": args.web_workers,
        "threads": args.threads,
        "worker_class": args.worker_class,
        "auth": args.auth,
        "rating_path": "sql" if env.get("EVALHUB_RATING_SQL", "1") != "0" else "orm",
        "saturation": saturation,
        "paced": paced,
        "votes_acknowledged": acknowledged,
        "judgments_in_db": counted["judgments"],
        "lost_votes": acknowledged - counted["distinct_client_ids"],
        "duplicated_votes": counted["judgments"] - counted["distinct_client_ids"],
        "task_counter_mismatches": counted["counter_mismatches"],
        "targets": {
            "paced_votes_per_s>=500": paced["votes_per_s"] >= 500,
            "paced_p99_ms<100": paced["latency_p99_ms"] < 100,
            "saturation_votes_per_s>=500": saturation["votes_per_s"] >= 500,
            "zero_lost_or_duplicated": acknowledged == counted["judgments"]
            == counted["distinct_client_ids"],
        },
    }
    for name, phase in phases.items():
        print(f"{name}: {phase['votes_per_s']} votes/s (offered "
              f"{phase['offered_votes_per_s'] or 'as fast as possible'}), p50 "
              f"{phase['latency_p50_ms']} ms, p99 {phase['latency_p99_ms']} ms, "
              f"CPU ms/vote {phase['cpu_ms_per_vote']}")
    print(f"lost {result['lost_votes']}, duplicated {result['duplicated_votes']}")
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
