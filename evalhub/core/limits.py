"""Limits on text and numbers that EvalHub accepts from users, shared by the API, pages and CLI.

Database text columns (``TextField``) have no length of their own; what a user may write into
one is limited here instead, so that a description, instructions or a note cannot grow without
bound. The limit equals the documented prompt limit (``prompts.parsers.MAX_PROMPT_CHARS``):
one number for every free text. ``CharField`` columns keep their own ``max_length``, which the
API's model serializers take from the model.

NUL characters are refused in every API text field by DRF's ``CharField`` itself
(``ProhibitNullCharactersValidator``, 400 "Null characters are not allowed."): PostgreSQL
cannot store them in text and SQLite would store them silently.
"""

from __future__ import annotations

MAX_TEXT_CHARS = 10_000

# A signed 64-bit integer: what every id column (``BigAutoField``, and the integer of SQLite)
# and ``BigIntegerField`` hold. A number past it reaches the database driver as an error (a
# 500), so inputs that name an id or a count are checked against it first.
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1

# The most runs one campaign may compare (the API's ``runs`` list). Far above any sensible
# campaign: a pair campaign gets n(n-1)/2 pairs per prompt row (499,500 at 1,000 runs) and a
# best-of-K one ceil(n / k) sets per row, so a campaign near this cap is already more work to
# build and to rate than anyone would want; the cap only stops a request listing hundreds of
# thousands of ids from holding a web thread while they are read (docs/security.md).
MAX_CAMPAIGN_RUNS = 1_000

# The most other campaigns one leaderboard may pool votes from (the ``pool`` filter): each adds
# a few queries and a fingerprint to every stale check of that leaderboard.
MAX_POOLED_CAMPAIGNS = 20
