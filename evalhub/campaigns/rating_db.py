"""The annotator's hot loop in one PostgreSQL round trip.

``evalhub_rate_vote_v1`` and ``evalhub_rate_next_v1`` (evalhub/campaigns/sql/rating_v1.sql,
installed by migration 0004) check the rater, store the vote and lease the next task inside
the database, by the rules of raters.py, voting.py and leasing.py. Python still draws the
random choices (gold coin, starting point, lease id, side of image A), checks the input and
words every refusal, so both paths answer alike.

A unique violation means a race the function's pre-checks could not see (one task judged
twice under two leases at once): the call's transaction rolls back whole and the caller
settles that vote on the ORM path, which answers it exactly.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from evalhub.campaigns.leasing import (
    HOLDING_MAX,
    MAX_ACTIVE_LEASES,
    NOTHING_LEFT,
    LeaseNotYours,
    check_open_for_rating,
    new_a_side,
)
from evalhub.campaigns.models import Campaign
from evalhub.campaigns.payloads import lease_payload_from_row
from evalhub.campaigns.raters import BAD_TOKEN, BadCredentials, NoSuchCampaign, Rater
from evalhub.campaigns.voting import (
    FOREIGN_VOTE_ID,
    LEASE_TAKEN,
    closed_lease_refusal,
    validate_answers,
)
from evalhub.core.errors import EvalHubError

NOTHING_TO_RATE = {"holding_max": HOLDING_MAX, "nothing_left": NOTHING_LEFT}
RATER_CASTS = ["text", "integer"]
LEASE_CASTS = ["uuid[]", "float8", "float8", "uuid", "text", "integer"]


def sql_path_enabled() -> bool:
    """PostgreSQL (where migration 0004 installed the functions), unless settings say no."""
    return connection.vendor == "postgresql" and settings.EVALHUB_RATING_SQL


@dataclass(frozen=True)
class DbAnswer:
    rater_id: int
    campaign: Campaign  # only the fields the function returns; others load on access
    body: dict[str, Any]


def _call(function: str, args: list[Any], casts: list[str]) -> dict[str, Any]:
    placeholders = ", ".join(f"%s::{cast}" for cast in casts)
    sql = f"SELECT {function}({placeholders})"
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # A savepoint keeps the caller's transaction usable if the function raises.
            with transaction.atomic():
                cursor.execute(sql, args)
                (value,) = cursor.fetchone()
        else:
            # Autocommit: the function's statement is its own transaction, one round trip.
            cursor.execute(sql, args)
            (value,) = cursor.fetchone()
    return json.loads(value) if isinstance(value, str) else value


def _campaign(row: dict[str, Any]) -> Campaign:
    names = [f.attname for f in Campaign._meta.concrete_fields if f.attname in row]
    return Campaign.from_db(connection.alias, names, [row[name] for name in names])


# Arguments travel as text and the SQL casts them: the driver quotes a string far faster than
# it adapts UUID objects and arrays, and this is every vote's path.
def _rater_args(rater: Rater) -> list[Any]:
    return [rater.token, rater.user.pk if rater.user is not None else rater.user_id]


def _uuid_array(values: set[uuid.UUID] | None) -> str:
    return "{" + ",".join(sorted(str(value) for value in values or ())) + "}"


def _lease_draws(exclude: set[uuid.UUID] | None) -> list[Any]:
    # exclude, gold coin, starting point, new lease id, side of image A, leases per annotator
    return [_uuid_array(exclude), random.random(), random.random(), str(uuid.uuid4()),
            new_a_side(), MAX_ACTIVE_LEASES]


def _answered(answer: dict[str, Any]) -> DbAnswer:
    code = answer["code"]
    if code == "bad_token":
        raise BadCredentials(BAD_TOKEN)
    if code == "no_campaign":
        raise NoSuchCampaign("No such campaign.")
    return DbAnswer(answer.get("rater"), _campaign(answer["campaign"]), answer)


def next_payload(campaign: Campaign, answer: dict[str, Any]) -> dict[str, Any]:
    """The task payload, or ``{"done": True, "detail": ...}`` in the ORM path's words."""
    if not answer.get("done"):
        return lease_payload_from_row(answer)
    if answer["code"] == "closed":
        try:
            check_open_for_rating(campaign)
        except EvalHubError as exc:
            return {"detail": exc.message, "done": True}
    return {"detail": NOTHING_TO_RATE[answer["code"]], "done": True}


def db_rate_next(*, rater: Rater, campaign_id: int, exclude: set[uuid.UUID] | None
                 ) -> DbAnswer:
    """Check the rater and lease the next task; ``body["next"]`` is the function's answer."""
    return _answered(_call("evalhub_rate_next_v1",
                           [*_rater_args(rater), campaign_id, *_lease_draws(exclude)],
                           [*RATER_CASTS, "bigint", *LEASE_CASTS]))


def db_rate_vote(*, rater: Rater, campaign_id: int, lease_id: uuid.UUID,
                 client_id: uuid.UUID, answers: dict[str, str], latency_ms: int | None,
                 want_next: bool, exclude: set[uuid.UUID] | None) -> DbAnswer:
    """Check the rater, store the vote, count their votes and lease the next task if asked.

    ``body`` holds ``created``, ``judgments``, ``my_votes`` and ``next``. Raises the ORM
    path's errors for refusals, and IntegrityError for a race the caller must settle.
    """
    answer = _answered(_call("evalhub_rate_vote_v1", [
        *_rater_args(rater), campaign_id, str(lease_id), str(client_id), json.dumps(answers),
        latency_ms, want_next, *_lease_draws(exclude)], [
        *RATER_CASTS, "bigint", "uuid", "uuid", "jsonb", "integer", "boolean", *LEASE_CASTS]))
    code = answer.body["code"]
    if code == "ok":
        return answer
    if code == "not_leased":
        raise LeaseNotYours("This task is not leased to you.")
    if code == "foreign_vote_id":
        raise EvalHubError(FOREIGN_VOTE_ID)
    if code == "invalid_answers":
        validate_answers(answer.campaign, answers)  # raises, naming what is missing or unknown
    if code == "lease_taken":
        raise EvalHubError(LEASE_TAKEN)
    if code == "lease_closed":
        raise closed_lease_refusal(answer.body["status"])
    raise EvalHubError(f"The vote was refused ({code}).")
