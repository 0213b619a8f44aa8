"""Lease-and-vote throughput: many simulated annotators against gunicorn + PostgreSQL.

Creates a fresh PostgreSQL database, seeds a campaign with enough tasks, starts gunicorn with
the project's config, and runs N concurrent annotators (asyncio, one keep-alive connection
each) in two phases on the same server:

- saturation: every annotator votes again as soon as the answer arrives (closed loop, no
  thinking time): the most votes per second the machine sustains, whatever the latency;
- paced: the annotators together offer ``--rate`` votes/s, each on a fixed schedule (as real
  annotators vote at their own pace, not when the server lets them). Latency is measured from
  the moment a vote was *due*, so a slow answer also delays and counts against the votes queued
  behind it (no coordinated omission).

Each vote carries the request for the next task (the page's one round trip per vote); a share
of votes is re-sent with the same client id, as a flaky network would, to prove retries never
count twice. Annotators authenticate like an API client (``--auth token``: ``Authorization:
Token``) or like the rating page (``--auth session``: the session cookie, and the CSRF cookie
the page's ``GET /rate/<campaign>/`` sets, echoed in ``X-CSRFToken``).

Side by side: ``--compare-with REV`` (default ``d32568b``, the last commit before the rating
rules had one implementation) checks REV out in a temporary git worktree and runs the very
same phases against a server started from that tree (its own fresh database, seeded by that
tree's own seed code and models, votes through its default rating path), then against this
tree, and prints both and their ratios. ``--compare-with none`` measures this tree only.

Afterwards every vote the server acknowledged is looked up in the database (one SQL check for
both trees): none lost, none stored twice, every task's counter equal to its live judgments,
none over its quota, no annotator judging a pair twice. CPU time is read from /proc and
reported per acknowledged vote: the web server (gunicorn master and workers), PostgreSQL (its
shared processes and this database's backends; other databases' backends are left out, since
the machine's PostgreSQL is shared) and this load generator.

    python bench/votes.py --auth session --annotators 100 --duration 20

Prints human-readable lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.db import fresh_database, server_url  # noqa: E402, F401 (server_url: votes_inprocess)

PY = sys.executable
# The last commit before "One implementation of the rating rules" (d40d18a).
BEFORE_ONE_PATH = "d32568b"

# Run in the tree being measured, with its own models. Prints the campaign, its task count,
# each annotator's API token and the session that signing in leaves behind.
SEED_SCRIPT = r"""
import json, sys
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.services import campaign_create
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
tokens, sessions = [], []
for a in range(annotators):
    user = User.objects.create(username=f"annotator{a}")
    Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    tokens.append(Token.objects.create(user=user).key)
    # What signing in through /accounts/login/ leaves (without hashing a password 100 times);
    # the CSRF cookie comes from the rating page itself (bench/votes.py: csrf_from_page).
    session = SessionStore()
    # The backend that checks passwords in this tree (the first listed may only guard
    # sign-ins): the one a sign-in through /accounts/login/ names in the session.
    session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[-1]})
    session.create()
    sessions.append({"sessionid": session.session_key})
print(json.dumps({"campaign": campaign.pk, "tasks": campaign.tasks.count(), "tokens": tokens,
                  "sessions": sessions}))
"""

# The same check for every tree (the tables kept their names and columns): per task, the stored
# counter against the live human judgments of the overall criterion (one per vote).
INTEGRITY_SQL = """
WITH live AS (SELECT task_id, annotator_id, criterion FROM campaigns_judgment
              WHERE retracted_at IS NULL AND judge_kind = 'human'),
per_task AS (SELECT t.judgments_count, t.judgments_needed,
                    count(l.task_id) FILTER (WHERE l.criterion = 'overall') AS live
             FROM campaigns_comparisontask t LEFT JOIN live l ON l.task_id = t.id
             GROUP BY t.id)
SELECT (SELECT count(*) FROM per_task WHERE judgments_count <> live),
       (SELECT count(*) FROM per_task WHERE live > judgments_needed),
       (SELECT count(*) FROM (SELECT 1 FROM live WHERE annotator_id IS NOT NULL
                              GROUP BY task_id, annotator_id, criterion
                              HAVING count(*) > 1) AS twice)
"""
STORED_CLIENT_IDS_SQL = ("SELECT client_id FROM campaigns_judgment WHERE retracted_at IS NULL"
                         " AND judge_kind = 'human' AND criterion = 'overall'")
HOT_TABLES = "campaigns_comparisontask, campaigns_lease, campaigns_judgment"


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPerVote:
    """CPU milliseconds per acknowledged vote (utime + stime over the phase / votes)."""

    web: float
    postgres: float
    load_generator: float
    web_and_postgres: float  # the server's cost: what the 7 ms target bounds


@dataclass(frozen=True)
class WorstSecond:
    """One second of a phase (by due time) and the p99 latency of the votes due in it."""

    second: int
    votes: int
    p99_ms: float


@dataclass(frozen=True)
class PhaseResult:
    """One phase. Latency: answer time minus due time (paced) or send time (saturation)."""

    started_at: str
    offered_votes_per_s: float | None  # None: saturation (as fast as answers come)
    duration_s: float
    votes_acknowledged: int
    votes_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    service_p99_ms: float  # answer time minus send time: the server's share of the latency
    worst_seconds: list[WorstSecond]
    status_counts: dict[int, int]
    retries_sent: int
    retry_status_counts: dict[int, int]
    cpu_ms_per_vote: CpuPerVote


@dataclass(frozen=True)
class Integrity:
    """What the database holds against what the server acknowledged (all phases, warm-up too).

    ``lost``: acknowledged client ids with no live judgment; ``duplicated``: live judgments
    beyond one per client id; ``stored_unacknowledged``: judgments whose vote was never
    acknowledged; ``counter_mismatches``: tasks whose ``judgments_count`` differs from their
    live judgments; ``over_quota``: tasks with more live judgments than ``judgments_needed``;
    ``pair_judged_twice``: (task, annotator, criterion) with more than one live judgment.
    """

    votes_acknowledged: int
    judgments_in_db: int
    lost: int
    duplicated: int
    stored_unacknowledged: int
    counter_mismatches: int
    over_quota: int
    pair_judged_twice: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stored_unacknowledged
                    or self.counter_mismatches or self.over_quota or self.pair_judged_twice)


@dataclass(frozen=True)
class CodeResult:
    """Both phases and the integrity check for one tree of the code."""

    label: str  # "before" or "current"
    rev: str
    rating_path: str
    tasks: int
    saturation: PhaseResult
    paced: PhaseResult
    integrity: Integrity


@dataclass(frozen=True)
class Targets:
    """Issue #13's vote targets, for the current code."""

    saturated_ge_200_votes_s: bool
    paced_150_p99_lt_100ms: bool
    cpu_le_7ms_per_vote: bool  # web + PostgreSQL, in both phases
    zero_lost_or_duplicated: bool  # and every counter equal to its live judgments


def targets_of(current: CodeResult, rate: float) -> Targets:
    """Judge the current code; a paced run offered less than 150 votes/s does not count."""
    return Targets(
        saturated_ge_200_votes_s=current.saturation.votes_per_s >= 200,
        paced_150_p99_lt_100ms=rate >= 150 and current.paced.latency_p99_ms < 100,
        cpu_le_7ms_per_vote=max(current.saturation.cpu_ms_per_vote.web_and_postgres,
                                current.paced.cpu_ms_per_vote.web_and_postgres) <= 7.0,
        zero_lost_or_duplicated=current.integrity.ok,
    )


@dataclass(frozen=True)
class PhaseRatios:
    """current / before of one phase (votes/s: higher is better; the others: lower)."""

    votes_per_s: float | None
    latency_p99_ms: float | None
    cpu_web: float | None
    cpu_postgres: float | None
    cpu_web_and_postgres: float | None

    @classmethod
    def of(cls, now: PhaseResult, then: PhaseResult) -> PhaseRatios:
        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 2) if b else None

        cpu_now, cpu_then = now.cpu_ms_per_vote, then.cpu_ms_per_vote
        return cls(ratio(now.votes_per_s, then.votes_per_s),
                   ratio(now.latency_p99_ms, then.latency_p99_ms),
                   ratio(cpu_now.web, cpu_then.web), ratio(cpu_now.postgres, cpu_then.postgres),
                   ratio(cpu_now.web_and_postgres, cpu_then.web_and_postgres))


@dataclass(frozen=True)
class Ratios:
    saturation: PhaseRatios
    paced: PhaseRatios

    @classmethod
    def of(cls, current: CodeResult, before: CodeResult) -> Ratios:
        return cls(PhaseRatios.of(current.saturation, before.saturation),
                   PhaseRatios.of(current.paced, before.paced))


# --- load generator -----------------------------------------------------------------------


class Client:
    """A minimal HTTP/1.1 keep-alive JSON client (keeps the load generator's CPU small).

    Sends ``credentials`` (ready-made header lines) with every request: an API token, or the
    session cookie with the CSRF cookie and header as the rating page sends them.
    """

    def __init__(self, host: str, port: int, credentials: str) -> None:
        self.host, self.port, self.credentials = host, port, credentials
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    def with_token(cls, host: str, port: int, token: str) -> Client:
        return cls(host, port, f"Authorization: Token {token}\r\n")

    @classmethod
    def with_session(cls, host: str, port: int, sessionid: str, csrftoken: str) -> Client:
        return cls(host, port, f"Cookie: sessionid={sessionid}; csrftoken={csrftoken}\r\n"
                               f"X-CSRFToken: {csrftoken}\r\n")

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

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def csrf_from_page(port: int, campaign: int, sessionid: str) -> str:
    """The CSRF cookie the rating page sets (``ensure_csrf_cookie``), as a browser gets it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", f"/rate/{campaign}/", headers={
            "Host": "127.0.0.1", "Cookie": f"sessionid={sessionid}"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"GET /rate/{campaign}/ answered {response.status}, not the page")
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    if "csrftoken" not in cookies:
        raise SystemExit(f"GET /rate/{campaign}/ set no csrftoken cookie")
    return cookies["csrftoken"].value


@dataclass
class PhaseStats:
    """What one phase's annotators saw, vote by vote (seconds, ``time.perf_counter``)."""

    start: float
    wall_start: float
    latency: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    due: list[float] = field(default_factory=list)
    status: dict[int, int] = field(default_factory=dict)
    acknowledged: int = 0
    acknowledged_ids: set[str] = field(default_factory=set)
    retries: int = 0
    retry_status: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


async def cast(client: Client, campaign: int, task: dict, stats: PhaseStats,
               retry_share: float, rng: random.Random, due: float) -> dict:
    """Send one vote (asking for the next task); return the next task."""
    vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": rng.choice(["left", "right", "tie", "both_bad"])},
            "latency_ms": rng.randint(500, 4000), "next": {"exclude": [task["lease"]]}}
    sent = time.perf_counter()
    status, body = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
    done = time.perf_counter()
    stats.latency.append(done - due)
    stats.service.append(done - sent)
    stats.due.append(due)
    stats.status[status] = stats.status.get(status, 0) + 1
    if status == 201:
        stats.acknowledged += 1
        stats.acknowledged_ids.add(vote["client_id"])
    if rng.random() < retry_share:  # the network lost our ack: send the same vote again
        retry_status, _ = await client.request(f"/api/v1/rate/{campaign}/votes/", vote)
        stats.retries += 1
        stats.retry_status[retry_status] = stats.retry_status.get(retry_status, 0) + 1
        if retry_status in (200, 201):
            stats.acknowledged_ids.add(vote["client_id"])
    if status in (200, 201) and "next" in body:
        return body["next"] or {"done": True}
    # A refused vote (counted in the status counts above) brings no next task: ask for one,
    # as the page would, instead of ending this annotator's run.
    return (await client.request(f"/api/v1/rate/{campaign}/next/", {}))[1]


async def annotator_loop(client: Client, campaign: int, task: dict, start: float,
                         deadline: float, interval: float, stats: PhaseStats,
                         retry_share: float, rng: random.Random) -> dict:
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
                rate: float, retry_share: float, seed: int) -> tuple[PhaseStats, list[dict]]:
    """One phase: closed loop when ``rate`` is 0, else ``rate`` votes/s offered in total."""
    interval = len(clients) / rate if rate else 0.0
    stats = PhaseStats(start=time.perf_counter(), wall_start=time.time())
    deadline = stats.start + duration
    # Paced annotators start evenly spread over one interval, as independent people would.
    offsets = [interval * k / len(clients) for k in range(len(clients))]
    tasks = await asyncio.gather(*(
        annotator_loop(c, campaign, t, stats.start + off, deadline, interval, stats,
                       retry_share, random.Random(seed + i))
        for i, (c, t, off) in enumerate(zip(clients, tasks, offsets, strict=True))))
    stats.elapsed_s = time.perf_counter() - stats.start
    return stats, list(tasks)


# --- CPU accounting -------------------------------------------------------------------------

# A PostgreSQL client backend's process title: "postgres: [cluster: ]user database host(port)
# state" (or "[local]" for a socket); shared processes (checkpointer, walwriter, ...) differ.
BACKEND_TITLE = re.compile(r"^postgres: (?:[^:\s]+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])")
# A parallel query's helper: it works for its leader's database.
PARALLEL_WORKER_TITLE = re.compile(r"parallel worker for PID (\d+)")


def process_cpu(pids: list[int]) -> dict[int, tuple[int, float]]:
    """pid -> (start time in clock ticks, utime + stime in seconds), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        table[pid] = (int(fields[19]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def cpu_used(before: dict[int, tuple[int, float]], after: dict[int, tuple[int, float]]
             ) -> float:
    """CPU seconds the processes alive at ``after`` used since ``before`` (new ones: all).

    A process that exits in between is not counted: every process measured here (gunicorn
    workers with persistent database connections, the vacuum session) lives through a phase.
    """
    used = 0.0
    for pid, (start, seconds) in after.items():
        earlier = before.get(pid)
        used += seconds - (earlier[1] if earlier and earlier[0] == start else 0.0)
    return used


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


def postgres_pids(database: str) -> list[int]:
    """PostgreSQL's shared processes and the backends of ``database`` (not other databases')."""
    titles = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            titles[int(proc.name)] = (proc / "cmdline").read_bytes().replace(
                b"\0", b" ").decode().strip()
        except OSError:
            continue
    ours = {pid for pid, title in titles.items()
            if (backend := BACKEND_TITLE.match(title)) and backend.group(1) == database}
    found = []
    for pid, title in titles.items():
        if (helper := PARALLEL_WORKER_TITLE.search(title)) is not None:
            if int(helper.group(1)) in ours:
                found.append(pid)
        elif pid in ours or BACKEND_TITLE.match(title) is None:
            found.append(pid)
    return found


@dataclass(frozen=True)
class CpuSnapshot:
    web: dict[int, tuple[int, float]]
    postgres: dict[int, tuple[int, float]]
    load_generator: float


class CpuMeter:
    """CPU seconds used by the web server, PostgreSQL and this process between two reads."""

    def __init__(self, web_pid: int, database: str) -> None:
        self.web_pid, self.database = web_pid, database

    def read(self) -> CpuSnapshot:
        return CpuSnapshot(process_cpu(pids_of(self.web_pid)),
                           process_cpu(postgres_pids(self.database)), time.process_time())

    @staticmethod
    def per_vote(before: CpuSnapshot, after: CpuSnapshot, votes: int) -> CpuPerVote:
        """Milliseconds per vote of each part."""
        web = cpu_used(before.web, after.web)
        postgres = cpu_used(before.postgres, after.postgres)
        n = max(votes, 1)
        return CpuPerVote(web=round(1000 * web / n, 2), postgres=round(1000 * postgres / n, 2),
                          load_generator=round(
                              1000 * (after.load_generator - before.load_generator) / n, 2),
                          web_and_postgres=round(1000 * (web + postgres) / n, 2))


# --- phases -------------------------------------------------------------------------------


def worst_seconds(stats: PhaseStats, count: int = 3) -> list[WorstSecond]:
    """The seconds of the phase (by due time) with the highest p99 latency: where a tail is."""
    second = (np.array(stats.due) - stats.start).astype(int)
    latency_ms = np.array(stats.latency) * 1000
    rows = [WorstSecond(int(s), int((second == s).sum()),
                        round(float(np.percentile(latency_ms[second == s], 99)), 1))
            for s in np.unique(second)]
    return sorted(rows, key=lambda row: -row.p99_ms)[:count]


def write_timeline(path: Path, code: str, phase: str, stats: PhaseStats) -> None:
    """One CSV row per vote: code, phase, due offset (s), latency and service time (ms)."""
    new = not path.exists()
    with path.open("a") as out:
        if new:
            out.write("code,phase,due_s,latency_ms,service_ms\n")
        for due, latency, service in zip(stats.due, stats.latency, stats.service, strict=True):
            out.write(f"{code},{phase},{due - stats.start:.4f},{latency * 1000:.2f},"
                      f"{service * 1000:.2f}\n")


def summarize(stats: PhaseStats, cpu: CpuPerVote, rate: float) -> PhaseResult:
    latency_ms = np.array(stats.latency) * 1000
    service_ms = np.array(stats.service) * 1000
    return PhaseResult(
        started_at=dt.datetime.fromtimestamp(stats.wall_start, dt.UTC).isoformat(
            timespec="milliseconds"),
        offered_votes_per_s=rate or None,
        duration_s=round(stats.elapsed_s, 2),
        votes_acknowledged=stats.acknowledged,
        votes_per_s=round(stats.acknowledged / stats.elapsed_s, 1),
        latency_p50_ms=round(float(np.percentile(latency_ms, 50)), 1),
        latency_p99_ms=round(float(np.percentile(latency_ms, 99)), 1),
        latency_max_ms=round(float(latency_ms.max()), 1),
        service_p99_ms=round(float(np.percentile(service_ms, 99)), 1),
        worst_seconds=worst_seconds(stats),
        status_counts=stats.status,
        retries_sent=stats.retries,
        retry_status_counts=stats.retry_status,
        cpu_ms_per_vote=cpu,
    )


class Vacuum:
    """Autovacuum's job on the tables votes churn, every ``every`` seconds, in one session.

    Every vote leaves dead task and lease row versions behind. A default PostgreSQL's
    autovacuum removes them and refreshes statistics in the background; this machine's server
    runs with autovacuum off, so the bench does it. One long-lived psql session (not one per
    round) so that its backend lives through the phases and its CPU counts against the votes.
    """

    def __init__(self, database_url: str, every: float) -> None:
        self.database_url, self.every = database_url, every
        self.process: asyncio.subprocess.Process | None = None
        self.loop_task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.every <= 0:
            return
        self.process = await asyncio.create_subprocess_exec(
            "psql", self.database_url, "-q", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        # Throttled like autovacuum (its default cost delay and limit), not one burst.
        self.process.stdin.write(b"SET vacuum_cost_delay = 2;\nSET vacuum_cost_limit = 200;\n")
        self.loop_task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.process.stdin.write(f"VACUUM (ANALYZE) {HOT_TABLES};\n".encode())
            await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.loop_task is not None:
            self.loop_task.cancel()
        if self.process is not None:
            self.process.stdin.write(b"\\q\n")
            self.process.stdin.close()
            await self.process.wait()


async def open_clients(port: int, seed: dict, auth: str, annotators: int) -> list[Client]:
    if auth == "token":
        return [Client.with_token("127.0.0.1", port, token)
                for token in seed["tokens"][:annotators]]
    # The page's way: its GET sets the CSRF cookie, its script echoes it in X-CSRFToken.
    clients = []
    for session in seed["sessions"][:annotators]:
        csrftoken = await asyncio.to_thread(csrf_from_page, port, seed["campaign"],
                                            session["sessionid"])
        clients.append(Client.with_session("127.0.0.1", port, session["sessionid"], csrftoken))
    return clients


async def run_phases(code: str, port: int, seed: dict, args: argparse.Namespace,
                     database_url: str, meter: CpuMeter
                     ) -> tuple[PhaseResult, PhaseResult, set[str]]:
    """Warm-up, then saturation and paced; also every client id the server acknowledged."""
    campaign = seed["campaign"]
    clients = await open_clients(port, seed, args.auth, args.annotators)
    tasks = [(await c.request(f"/api/v1/rate/{campaign}/next/", {}))[1] for c in clients]
    # Warm-up, not measured: a database in service holds leases and judgments and has planner
    # statistics for them (autovacuum's ANALYZE). Fresh empty tables would give every server
    # connection plans made for empty tables, kept until the next ANALYZE invalidates them.
    warmup, tasks = await drive(clients, campaign, tasks, args.warmup, 0.0, 0.0, seed=7)
    acknowledged = set(warmup.acknowledged_ids)
    psql(database_url, "ANALYZE")
    vacuum = Vacuum(database_url, args.vacuum_every)
    await vacuum.start()
    results = []
    try:
        for index, (name, rate) in enumerate([("saturation", 0.0), ("paced", args.rate)]):
            before = meter.read()
            stats, tasks = await drive(clients, campaign, tasks, args.duration, rate,
                                       args.retry_share, seed=1000 * index)
            after = meter.read()
            results.append(summarize(stats, CpuMeter.per_vote(before, after,
                                                              stats.acknowledged), rate))
            acknowledged |= stats.acknowledged_ids
            if args.timeline:
                write_timeline(args.timeline, code, name, stats)
            if any(task.get("done") for task in tasks):
                raise SystemExit(f"the campaign ran out of tasks during {name}: seed more "
                                 "prompts")
    finally:
        await vacuum.stop()
        for client in clients:
            await client.close()
    return results[0], results[1], acknowledged


# --- one tree of the code -------------------------------------------------------------------


def psql(database_url: str, sql: str) -> str:
    """Run SQL with psql; its unaligned output (one row a line, fields split by '|')."""
    return subprocess.run(["psql", database_url, "-qAtc", sql], check=True,
                          capture_output=True, text=True).stdout


def integrity_of(database_url: str, acknowledged: set[str]) -> Integrity:
    stored = psql(database_url, STORED_CLIENT_IDS_SQL).split()
    distinct = set(stored)
    mismatches, over_quota, twice = map(int, psql(database_url, INTEGRITY_SQL).split("|"))
    return Integrity(votes_acknowledged=len(acknowledged), judgments_in_db=len(stored),
                     lost=len(acknowledged - distinct), duplicated=len(stored) - len(distinct),
                     stored_unacknowledged=len(distinct - acknowledged),
                     counter_mismatches=mismatches, over_quota=over_quota,
                     pair_judged_twice=twice)


def seed_script_of(tree: Path) -> str:
    """The SEED_SCRIPT of that tree's bench/votes.py: each tree is seeded by its own code."""
    module = ast.parse((tree / "bench" / "votes.py").read_text())
    for node in module.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SEED_SCRIPT"):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{tree}/bench/votes.py has no SEED_SCRIPT")


@dataclass(frozen=True)
class Code:
    """One tree of the code to measure, and where its server and database live."""

    label: str
    tree: Path
    rev: str
    rating_path: str
    database_url: str
    port: int


def code_env(code: Code) -> dict[str, str]:
    """The environment of that tree's processes: same .venv, its own sources, database, files."""
    env = {key: value for key, value in os.environ.items()
           # The tree's own default rating path (before the change: the SQL functions).
           if key not in ("EVALHUB_RATING_SQL", "PYTHONPATH")}
    env.update({
        # Ahead of the .venv's editable install (which maps evalhub/ to this checkout).
        "PYTHONPATH": str(code.tree),
        "DATABASE_URL": code.database_url, "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
        "EVALHUB_VAR_DIR": f"/tmp/evalhub-votesbench-{code.label}",
        "DATABASE_CONN_MAX_AGE": "600",
        # As deployed (docs/deployment.md): one cache shared by the web processes, which the
        # rating throttle and the cached sessions read.
        "CACHE_URL": os.environ.get("EVALHUB_BENCH_CACHE_URL", "redis://127.0.0.1:6379/9"),
        "DJANGO_SETTINGS_MODULE": "evalhub.config.settings", "LOG_LEVEL": "WARNING",
        # Each simulated annotator votes faster than a person (1.5 votes/s at 150 offered):
        # the per-annotator rating throttle stays in the path, with a limit it never reaches.
        "EVALHUB_RATING_THROTTLE": "1000000/min"})
    return env


def check_sources(code: Code, env: dict[str, str]) -> None:
    """Fail unless that tree's processes import evalhub from that tree."""
    found = subprocess.run([PY, "-c", "import evalhub; print(evalhub.__file__)"],
                           cwd=code.tree, env=env, check=True, capture_output=True,
                           text=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(code.tree.resolve()):
        raise SystemExit(f"{code.label}: evalhub imports from {found}, not {code.tree}")


def bench_code(code: Code, args: argparse.Namespace) -> CodeResult:
    """Fresh database, seed, server, phases, integrity check: one tree's figures."""
    env = code_env(code)
    check_sources(code, env)
    fresh_database(code.database_url)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=code.tree, env=env, check=True)
    seeded = subprocess.run([PY, "-c", seed_script_of(code.tree), str(args.annotators),
                             str(args.prompts), str(args.seeds), str(args.runs)],
                            cwd=code.tree, env=env, capture_output=True, text=True)
    if seeded.returncode:
        raise SystemExit(f"{code.label}: seeding failed:\n{seeded.stderr[-3000:]}")
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    # A database in service has planner statistics; a freshly bulk-loaded one does not yet.
    psql(code.database_url, "ANALYZE")
    print(f"[{code.label} {code.rev}] seeded campaign {seed['campaign']}: {seed['tasks']} "
          f"tasks, {args.annotators} annotators", flush=True)
    web = subprocess.Popen(
        [PY, "-m", "gunicorn", "-c", "evalhub/config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{code.port}",
         "--workers", str(args.web_workers), "--threads", str(args.threads),
         "--worker-class", args.worker_class, "--log-level", "warning"], cwd=code.tree, env=env)
    try:
        wait_for_port(code.port)
        time.sleep(1.0)
        saturation, paced, acknowledged = asyncio.run(run_phases(
            code.label, code.port, seed, args, code.database_url,
            CpuMeter(web.pid, code.database_url.rsplit("/", 1)[1])))
    finally:
        web.terminate()
        web.wait(30)
    result = CodeResult(label=code.label, rev=code.rev, rating_path=code.rating_path,
                        tasks=seed["tasks"], saturation=saturation, paced=paced,
                        integrity=integrity_of(code.database_url, acknowledged))
    print_code(result)
    return result


def wait_for_port(port: int, timeout: float = 60) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not start")


def git(*arguments: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *arguments], check=True,
                          capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[tuple[Path, str]]:
    """A detached checkout of ``rev`` in a temporary folder, removed afterwards (also on error).

    Yields its path and short commit id.
    """
    scratch = Path(tempfile.mkdtemp(prefix="evalhub-votes-"))
    tree = scratch / "tree"
    try:
        git("worktree", "add", "--detach", str(tree), rev)
        yield tree, git("-C", str(tree), "rev-parse", "--short", "HEAD")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False,
                       capture_output=True)


def current_rev() -> str:
    """HEAD, marked when the working tree holds uncommitted changes (they are measured too)."""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else "")


# --- output -------------------------------------------------------------------------------


def print_code(result: CodeResult) -> None:
    for name in ("saturation", "paced"):
        phase: PhaseResult = getattr(result, name)
        cpu = phase.cpu_ms_per_vote
        print(f"[{result.label} {result.rev}] {name}: {phase.votes_per_s} votes/s (offered "
              f"{phase.offered_votes_per_s or 'as fast as possible'}), p50 "
              f"{phase.latency_p50_ms} ms, p99 {phase.latency_p99_ms} ms, CPU ms/vote web "
              f"{cpu.web} + PostgreSQL {cpu.postgres} = {cpu.web_and_postgres} (load "
              f"generator {cpu.load_generator}), statuses {phase.status_counts}", flush=True)
    check = result.integrity
    print(f"[{result.label} {result.rev}] acknowledged {check.votes_acknowledged}, in the "
          f"database {check.judgments_in_db}: lost {check.lost}, duplicated "
          f"{check.duplicated}, stored unacknowledged {check.stored_unacknowledged}, counter "
          f"mismatches {check.counter_mismatches}, over quota {check.over_quota}, pair judged "
          f"twice {check.pair_judged_twice}", flush=True)


def print_side_by_side(before: CodeResult, current: CodeResult, ratio: Ratios) -> None:
    """One row per figure: before, current, current / before."""
    print(f"{'':36} {'before ' + before.rev:>16} {'current ' + current.rev:>26}  ratio")
    for name in ("saturation", "paced"):
        then, now = getattr(before, name), getattr(current, name)
        ratios_of = getattr(ratio, name)
        rows = [("votes/s", then.votes_per_s, now.votes_per_s, ratios_of.votes_per_s),
                ("p50 ms", then.latency_p50_ms, now.latency_p50_ms, None),
                ("p99 ms", then.latency_p99_ms, now.latency_p99_ms, ratios_of.latency_p99_ms)]
        for part in ("web", "postgres", "web_and_postgres"):
            rows.append((f"CPU ms/vote {part}", getattr(then.cpu_ms_per_vote, part),
                         getattr(now.cpu_ms_per_vote, part), getattr(ratios_of, f"cpu_{part}")))
        for label, a, b, r in rows:
            print(f"{name + ' ' + label:36} {a:>16} {b:>26}  {'' if r is None else r}")


def platform_cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of votes before the measured phases (then ANALYZE)")
    parser.add_argument("--vacuum-every", type=float, default=10.0,
                        help="seconds between VACUUM (ANALYZE) of the hot tables (0: never)")
    parser.add_argument("--rate", type=float, default=150.0,
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
    parser.add_argument("--auth", choices=["token", "session"], default="token",
                        help="annotators as API clients (API token) or as the rating page "
                             "(session cookie + CSRF token)")
    parser.add_argument("--compare-with", default=BEFORE_ONE_PATH, metavar="REV",
                        help="also measure this commit, first, in a temporary git worktree "
                             "('none': only the current tree)")
    parser.add_argument("--current", metavar="REV",
                        help="measure this commit (in a temporary git worktree) as the current "
                             "code instead of the working tree, e.g. while others edit it")
    parser.add_argument("--port", type=int, default=8765,
                        help="the current tree's server; the compared one uses the next port")
    parser.add_argument("--timeline", type=Path,
                        help="append one CSV row per vote (code, phase, due time, latency)")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/evalhub_votesbench",
                        help="the current tree's scratch database (dropped and created); the "
                             "compared tree's is the same name + _before")
    args = parser.parse_args()
    compare = args.compare_with not in ("", "none")
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}", flush=True)

    before: CodeResult | None = None
    if compare:
        with worktree(args.compare_with) as (tree, rev):
            # Before d40d18a the SQL functions served votes unless EVALHUB_RATING_SQL=0.
            before = bench_code(Code("before", tree, rev, "sql", args.database_url + "_before",
                                     args.port + 1), args)
    if args.current:
        with worktree(args.current) as (tree, rev):
            now = bench_code(Code("current", tree, rev, "orm", args.database_url, args.port),
                             args)
    else:
        now = bench_code(Code("current", REPO, current_rev(), "orm", args.database_url,
                              args.port), args)

    targets = targets_of(now, args.rate)
    ratio = Ratios.of(now, before) if before else None
    if before:
        print_side_by_side(before, now, ratio)
    print("targets (current code): " + ", ".join(
        f"{name} {'met' if met else 'MISSED'}" for name, met in asdict(targets).items()))
    print(json.dumps({
        "benchmark": "votes",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform_cpu(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "annotators": args.annotators,
        "web_workers": args.web_workers,
        "threads": args.threads,
        "worker_class": args.worker_class,
        "auth": args.auth,
        "duration_s": args.duration,
        "offered_votes_per_s": args.rate,
        "before": asdict(before) if before else None,
        "current": asdict(now),
        "ratios_current_over_before": asdict(ratio) if ratio else None,
        "targets": asdict(targets),
    }))


if __name__ == "__main__":
    main()
