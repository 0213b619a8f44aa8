"""Parse compositional prompts such as "two red circles left of a blue square".

The grammar is intentionally small and forgiving: a prompt is a sequence of
object groups (``[count] [size] [colour] shape``, modifiers in any order),
optionally linked by spatial relations, plus an optional background phrase.
Words we do not understand are skipped and reported, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# Named colours (RGB). Kept saturated and mutually distinct so that mistakes and
# pixel checks are unambiguous.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 20),
    "orange": (245, 130, 20),
    "purple": (130, 40, 170),
    "pink": (245, 120, 190),
    "brown": (120, 70, 30),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
    "gray": (128, 128, 128),
    "cyan": (20, 200, 220),
}
_COLOUR_ALIASES = {"grey": "gray", "violet": "purple", "magenta": "pink", "turquoise": "cyan"}

SHAPES = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "pentagon",
    "diamond",
    "rectangle",
    "ellipse",
    "cross",
)
_SHAPE_ALIASES = {"oval": "ellipse", "rhombus": "diamond", "plus": "cross", "disc": "circle"}

SIZES = ("small", "medium", "large")
_SIZE_WORDS = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "medium": "medium",
    "large": "large",
    "big": "large",
    "huge": "large",
}

_COUNT_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
MAX_COUNT = 10

# Multi-word relations first so "to the left of" is matched before "left".
_RELATIONS: list[tuple[tuple[str, ...], str]] = [
    (("to", "the", "left", "of"), "left_of"),
    (("to", "the", "right", "of"), "right_of"),
    (("on", "the", "left", "of"), "left_of"),
    (("on", "the", "right", "of"), "right_of"),
    (("on", "top", "of"), "above"),
    (("left", "of"), "left_of"),
    (("right", "of"), "right_of"),
    (("above",), "above"),
    (("over",), "above"),
    (("below",), "below"),
    (("under",), "below"),
    (("beneath",), "below"),
    (("underneath",), "below"),
]
RELATIONS = ("left_of", "right_of", "above", "below")
INVERSE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}

# Filler words that carry no meaning for us; not reported as "ignored".
_STOPWORDS = {
    "the", "and", "of", "with", "on", "in", "a", "an", "some", "is", "are", "picture",
    "image", "photo", "drawing", "showing", "there", "sized", "coloured", "colored", "shaped",
    "shape", "shapes", "plain", "solid", "background", "next", "to", "placed", "positioned",
    "add", "draw", "put", "place", "paint", "render", "insert",
}  # fmt: skip

_BACKGROUND_RE = re.compile(
    r"\b(?:on|against|with|over|in front of)\s+(?:a|an|the)?\s*(?:plain\s+|solid\s+)?"
    r"([a-z]+)\s+background\b"
    r"|\b(?:background|backdrop)\s+(?:is\s+|of\s+)?([a-z]+)\b"
)
_TOKEN_RE = re.compile(r"[a-z]+|\d+")


@dataclass(frozen=True)
class ObjectSpec:
    """A group of identical shapes, e.g. "two red circles"."""

    shape: str
    count: int = 1
    colour: str | None = None  # None: unspecified (the renderer picks one)
    size: str | None = None  # None: unspecified (medium)


@dataclass(frozen=True)
class Relation:
    """``objects[subject]`` is ``relation`` ``objects[target]`` (e.g. left_of)."""

    subject: int
    relation: str
    target: int


@dataclass(frozen=True)
class Scene:
    """Structured reading of a prompt."""

    objects: tuple[ObjectSpec, ...] = ()
    relations: tuple[Relation, ...] = ()
    background: str | None = None
    ignored_words: tuple[str, ...] = field(default=())

    @property
    def understood(self) -> bool:
        """True when at least one shape was recognised."""
        return bool(self.objects)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for result metadata."""
        data = asdict(self)
        data["objects"] = [dict(o) for o in data["objects"]]
        data["relations"] = [dict(r) for r in data["relations"]]
        data["ignored_words"] = list(self.ignored_words)
        return data


def _singular(word: str) -> str | None:
    """Map a shape noun (singular or plural, or an alias) to its canonical name."""
    candidates = [word]
    if word.endswith("es"):
        candidates.append(word[:-2])  # crosses -> cross
    if word.endswith("s"):
        candidates.append(word[:-1])  # circles -> circle
    for cand in candidates:
        if cand in SHAPES:
            return cand
        if cand in _SHAPE_ALIASES:
            return _SHAPE_ALIASES[cand]
    return None


def colour_name(word: str) -> str | None:
    """Canonical colour name for ``word`` or None."""
    word = _COLOUR_ALIASES.get(word, word)
    return word if word in COLOURS else None


def parse_prompt(prompt: str) -> Scene:
    """Parse ``prompt`` into a :class:`Scene`. Never raises on odd input."""
    text = prompt.lower()
    background = None
    match = _BACKGROUND_RE.search(text)
    if match:
        word = match.group(1) or match.group(2)
        background = colour_name(word)
        if background is not None:
            text = text[: match.start()] + " " + text[match.end() :]

    tokens = _TOKEN_RE.findall(text)
    objects: list[ObjectSpec] = []
    relations: list[Relation] = []
    ignored: list[str] = []
    count: int | None = None
    colour: str | None = None
    size: str | None = None
    pending_relation: str | None = None  # relation seen after an object, awaiting its target

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        rel = _match_relation(tokens, i)
        if rel is not None:
            name, length = rel
            if objects:
                pending_relation = name
            i += length
            continue
        shape = _singular(tok)
        if shape is not None:
            objects.append(ObjectSpec(shape, count or 1, colour, size))
            if pending_relation is not None:
                relations.append(Relation(len(objects) - 2, pending_relation, len(objects) - 1))
                pending_relation = None
            count, colour, size = None, None, None
        elif tok.isdigit():
            count = max(1, min(int(tok), MAX_COUNT))
        elif tok in _COUNT_WORDS:
            # "a single circle": keep the first count word, silently.
            count = count or _COUNT_WORDS[tok]
        elif colour_name(tok) is not None:
            colour = colour_name(tok)
        elif tok in _SIZE_WORDS:
            size = _SIZE_WORDS[tok]
        elif tok not in _STOPWORDS:
            ignored.append(tok)
        i += 1

    return Scene(tuple(objects), tuple(relations), background, tuple(ignored))


def _match_relation(tokens: list[str], i: int) -> tuple[str, int] | None:
    for words, name in _RELATIONS:
        if tuple(tokens[i : i + len(words)]) == words:
            return name, len(words)
    return None
