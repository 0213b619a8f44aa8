"""CPU per vote in one process: the rating path's Python and its PostgreSQL backend, no server.

``bench/votes.py`` measures the deployed server (gunicorn, many annotators, a load generator on
the same machine); this measures what one vote costs to compute, with nothing else in the way,
and can profile it. Votes go through Django's WSGI application (every middleware, DRF,
authentication, throttling and the rating services) one after another, each asking for the
next pair as the page does; the annotators take turns.

- web: this process's CPU time (``time.process_time``) over the measured votes, per vote;
- PostgreSQL: the CPU time of the one backend serving this process (``/proc``), per vote;
- gc: the part of web spent in Python's garbage collector (startup objects frozen first, as
  the gunicorn config does).

The database (``--database-url``, dropped and created) is seeded by ``bench/votes.py``'s
``SEED_SCRIPT``; the settings are the bench server's (a shared Redis cache for the throttle and
the cached sessions, persistent connections, a throttle it never reaches).

Side by side: ``--trees A B ...`` measures the evalhub of each checkout (a git worktree of an
older commit, say) in turn, ``--rounds`` times, each round a fresh process on the same seeded
database, and prints each tree's median: the same machine load for all of them.

    python bench/votes_inprocess.py --database-url postgres://postgres@127.0.0.1:5432/scratch
    python bench/votes_inprocess.py ... --profile /tmp/vote.prof   # cProfile of the votes
    python bench/votes_inprocess.py ... --statements   # PostgreSQL CPU per kind of statement

``--statements``: the backend's CPU time (``/proc/<pid>/schedstat``, nanoseconds) around each
statement the ORM sends (Django's ``execute_wrapper``), summed per kind (the verb and the
outermost table) and divided by the votes; "other" is the rest of the backend's CPU (BEGIN and
COMMIT, which psycopg sends outside the wrapper, and the protocol between statements). Reading
``/proc`` costs web CPU, so a round with ``--statements`` says nothing about the web figure.

Prints human-readable lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path, where bench/generators.py would
# stand for the generators package: bench/votes.py is loaded by its path instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
_spec = importlib.util.spec_from_file_location("bench_votes", REPO / "bench" / "votes.py")
votes = sys.modules["bench_votes"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(votes)
psql, seed_script_of, server_url = (
    votes.psql, votes.seed_script_of, votes.server_url)


def settings_env(database_url: str, cache_url: str) -> dict[str, str]:
    """bench/votes.py's server settings (code_env), for this process."""
    return {"DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1", "DATABASE_CONN_MAX_AGE": "600",
            "CACHE_URL": cache_url, "DJANGO_SETTINGS_MODULE": "evalhub.config.settings",
            "LOG_LEVEL": "WARNING", "EVALHUB_RATING_THROTTLE": "1000000/min"}


def seed(tree: Path, env: dict[str, str], database_url: str, annotators: int) -> dict:
    name = database_url.rsplit("/", 1)[1]
    psql(server_url(database_url), f"DROP DATABASE IF EXISTS {name}")
    psql(server_url(database_url), f"CREATE DATABASE {name}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=tree, env=env,
                   check=True)
    seeded = subprocess.run([sys.executable, "-c", seed_script_of(tree), str(annotators),
                             "1000", "4", "4"], cwd=tree, env=env, check=True,
                            capture_output=True, text=True)
    psql(database_url, "ANALYZE")
    return json.loads(seeded.stdout.strip().splitlines()[-1])


class Annotator:
    """One annotator's credentials and current pair, calling the WSGI application directly."""

    def __init__(self, app, campaign: int, headers: dict[str, str]) -> None:
        self.app, self.campaign, self.headers, self.lease = app, campaign, headers, None

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        payload = json.dumps(body).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
                   "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(payload), "wsgi.errors": sys.stderr,
                   "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(payload)),
                   "REMOTE_ADDR": "127.0.0.1", **self.headers}
        status = []
        chunks = self.app(environ, lambda s, h, exc_info=None: status.append(s))
        data = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return int(status[0].split()[0]), json.loads(data or b"{}")

    def vote(self) -> None:
        if self.lease is None:
            code, task = self.post(f"/api/v1/rate/{self.campaign}/next/", {})
            assert code == 201, (code, task)
            self.lease = task["lease"]
        code, body = self.post(f"/api/v1/rate/{self.campaign}/votes/", {
            "client_id": str(uuid.uuid4()), "lease": self.lease,
            "answers": {"overall": "left"}, "latency_ms": 1200,
            "next": {"exclude": [self.lease]}})
        assert code == 201, (code, body)
        self.lease = body["next"]["lease"]


def csrf_token(app, campaign: int, sessionid: str) -> str:
    """The CSRF cookie the rating page sets, as a browser gets it."""
    from http.cookies import SimpleCookie

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/rate/{campaign}/", "QUERY_STRING": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
               "HTTP_COOKIE": f"sessionid={sessionid}", "REMOTE_ADDR": "127.0.0.1"}
    headers = []
    chunks = app(environ, lambda s, h, exc_info=None: headers.extend(h))
    b"".join(chunks)
    cookies = SimpleCookie()
    for name, value in headers:
        if name.lower() == "set-cookie":
            cookies.load(value)
    return cookies["csrftoken"].value


def signed_in_again(sessionid: str) -> str:
    """A new session of the seeded session's user, naming the backend this tree's sign-in
    names (the first listed that reads users, as Django's test client picks it): trees
    measured in turn need not accept each other's sessions."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, load_backend

    store = import_module(settings.SESSION_ENGINE).SessionStore
    data = store(sessionid).load()
    backend = next(path for path in settings.AUTHENTICATION_BACKENDS
                   if hasattr(load_backend(path), "get_user"))
    session = store()
    session.update({**data, BACKEND_SESSION_KEY: backend})
    session.create()
    return session.session_key


def backend_ns(pid: int) -> int:
    """Nanoseconds the process has run on a CPU (the first field of ``schedstat``)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


_OUTERMOST = re.compile(r'^(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b')


def statement_kind(sql: str) -> str:
    """"SELECT campaigns_lease", "UPDATE campaigns_comparisontask", ...: the verb and the
    table the statement reads or writes at its outermost level (subqueries skipped)."""
    verb = _OUTERMOST.match(sql)
    if verb is None:
        return sql.split(None, 1)[0] if sql.strip() else "?"
    if verb[1] != "SELECT":
        return f"{verb[1].split()[0]} {sql[verb.end():].split()[0].strip(chr(34))}"
    depth = 0
    for match in re.finditer(r'[()]|\bFROM\s+"(\w+)"', sql):
        if match[0] == "(":
            depth += 1
        elif match[0] == ")":
            depth -= 1
        elif depth == 0:
            return f"SELECT {match[1]}"
    return "SELECT"


class StatementCpu:
    """Django ``execute_wrapper``: the backend's CPU per statement kind."""

    def __init__(self, backend: int) -> None:
        self.backend, self.ns, self.calls = backend, {}, {}

    def __call__(self, execute, sql, params, many, context):
        before = backend_ns(self.backend)
        try:
            return execute(sql, params, many, context)
        finally:
            kind = statement_kind(sql)
            self.ns[kind] = self.ns.get(kind, 0) + backend_ns(self.backend) - before
            self.calls[kind] = self.calls.get(kind, 0) + 1


def measure(seeded: dict, auth: str, votes: int, warmup: int, annotators: int,
            profile: Path | None, statements: bool = False) -> dict:
    """In this process (with the tree's evalhub on sys.path): the figures of ``votes`` votes."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    app = get_wsgi_application()
    campaign = seeded["campaign"]
    people = []
    for index in range(annotators):
        if auth == "token":
            headers = {"HTTP_AUTHORIZATION": f"Token {seeded['tokens'][index]}"}
        else:
            sessionid = signed_in_again(seeded["sessions"][index]["sessionid"])
            csrf = csrf_token(app, campaign, sessionid)
            headers = {"HTTP_COOKIE": f"sessionid={sessionid}; csrftoken={csrf}",
                       "HTTP_X_CSRFTOKEN": csrf}
        people.append(Annotator(app, campaign, headers))
    for index in range(warmup):
        people[index % annotators].vote()
    # As the gunicorn config does before forking its workers: startup objects out of the GC's
    # way. The collections during the measured votes are timed (CPU) on their own.
    gc.freeze()
    collecting = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collecting.append(-time.process_time())
        elif collecting:
            collecting[-1] += time.process_time()

    gc.callbacks.append(on_gc)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waits
    by_statement = StatementCpu(backend) if statements else None
    pg_before = backend_ns(backend)
    web_before, wall_before = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    if by_statement:
        with connection.execute_wrapper(by_statement):
            for index in range(votes):
                people[index % annotators].vote()
    else:
        for index in range(votes):
            people[index % annotators].vote()
    if profiler:
        profiler.disable()
    web, wall = time.process_time() - web_before, time.perf_counter() - wall_before
    pg = (backend_ns(backend) - pg_before) / 1e9
    gc.callbacks.remove(on_gc)
    if profiler:
        profiler.dump_stats(profile)
    import evalhub

    figures = {"evalhub": evalhub.__file__, "web_ms": 1000 * web / votes,
               "postgres_ms": 1000 * pg / votes, "total_ms": 1000 * (web + pg) / votes,
               "wall_ms": 1000 * wall / votes, "gc_ms": 1000 * sum(collecting) / votes}
    if by_statement:
        per_vote = {kind: round(ns / 1e6 / votes, 3) for kind, ns in sorted(
            by_statement.ns.items(), key=lambda item: -item[1])}
        per_vote["other"] = round(1000 * pg / votes - sum(per_vote.values()), 3)
        figures["postgres_ms_by_statement"] = per_vote
        figures["statements_per_vote"] = {kind: round(n / votes, 2)
                                          for kind, n in by_statement.calls.items()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="a scratch database (dropped and created)")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--auth", choices=["token", "session"], default="token")
    parser.add_argument("--votes", type=int, default=2000, help="measured votes per round")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", type=Path, nargs="+", default=[REPO],
                        help="checkouts to measure in turn (default: this one)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the votes here")
    parser.add_argument("--statements", action="store_true",
                        help="PostgreSQL CPU per kind of statement (the web figure is then "
                             "not valid)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a round, in its own process
    args = parser.parse_args()
    env = {**os.environ, **settings_env(args.database_url, args.cache_url)}
    if args.measure:
        os.environ.update(env)
        # The tree measured is this round's working directory: bench/votes.py put this
        # script's checkout first on sys.path, which must not stand for it.
        assert "evalhub" not in sys.modules
        sys.path.insert(0, os.getcwd())
        print(json.dumps(measure(json.loads(Path(args.measure).read_text()), args.auth,
                                 args.votes, args.warmup, args.annotators, args.profile,
                                 args.statements)))
        return
    seeded = seed(args.trees[0], env, args.database_url, args.annotators)
    seed_file = Path(f"/tmp/votes-inprocess-{os.getpid()}.json")
    seed_file.write_text(json.dumps(seeded))
    figures: dict[str, list[dict]] = {str(tree): [] for tree in args.trees}
    try:
        for round_ in range(args.rounds):
            for tree in args.trees:
                command = [sys.executable, str(Path(__file__).resolve()), "--measure",
                           str(seed_file), "--database-url", args.database_url,
                           "--cache-url", args.cache_url, "--auth", args.auth,
                           "--votes", str(args.votes), "--warmup", str(args.warmup),
                           "--annotators", str(args.annotators)]
                if args.profile:
                    command += ["--profile", f"{args.profile}.{tree.name}.{round_}"]
                if args.statements:
                    command += ["--statements"]
                out = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                                     env={**env, "PYTHONPATH": str(tree)})
                if out.returncode:
                    raise SystemExit(f"{tree}: the round failed:\n{out.stderr[-3000:]}")
                row = json.loads(out.stdout.strip().splitlines()[-1])
                figures[str(tree)].append(row)
                if not row["evalhub"].startswith(str(tree.resolve())):
                    raise SystemExit(f"{tree}: evalhub imported from {row['evalhub']}")
                print(f"round {round_} {tree}: web {row['web_ms']:.2f} ms, PostgreSQL "
                      f"{row['postgres_ms']:.2f} ms, total {row['total_ms']:.2f} ms per vote",
                      flush=True)
                if "postgres_ms_by_statement" in row:
                    print(f"  PostgreSQL ms per vote by statement: "
                          f"{row['postgres_ms_by_statement']}\n  statements per vote: "
                          f"{row['statements_per_vote']}", flush=True)
    finally:
        seed_file.unlink()
    medians = {tree: {key: round(statistics.median(r[key] for r in rows), 2)
                      for key in rows[0] if key.endswith("_ms")}
               for tree, rows in figures.items()}
    for tree, median in medians.items():
        print(f"median {tree}: {median}")
    print(json.dumps({"benchmark": "votes_inprocess", "auth": args.auth, "votes": args.votes,
                      "load_average": os.getloadavg(), "medians_ms_per_vote": medians}))


if __name__ == "__main__":
    main()
