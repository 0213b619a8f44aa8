import pytest
from django.core.management.base import CommandError

from evalhub.core.cli import parse_key_values
from evalhub.core.jsonl import iter_jsonl


def test_key_values_are_read_as_json_when_they_parse():
    assert parse_key_values(["steps=30", "scheduler=DDIM", "guidance=7.5", "flag=true"],
                            flag="--param") == {"steps": 30, "scheduler": "DDIM",
                                                "guidance": 7.5, "flag": True}


def test_a_pair_without_equals_sign_is_refused_naming_the_flag():
    with pytest.raises(CommandError, match="--option 'steps': expected KEY=VALUE"):
        parse_key_values(["steps"], flag="--option")


def test_jsonl_reading_reports_every_bad_line_and_skips_blank_ones():
    errors: list[str] = []
    records = list(iter_jsonl('{"a": 1}\n\n{bad\n[2]\n{oops\n', errors, label="row"))
    assert records == [(1, {"a": 1}), (4, [2])]
    assert [e.split(":")[0] for e in errors] == ["row 3", "row 5"]
