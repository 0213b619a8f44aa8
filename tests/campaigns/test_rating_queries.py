"""A vote that also leases the next pair costs at most eight SQL queries on PostgreSQL,
authentication and membership included, whatever the number of votes before it."""

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from tests.builders import build_campaign

# Outside a test transaction, as in production: no savepoints around the service's
# transactions.
pytestmark = pytest.mark.django_db(transaction=True)

MAX_QUERIES_PER_VOTE_AND_NEXT = 8


@pytest.fixture(autouse=True)
def _caches_outlive_the_test(monkeypatch, settings):
    """The per-process caches (the campaign's remaining judgments, every 5 s; the leaderboard
    refresh claim) cost one query when they are refreshed, not per vote: on a slow machine a
    refresh must not fall inside the measured votes. Nor may the walk's random start."""
    from evalhub.campaigns.serving import leasing, rating

    monkeypatch.setattr(rating, "REMAINING_CACHE_SECONDS", 3600)
    settings.EVALHUB_LEADERBOARD_REFRESH_SECONDS = 7200
    # The walk starts the best tier at a random key; when no free task lies past it, a second
    # read takes the whole serving order (one more query, chance about 1 / free tasks in the
    # tier). Starting at key 0 measures the common path every time.
    monkeypatch.setattr(leasing.random, "random", lambda: 0.0)


def _vote_and_next(client: Client, campaign_id: int, lease: str, **headers) -> dict:
    response = client.post(
        f"/api/v1/rate/{campaign_id}/votes/",
        {"client_id": str(uuid.uuid4()), "lease": lease, "answers": {"overall": "tie"},
         "latency_ms": 900, "next": {"exclude": [lease]}},
        content_type="application/json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """The SQL queries sent, without transaction control (BEGIN, COMMIT, savepoints)."""
    return [q["sql"] for q in queries.captured_queries
            if not q["sql"].startswith(TRANSACTION_CONTROL)]


def _transactions(queries: CaptureQueriesContext) -> int:
    return sum(q["sql"] == "BEGIN" for q in queries.captured_queries)


def test_a_session_vote_that_leases_the_next_pair_costs_at_most_eight_queries():
    world = build_campaign(prompts=12, runs=3, judgments_per_pair=2)
    campaign_id = world.campaign.pk
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.annotators[0])
    client.get(f"/rate/{campaign_id}/")  # the rating page sets the CSRF cookie
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    lease = client.post(f"/api/v1/rate/{campaign_id}/next/", {"exclude": []},
                        content_type="application/json", **csrf).json()["lease"]
    counts = []
    for _ in range(6):
        # Each vote here runs with the per-process caches warm except the first.
        with CaptureQueriesContext(connection) as queries:
            answer = _vote_and_next(client, campaign_id, lease, **csrf)
        counts.append(len(_statements(queries)))
        lease = answer["next"]["lease"]
    assert max(counts[1:]) <= MAX_QUERIES_PER_VOTE_AND_NEXT, (counts, _statements(queries))
    # The cost is the same for the sixth vote as for the second: no query per earlier vote.
    assert counts[-1] == counts[1]
    # The vote commits on its own, then the next lease: a lease race never undoes a vote.
    assert _transactions(queries) == 2


def test_an_api_token_vote_that_leases_the_next_pair_costs_at_most_eight_queries():
    world = build_campaign(prompts=8)
    campaign_id = world.campaign.pk
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=world.annotators[0]).key}"}
    client = Client()
    lease = client.post(f"/api/v1/rate/{campaign_id}/next/", {},
                        content_type="application/json", **auth).json()["lease"]
    lease = _vote_and_next(client, campaign_id, lease, **auth)["next"]["lease"]
    with CaptureQueriesContext(connection) as queries:
        answer = _vote_and_next(client, campaign_id, lease, **auth)
    assert answer["next"]["lease"]
    assert len(_statements(queries)) <= MAX_QUERIES_PER_VOTE_AND_NEXT, _statements(queries)


def test_database_sessions_never_jit_compile_queries():
    if connection.vendor != "postgresql":
        pytest.skip("JIT is a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_prepared_statements_keep_one_generic_plan_through_vacuum_and_analyze():
    """PostgreSQL plans a prepared statement for its values on its first five runs and after
    every invalidation (a VACUUM or ANALYZE of a table it reads) unless the session asks for
    generic plans: then each statement of the rating path is planned once per connection."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements' plans are PostgreSQL's")
    world = build_campaign(prompts=12, runs=3, judgments_per_pair=2)
    client = Client()
    client.force_login(world.annotators[0])
    campaign_id = world.campaign.pk
    lease = client.post(f"/api/v1/rate/{campaign_id}/next/", {},
                        content_type="application/json").json()["lease"]
    for round_ in range(2):
        for _ in range(3):
            lease = _vote_and_next(client, campaign_id, lease)["next"]["lease"]
        with connection.cursor() as cursor:
            if round_ == 0:
                cursor.execute("VACUUM ANALYZE campaigns_comparisontask, campaigns_lease")
            cursor.execute("SELECT sum(generic_plans), sum(custom_plans) "
                           "FROM pg_prepared_statements")
            generic, custom = cursor.fetchone()
        assert generic > 0
        assert custom == 0


def test_a_best_of_k_vote_that_leases_the_next_task_costs_one_query_more_for_its_images():
    """Best of K: the same path, plus one read of the next task's K images (TaskImage)."""
    from evalhub.campaigns.models import TaskKind

    world = build_campaign(prompts=12, runs=4, judgments_per_pair=2,
                           task_kind=TaskKind.BEST_OF_K, k=4)
    campaign_id = world.campaign.pk
    client = Client()
    client.force_login(world.annotators[0])
    lease = client.post(f"/api/v1/rate/{campaign_id}/next/", {"exclude": []},
                        content_type="application/json").json()["lease"]
    counts = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                f"/api/v1/rate/{campaign_id}/votes/",
                {"client_id": str(uuid.uuid4()), "lease": lease,
                 "rankings": {"overall": [0]}, "latency_ms": 900,
                 "next": {"exclude": [lease]}}, content_type="application/json")
        assert response.status_code == 201, response.content
        counts.append(len(_statements(queries)))
        lease = response.json()["next"]["lease"]
    assert max(counts[1:]) <= MAX_QUERIES_PER_VOTE_AND_NEXT + 1, (counts, _statements(queries))
    assert counts[-1] == counts[1]


def _generic_plan(queryset) -> str:
    """EXPLAIN of ``queryset`` prepared with its values as parameters and planned once for
    every value (a generic plan, as PostgreSQL reuses for the rating path's prepared
    statements), sequential and bitmap scans ruled out so the index the plan may use shows."""
    sql, params = queryset.query.sql_with_params()
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    from psycopg.sql import Literal

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"PREPARE rater_votes_plan AS {numbered}")
        try:
            literals = ", ".join(Literal(p).as_string(connection.connection) for p in params)
            cursor.execute(f"EXPLAIN EXECUTE rater_votes_plan({literals})")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE rater_votes_plan")


def test_the_raters_vote_count_reads_only_the_raters_entries_even_in_a_generic_plan():
    from django.db import transaction

    from evalhub.campaigns.serving.leasing import counted, rater_votes

    world = build_campaign(prompts=2, runs=2)
    votes = counted(rater_votes(campaign=world.campaign.pk,
                                annotator_id=world.annotators[0].pk), "annotator_id")
    with transaction.atomic():
        plan = _generic_plan(votes)
    # The campaign's judgments of every rater (judgment_stats_idx) or the rater's judgments of
    # every campaign would grow with votes that are not this rater's here; and the index alone
    # answers the count: no heap page per vote.
    assert "Index Only Scan using judgment_rater_idx" in plan, plan
    assert "Filter" not in plan, plan


def test_psycopg_remembers_the_conversion_of_every_statement_of_a_vote():
    """psycopg converts a statement's placeholders on every execute unless the statement is
    short enough for its cache; the lease lock and the serving walk are longer than its
    default limit (evalhub/core/prepared.py raises it)."""
    if connection.vendor != "postgresql":
        pytest.skip("psycopg's statement cache")
    from psycopg import _queries

    world = build_campaign(prompts=8)
    client = Client()
    client.force_login(world.annotators[0])
    campaign_id = world.campaign.pk
    lease = client.post(f"/api/v1/rate/{campaign_id}/next/", {},
                        content_type="application/json").json()["lease"]
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)  # as psycopg gets it, with its placeholders
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        _vote_and_next(client, campaign_id, lease)
    longest = max(len(sql.encode()) for sql in sent)
    assert longest > 4096  # psycopg's own limit: the case this is about
    assert longest <= _queries.MAX_CACHED_STATEMENT_LENGTH
