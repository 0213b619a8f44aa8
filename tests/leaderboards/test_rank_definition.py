"""One definition of rank beside the ranking table: the rank and its possible ranks both come
from the runs' 95 % Elo intervals, so a rank always lies in its own range."""

from dataclasses import replace

from evalhub.core.text import display_width
from evalhub.leaderboards.text import (
    RANK_DEFINITION,
    leaderboard_table,
    possible_ranks,
    ranking_rows,
)
from tests.leaderboards.test_results import _board


def _with_intervals(intervals: dict[int, tuple[float, float]]):
    board = _board()
    runs = tuple(replace(r, elo_lower=intervals[r.id][0], elo_upper=intervals[r.id][1],
                         rank_low=3, rank_high=3)  # bootstrap percentiles: not shown
                 if r.id in intervals else r for r in board.runs)
    return replace(board, runs=runs)


def test_each_rank_lies_in_the_range_its_interval_allows():
    # a is surely above b; c (unrated in _board) stays unrated.
    board = _with_intervals({12: (1050.0, 1100.0), 7: (950.0, 1000.0)})
    assert possible_ranks(board) == {12: (1, 1), 7: (2, 2)}
    overlapping = _with_intervals({12: (980.0, 1040.0), 7: (960.0, 1020.0)})
    assert possible_ranks(overlapping) == {12: (1, 2), 7: (1, 2)}
    rows, _ = ranking_rows(overlapping)
    assert [row.rank_range for row in rows] == [(1, 2), (1, 2), None]


def test_the_text_table_uses_the_same_definition_and_states_it():
    board = _with_intervals({12: (1050.0, 1100.0), 7: (950.0, 1000.0)})
    text = leaderboard_table(board)
    header, first = text.splitlines()[1:3]
    assert header.split()[:2] == ["rank", "possible"]
    assert first.split()[:2] == ["1", "1-1"]  # not the bootstrap's 3-3
    assert RANK_DEFINITION in text


def test_the_text_table_lines_up_wide_names_and_prints_control_characters_as_escapes():
    board = _with_intervals({12: (1050.0, 1100.0), 7: (950.0, 1000.0)})
    wide, hostile = "\u8bc4\u6d4b-\u6a21\u578b", "esc\x1b[2Jred\u202e"
    runs = tuple(replace(run, name=name) for run, name in
                 zip(board.runs, [wide, hostile, "plain"], strict=True))
    text = leaderboard_table(replace(board, runs=runs))
    assert "\x1b" not in text and "\u202e" not in text
    header, *rows = text.splitlines()[1:4]  # the two rated runs' rows
    assert "esc\\x1b[2Jred\\u202e" in rows[1]
    # The Elo column starts at the same terminal column in the header and both rows: a CJK
    # character takes two columns, so padding by characters would shift the wide name's row.
    starts = [display_width(line[:line.index(elo, line.index(name) + len(name))])
              for line, name, elo in zip([header, *rows], ["run", wide, "esc"],
                                         ["Elo", *(row.split()[3] for row in rows)],
                                         strict=True)]
    assert len(set(starts)) == 1, [header, *rows]
