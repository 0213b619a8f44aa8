"""Limits on text that EvalHub accepts from users, shared by the API, pages and CLI.

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
