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

import re
import unicodedata

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

# Longer passwords are refused before they are hashed (the login page and the API's token
# endpoint): hashing costs CPU in proportion to the password's length, and nobody's password is
# this long (Django once used the same limit).
MAX_PASSWORD_CHARS = 4096

# The most other campaigns one leaderboard may pool votes from (the ``pool`` filter): each adds
# a few queries and a fingerprint to every stale check of that leaderboard.
MAX_POOLED_CAMPAIGNS = 20


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, in DRF's words, or None when it can.

    A NUL character: PostgreSQL holds it in neither text nor jsonb. A lone UTF-16 surrogate
    (``"\\ud800"`` in JSON, or an argument's undecodable byte, which Python reads as one): it
    has no UTF-8 form, so the database driver fails to encode it (a 500). DRF's ``CharField``
    refuses both; this is the same refusal for text that does not pass through one (JSON
    values, prompt files, command-line arguments)."""
    if "\x00" in value:
        return "Null characters are not allowed."
    for char in value:
        if "\ud800" <= char <= "\udfff":
            return f"Surrogate characters are not allowed: U+{ord(char):X}."
    return None


def json_problem(value: object) -> str | None:
    """:func:`text_problem` of the first key or string of a JSON value (objects and lists
    walked to the bottom) that cannot be stored, or None: a ``parameters`` or ``options``
    object, a prompt file's row."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


# The fields and columns that name an object (docs/security.md, "Names"): :func:`name_text`
# applies to them in the API (``RejectUnknownFields``) and on the command line (``model_text``).
NAME_FIELDS = frozenset({"name", "slug"})

# Zero-width non-joiner and joiner: format characters that words need (Persian, the Indic
# scripts) and emoji sequences are made of (a family, a rainbow flag); names keep them.
NAME_JOINERS = frozenset({"\u200c", "\u200d"})
# A subdivision flag (England, Scotland) is a black flag, tag characters, and a cancel tag.
NAME_FLAG_TAGS = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
NAME_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "invisible formatting",
                           "Zl": "line separator", "Zp": "paragraph separator"}


def name_text(value: str) -> str:
    """A name (a project's slug or name; a model, checkpoint, run, prompt set, reference set or
    campaign name) as EvalHub stores it: NFC-normalised, so that "café" typed as ``e`` +
    U+0301 is the same name as "café" typed as one character, and refused (``ValueError``,
    in words) when it holds a character of Unicode category Cc (controls: tab, newline,
    ESC, BEL), Cf (format: zero-width space, bidi overrides, soft hyphen, BOM), Zl or Zp
    (line and paragraph separators), which make two names look alike or garble a page or a
    terminal (docs/security.md). Kept, where words and emoji need them: the zero-width joiner
    and non-joiner between two visible characters (a Persian word, an emoji sequence; one at
    either end, or two together, only makes a look-alike), and the tag characters of a
    subdivision flag. Free texts (prompts, descriptions, instructions) are not names and
    keep such characters."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    value = unicodedata.normalize("NFC", value)
    checked = NAME_FLAG_TAGS.sub("\U0001f3f4", value)
    for index, char in enumerate(checked):
        category = unicodedata.category(char)
        if char in NAME_JOINERS:
            around = checked[index - 1:index] + checked[index + 1:index + 2]
            if len(around) == 2 and not any(c in NAME_JOINERS or c.isspace() for c in around):
                continue
            raise ValueError(f"A name can hold the joiner U+{ord(char):04X} only between two "
                             "visible characters.")
        if category in NAME_REFUSED_CATEGORIES:
            raise ValueError(f"A name cannot contain the {NAME_REFUSED_CATEGORIES[category]} "
                             f"character U+{ord(char):04X}.")
    return value
