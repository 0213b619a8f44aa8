"""Words of the messages that commands, pages and refusals write."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``"1 video"``, ``"0 videos"``, ``"2,500 videos"``: ``number`` (thousands separated) with
    ``noun`` in the singular for exactly one, else in the plural (``plural``, default
    ``noun + "s"``)."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
