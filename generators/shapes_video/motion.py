"""How the shapes of a prompt move: "a red circle moving right", "a spinning blue star".

Motions are read per object group, in the order the shapes parser makes its groups (one group
per shape noun). A motion word placed between a group's modifiers and its shape noun ("a
spinning red star") belongs to that group; one after a shape noun ("two circles moving left")
to the group just closed. Words that are not motions are left to the shapes parser.
"""

from __future__ import annotations

import re

from generators.shapes.parser import _COUNT_WORDS, _SIZE_WORDS, _singular, colour_name

MOTIONS = ("left", "right", "up", "down", "bounce", "spin", "still")
# Unit displacement over the whole clip, as fractions of the frame size (x right, y down).
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

_VERBS = {"moving", "move", "moves", "drifting", "drifts", "sliding", "slides", "flying",
          "flies", "going", "goes", "travelling", "traveling", "heading", "rolling", "rolls",
          "running", "runs"}
_DIRECTION_WORDS = {
    "left": "left", "leftward": "left", "leftwards": "left",
    "right": "right", "rightward": "right", "rightwards": "right",
    "up": "up", "upward": "up", "upwards": "up",
    "down": "down", "downward": "down", "downwards": "down",
}
_SELF_MOVING = {
    "falling": "down", "falls": "down", "sinking": "down", "sinks": "down", "dropping": "down",
    "rising": "up", "rises": "up", "floating": "up", "climbing": "up",
    "bouncing": "bounce", "bounces": "bounce", "jumping": "bounce", "hopping": "bounce",
    "spinning": "spin", "spins": "spin", "rotating": "spin", "rotates": "spin",
    "turning": "spin", "twirling": "spin",
    "still": "still", "static": "still", "stationary": "still", "motionless": "still",
}
_TOKEN_RE = re.compile(r"[a-z]+|\d+")


def parse_motions(prompt: str, groups: int) -> list[str]:
    """The motion of each of the prompt's ``groups`` object groups ("still" when unsaid)."""
    tokens = _TOKEN_RE.findall(prompt.lower())
    motions = ["still"] * groups
    current = -1  # index of the last group closed by a shape noun
    open_modifiers = False  # count/colour/size words seen since that shape noun
    pending: str | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        motion = None
        if token in _VERBS and index + 1 < len(tokens) and tokens[index + 1] in _DIRECTION_WORDS:
            motion = _DIRECTION_WORDS[tokens[index + 1]]
            index += 1
        elif token in _SELF_MOVING:
            motion = _SELF_MOVING[token]
        if motion is not None:
            if open_modifiers or current < 0:
                pending = motion
            elif current < groups:
                motions[current] = motion
        elif _singular(token) is not None:
            current += 1
            if pending is not None and current < groups:
                motions[current] = pending
            pending, open_modifiers = None, False
        elif (token in _COUNT_WORDS or token.isdigit() or colour_name(token) is not None
              or token in _SIZE_WORDS):
            open_modifiers = True
        index += 1
    return motions
