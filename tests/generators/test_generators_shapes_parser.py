"""Prompt parsing for the shapes generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.shapes.parser import ObjectSpec, Relation, parse_prompt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "prompts"


@pytest.mark.parametrize(
    ("prompt", "objects", "relations", "background"),
    [
        (
            "two red circles left of a blue square",
            [ObjectSpec("circle", 2, "red"), ObjectSpec("square", 1, "blue")],
            [Relation(0, "left_of", 1)],
            None,
        ),
        (
            "three small green triangles on a black background",
            [ObjectSpec("triangle", 3, "green", "small")],
            [],
            "black",
        ),
        (
            "a large yellow star above two purple hexagons",
            [ObjectSpec("star", 1, "yellow", "large"), ObjectSpec("hexagon", 2, "purple")],
            [Relation(0, "above", 1)],
            None,
        ),
        (
            "4 Grey crosses to the right of an oval",
            [ObjectSpec("cross", 4, "gray"), ObjectSpec("ellipse", 1)],
            [Relation(0, "right_of", 1)],
            None,
        ),
        (
            "a blue circle below a red square against a pink background",
            [ObjectSpec("circle", 1, "blue"), ObjectSpec("square", 1, "red")],
            [Relation(0, "below", 1)],
            "pink",
        ),
        (
            "a red star left of a green star left of a blue star",
            [ObjectSpec("star", 1, c) for c in ("red", "green", "blue")],
            [Relation(0, "left_of", 1), Relation(1, "left_of", 2)],
            None,
        ),
        (
            "five big cyan pentagons under a tiny white diamond",
            [
                ObjectSpec("pentagon", 5, "cyan", "large"),
                ObjectSpec("diamond", 1, "white", "small"),
            ],
            [Relation(0, "below", 1)],
            None,
        ),
        ("a single black diamond", [ObjectSpec("diamond", 1, "black")], [], None),
        ("99 orange circles", [ObjectSpec("circle", 10, "orange")], [], None),  # capped
    ],
)
def test_parse(prompt: str, objects: list, relations: list, background: str | None) -> None:
    scene = parse_prompt(prompt)
    assert list(scene.objects) == objects
    assert list(scene.relations) == relations
    assert scene.background == background
    assert scene.understood
    assert scene.ignored_words == ()


def test_unknown_words_are_reported_not_fatal() -> None:
    scene = parse_prompt("a cat riding a bicycle")
    assert not scene.understood
    assert scene.ignored_words == ("cat", "riding", "bicycle")
    partial = parse_prompt("a fluffy red circle")
    assert partial.understood and partial.ignored_words == ("fluffy",)


@pytest.mark.parametrize("prompt", ["", "   ", "!!!", "left of above", "background"])
def test_degenerate_prompts(prompt: str) -> None:
    scene = parse_prompt(prompt)
    assert not scene.understood
    json.dumps(scene.to_dict())


def test_fixture_prompts_are_well_formed_and_parse() -> None:
    lines = (FIXTURES / "shapes.jsonl").read_text().splitlines()
    assert 40 <= len(lines) <= 60
    categories = set()
    for line in lines:
        row = json.loads(line)
        assert set(row) == {"text", "category", "tags"}
        assert isinstance(row["tags"], list)
        categories.add(row["category"])
        scene = parse_prompt(row["text"])
        if row["category"] == "out-of-domain":
            assert not scene.understood
        else:
            assert scene.understood and not scene.ignored_words, row["text"]
        if row["category"] == "position":
            assert scene.relations, row["text"]
        if row["category"] == "background":
            assert scene.background, row["text"]
    assert {"counting", "colour", "position", "size", "background"} <= categories


def test_edit_fixture_prompts_parse() -> None:
    for line in (FIXTURES / "shapes_edit.jsonl").read_text().splitlines():
        row = json.loads(line)
        scene = parse_prompt(row["text"])
        assert scene.understood and not scene.ignored_words, row["text"]
