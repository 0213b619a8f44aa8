"""How a run's seeds are written: ``parse_seeds`` (the generate command and the workspace)."""

import pytest

from evalhub.core.errors import EvalHubError
from evalhub.generation.plan import MAX_SEEDS, parse_seeds


@pytest.mark.parametrize(("text", "seeds"), [
    ("0-3,10", [0, 1, 2, 3, 10]),
    (" 7 , 2 ", [7, 2]),
    ("-2-1", [-2, -1, 0, 1]),
    ("5-5", [5]),
    ("", []),
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
