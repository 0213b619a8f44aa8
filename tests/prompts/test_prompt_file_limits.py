"""Prompt files whose values the database cannot store are refused line by line, before
anything is written: a category longer than its column (PostgreSQL refuses it with a
DataError, SQLite stores it whole), a NUL byte in any kept value, JSON numbers no database
stores. JSON Lines split on newlines only."""

import pytest

from evalhub.core.errors import ImportRejected
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.prompts.parsers import parse_prompts
from evalhub.prompts.services import prompt_set_import

CATEGORY_MAX = Prompt._meta.get_field("category").max_length


def _details(data: bytes, fmt: str) -> list[str]:
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(data, fmt=fmt)
    return refused.value.details


def test_a_category_as_long_as_its_column_is_kept():
    rows = parse_prompts(f"text,category\na cat,{'c' * CATEGORY_MAX}\n".encode(), fmt="csv")
    assert rows[0].category == "c" * CATEGORY_MAX


@pytest.mark.parametrize(("data", "fmt", "line"), [
    (f"text,category\na cat,ok\na dog,{'c' * (CATEGORY_MAX + 1)}\n".encode(), "csv", 3),
    (f'{{"text": "a cat"}}\n{{"text": "a dog", "category": "{"c" * 500}"}}\n'.encode(),
     "jsonl", 2),
])
def test_a_category_longer_than_its_column_is_refused_on_its_line(data, fmt, line):
    assert _details(data, fmt) == [
        f"line {line}: category is longer than {CATEGORY_MAX} characters"]


def test_an_over_long_category_is_a_clear_refusal_on_the_database(project):
    """Imported as is, PostgreSQL (the test database) raised DataError: a server error."""
    data = f"text,category\na cat,{'c' * (CATEGORY_MAX + 1)}\n".encode()
    with pytest.raises(ImportRejected, match="prompt file has errors"):
        prompt_set_import(project=project, name="long", data=data, fmt="csv")
    assert not PromptSet.objects.exists()


@pytest.mark.parametrize(("data", "fmt"), [
    (b"text,category\na cat,x\x00y\n", "csv"),
    (b"text,tags\na cat,x\x00y\n", "csv"),
    (b"text,note\na cat,x\x00y\n", "csv"),
    (b'{"text": "a cat", "metadata": {"k\\u0000": 1}}\n', "jsonl"),
    (b'{"text": "a cat", "tags": ["a", "b\\u0000"]}\n', "jsonl"),
])
def test_a_nul_byte_in_any_kept_value_is_refused(project, data, fmt):
    line = 1 if fmt == "jsonl" else 2
    with pytest.raises(ImportRejected) as refused:
        prompt_set_import(project=project, name="nul", data=data, fmt=fmt)
    assert refused.value.details == [
        f"line {line}: a category, tag or other value contains a NUL byte, which the database "
        "cannot store"]
    assert not PromptSet.objects.exists()


@pytest.mark.parametrize(("value", "problem"), [
    ("NaN", "NaN is not JSON"),
    ("-Infinity", "-Infinity is not JSON"),
    ("1e400", "the number 1e400 is out of range"),
    ("1" * 5000, "an integer has more than 4300 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_json_that_no_database_stores_or_python_cannot_read_is_reported_on_its_line(
        value, problem):
    data = f'{{"text": "a cat"}}\n{{"text": "a dog", "score": {value}}}\n'.encode()
    assert _details(data, "jsonl") == [f"line 2: invalid JSON ({problem})"]


def test_jsonl_lines_split_on_newlines_only():
    """Strings written raw (json.dumps(ensure_ascii=False)) may hold U+2028, U+2029 or U+0085,
    which str.splitlines() takes for line ends."""
    data = ('{"text": "a cat\u2028on a mat"}\r\n'
            '{"text": "a dog\u2029\x85barking"}\n'
            '{bad\n').encode()
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(data, fmt="jsonl")
    assert refused.value.details == [
        "line 3: invalid JSON (Expecting property name enclosed in double quotes)"]
    rows = parse_prompts(data.rsplit(b"{bad", 1)[0], fmt="jsonl")
    assert [(row.line, row.text) for row in rows] == [
        (1, "a cat\u2028on a mat"), (2, "a dog\u2029\x85barking")]


def test_a_plain_text_prompt_file_splits_on_newlines_only():
    rows = parse_prompts("a cat\u2028on a mat\r\na dog\n".encode(), fmt="txt")
    assert [(row.line, row.text) for row in rows] == [(1, "a cat\u2028on a mat"), (2, "a dog")]


def test_a_quote_never_closed_in_the_header_is_refused():
    assert _details(b'text,"category\na cat,x\n', "csv") == [
        "line 1: a quote opened in this row is never closed, so the rest of the file would be "
        "one value"]


def test_csv_problems_and_row_problems_are_listed_in_line_order():
    data = f'text,category\n"",x\n"{"x" * 131_073}",y\na,b,c\n"",z\n'.encode()
    assert _details(data, "csv") == [
        "line 2: prompt text is empty",
        "line 3: a field is longer than 131072 characters",
        "line 4: more values than columns",
        "line 5: prompt text is empty",
    ]
