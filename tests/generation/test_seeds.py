"""How a run's seeds are written: ``parse_seeds`` (the generate command and the workspace)."""

import pytest

from evalhub.core.errors import EvalHubError
from evalhub.generation.plan import MAX_SEEDS, format_seeds, parse_seeds


@pytest.mark.parametrize(("text", "seeds"), [
    ("0-3,10", [0, 1, 2, 3, 10]),
    (" 7 , 2 ", [7, 2]),
    ("-2-1", [-2, -1, 0, 1]),
    ("5-5", [5]),
    ("", []),
    ("0\N{EN DASH}3, 7", [0, 1, 2, 3, 7]),  # as format_seeds writes them
])
def test_seeds_and_inclusive_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [
    ("5-1", "the range '5-1' is empty; write the lower seed first"),
    ("0-3,x", "'x' is not a seed or a range of seeds"),
    ("1.5", "'1.5' is not a seed"),
    (f"0-{MAX_SEEDS}", f"more than {MAX_SEEDS} seeds"),
    (f"0-{MAX_SEEDS - 2},{MAX_SEEDS},{MAX_SEEDS + 1}", f"more than {MAX_SEEDS} seeds"),
])
def test_what_is_not_seeds_is_refused_naming_the_part(text, message):
    with pytest.raises(EvalHubError, match=message):
        parse_seeds(text)


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "'abc' is not a seed or a range of seeds (e.g. 0-3,10)."),
    ("5-1", "the range '5-1' is empty; write the lower seed first (e.g. 0-3)."),
    ("0-3,x", "'0-3,x': 'x' is not a seed or a range of seeds (e.g. 0-3,10)."),
])
def test_a_refusal_names_the_whole_text_only_when_it_holds_more_than_the_bad_part(text,
                                                                                 message):
    with pytest.raises(EvalHubError) as refused:
        parse_seeds(text)
    assert refused.value.message == message


@pytest.mark.parametrize(("seeds", "text"), [
    (list(range(100, 200)), "100\N{EN DASH}199"),
    ([0, 1, 2, 3, 7], "0\N{EN DASH}3, 7"),
    ([4, 5, 9, 8, 7], "4, 5, 9, 8, 7"),  # runs are ascending, in the run's order
    ([10, 11, 12, 0, 1, 2], "10\N{EN DASH}12, 0\N{EN DASH}2"),
    ([], ""),
    (list(range(MAX_SEEDS)), f"0\N{EN DASH}{MAX_SEEDS - 1}"),
    (list(range(0, 200, 2)), ", ".join(str(s) for s in range(0, 40, 2))
     + ", …; 100 seeds in all"),
])
def test_seeds_are_written_as_compact_ranges(seeds, text):
    assert format_seeds(seeds) == text


@pytest.mark.parametrize("seeds", [[0, 1, 2, 3, 7], list(range(100, 200)), [5, 3, 4, 5, 6]])
def test_what_format_seeds_writes_parses_back(seeds):
    assert parse_seeds(format_seeds(seeds)) == seeds
