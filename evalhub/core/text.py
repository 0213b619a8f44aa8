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
