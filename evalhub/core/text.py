"""Words of the messages that commands, pages and refusals write."""

from __future__ import annotations

import unicodedata


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``"1 video"``, ``"0 videos"``, ``"2,500 videos"``: ``number`` (thousands separated) with
    ``noun`` in the singular for exactly one, else in the plural (``plural``, default
    ``noun + "s"``)."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: control and format characters (ESC, a newline,
    a bidi override), which could clear the screen, recolour it or break a table's line, are
    written as escapes (``\\x1b``, ``\\u202e``); everything else as it is. Names stored
    before the name rule (core.limits.name_text) may hold them."""
    return "".join(char.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char
                   for char in text)


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: 2 for a wide or full-width character (CJK,
    most emoji), 0 for a combining mark, 1 otherwise (Unicode's East Asian Width, as
    terminals use it)."""
    return sum(0 if unicodedata.combining(char)
               else 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
               for char in text)


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` terminal columns (:func:`display_width`),
    so that columns line up whatever the script."""
    return text + " " * max(0, width - display_width(text))


FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
_ISOLATE_INITIATORS = "\u2066\u2067\u2068"  # LRI, RLI, FSI: each closed by one PDI


def isolated(text: str) -> str:
    """``text`` between U+2068 FIRST STRONG ISOLATE and U+2069 POP DIRECTIONAL ISOLATE: the
    text form of ``<bdi>``, for where a name is printed in plain text that cannot hold markup
    (a page's ``<title>``, an ``<option>``'s or a checkbox's label). Inside, the name takes
    its direction from its own first letter and cannot reorder the text around it: a Hebrew
    name's trailing "!" or digits stay at its own end instead of joining the text beside it,
    and an override (U+202E) left open in it ends at the closing U+2069 (docs/accessibility.md,
    "User-written text").

    Isolates inside ``text`` are balanced first, so that it cannot end the isolate around it
    early (a U+2069 with no opener of its own is dropped) or leave one open after it (an
    opener with no U+2069 gets one); names written before the name rule (core.limits.name_text)
    and prompt categories may hold them. Empty text stays empty: nothing to isolate."""
    if not text:
        return text
    kept: list[str] = []
    still_open = 0
    for char in text:
        if char == POP_DIRECTIONAL_ISOLATE:
            if not still_open:
                continue
            still_open -= 1
        elif char in _ISOLATE_INITIATORS:
            still_open += 1
        kept.append(char)
    return (FIRST_STRONG_ISOLATE + "".join(kept) + POP_DIRECTIONAL_ISOLATE * still_open
            + POP_DIRECTIONAL_ISOLATE)
