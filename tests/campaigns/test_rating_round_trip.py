"""On PostgreSQL the annotator's hot loop costs one database round trip per vote."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from evalhub.campaigns.raters import Rater
from evalhub.campaigns.rating import Vote, rate_next, rate_vote
from tests.campaigns.builders import build_campaign

pytestmark = pytest.mark.django_db


def _vote_and_next(world, rater, lease_id):
    return rate_vote(rater=rater, campaign_id=world.campaign.pk,
                     vote=Vote(uuid.uuid4(), lease_id, {"overall": "tie"}),
                     want_next=True, exclude={lease_id})


def test_token_check_vote_and_next_lease_are_one_sql_function_call(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the SQL rating path exists on PostgreSQL only")
    settings.EVALHUB_RATING_SQL = True
    world = build_campaign(prompts=4)
    # An API token: checking it is part of the same call.
    rater = Rater(token=Token.objects.create(user=world.annotators[0]).key)
    # The first vote fills the per-process caches (remaining count, leaderboard claim).
    task = rate_next(rater=rater, campaign_id=world.campaign.pk)
    task = _vote_and_next(world, rater, uuid.UUID(task["lease"])).next
    with CaptureQueriesContext(connection) as queries:
        outcome = _vote_and_next(world, rater, uuid.UUID(task["lease"]))
    assert outcome.result.created and outcome.next["lease"]
    # Inside the test's transaction the call is wrapped in a savepoint; nothing else runs.
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(statements) == 1, statements
    assert statements[0].startswith("SELECT evalhub_rate_vote_v1(")


def test_the_rating_functions_never_jit_compile():
    # The candidate query reads a few rows but is costed as a walk of the whole serving index,
    # past jit_above_cost: compiled on every call it cost 20-30 ms instead of well under 1 ms.
    if connection.vendor != "postgresql":
        pytest.skip("the SQL rating path exists on PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, proconfig FROM pg_proc WHERE proname IN "
                       "('evalhub_rate_vote_v1', 'evalhub_rate_next_v1')")
        settings_by_function = dict(cursor.fetchall())
    assert settings_by_function == {"evalhub_rate_vote_v1": ["jit=off"],
                                    "evalhub_rate_next_v1": ["jit=off"]}
