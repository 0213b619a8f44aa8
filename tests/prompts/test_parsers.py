"""Prompt files: three formats in, rows out, every bad line named."""

import pytest

from evalhub.core.errors import ImportRejected
from evalhub.prompts.parsers import detect_format, parse_prompts


def test_plain_text_has_one_prompt_per_non_empty_line():
    rows = parse_prompts(b"a red circle\n\n  two blue squares  \n", fmt="txt")
    assert [r.text for r in rows] == ["a red circle", "two blue squares"]
    assert [r.line for r in rows] == [1, 3]


def test_csv_reads_text_category_tags_and_keeps_other_columns_as_metadata():
    data = (
        b"prompt,category,tags,difficulty\n"
        b'a red circle,colour,"easy;single",1\n'
        b"two blue squares,counting,,2\n"
    )
    rows = parse_prompts(data, fmt="csv")
    assert rows[0].text == "a red circle"
    assert rows[0].category == "colour"
    assert rows[0].tags == ("easy", "single")
    assert rows[0].metadata == {"difficulty": "1"}
    assert rows[1].tags == ()


def test_jsonl_accepts_objects_and_bare_strings():
    data = b'{"text": "a red circle", "category": "colour", "tags": ["x"]}\n"a green star"\n'
    rows = parse_prompts(data, fmt="jsonl")
    assert [(r.text, r.category, r.tags) for r in rows] == [
        ("a red circle", "colour", ("x",)),
        ("a green star", "", ()),
    ]


def test_utf8_bom_is_ignored():
    rows = parse_prompts("\ufefftext\nun cercle rouge\n".encode(), fmt="csv")
    assert rows[0].text == "un cercle rouge"


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (b'{"text": "ok"}\n{not json}\n', "jsonl", "line 2: invalid JSON"),
        (b'{"text": ""}\n', "jsonl", "line 1: prompt text is empty"),
        (b"[1, 2]\n", "jsonl", "line 1: expected a JSON object or string"),
        (b'{"text": 1}\n', "jsonl", "line 1: prompt text is int, not text"),
        (b'{"text": ["a", "b"]}\n', "jsonl", "line 1: prompt text is list, not text"),
        (b'{"prompt": {"k": 2}}\n', "jsonl", "line 1: prompt text is dict, not text"),
        (b"category\ncolour\n", "csv", "line 2: no prompt text"),
        (b"text\na\nb\na\n", "csv", "line 4: duplicate of the prompt on line 2"),
        (b"text\na,b\n", "csv", "line 2: more values than columns"),
    ],
)
def test_bad_lines_are_reported_with_their_line_number(data, fmt, expected):
    with pytest.raises(ImportRejected) as info:
        parse_prompts(data, fmt=fmt)
    assert any(expected in detail for detail in info.value.details), info.value.details


@pytest.mark.parametrize(("data", "line"), [
    (b'text,category\n"unterminated,quote\n,empty\n', 2),
    (b'text\nfine\n\n"no closing quote', 4),
])
def test_a_csv_quote_never_closed_is_refused_on_the_line_it_opens(data, line):
    # The csv module would read the rest of the file as one multi-line prompt.
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(data, fmt="csv")
    assert refused.value.details == [
        f"line {line}: a quote opened in this row is never closed, so the rest of the file "
        "would be one value"]


def test_a_quoted_csv_field_that_closes_may_span_lines():
    rows = parse_prompts(b'text\n"a cat\non a mat"\na dog\n', fmt="csv")
    assert [(row.line, row.text) for row in rows] == [(3, "a cat\non a mat"), (4, "a dog")]


def test_every_bad_line_is_reported_not_only_the_first():
    with pytest.raises(ImportRejected) as info:
        parse_prompts(b'{bad\n{"text": "ok"}\n{bad\n', fmt="jsonl")
    assert len(info.value.details) == 2


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_an_empty_file_is_rejected(data):
    with pytest.raises(ImportRejected, match="no prompts"):
        parse_prompts(data, fmt="txt")


def test_non_utf8_bytes_are_rejected_clearly():
    with pytest.raises(ImportRejected, match="not UTF-8"):
        parse_prompts(b"\xff\xfe\x00a", fmt="txt")


def test_format_is_detected_from_the_extension_or_refused():
    assert detect_format("p.CSV") == "csv"
    assert detect_format("p.jsonl") == "jsonl"
    assert detect_format("p.txt") == "txt"
    with pytest.raises(ImportRejected, match="Cannot tell the format"):
        detect_format("p.xlsx")


def test_a_csv_field_past_the_csv_limit_is_reported_on_its_line_with_the_others():
    import csv

    huge = "x" * (csv.field_size_limit() + 10)
    data = f'text,category\n"a cat",animals\n"{huge}",animals\n"a dog",animals\n'.encode()
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(data, fmt="csv")
    assert any(d.startswith("line 3: a field is longer than") for d in refused.value.details)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "txt"])
def test_nul_bytes_in_prompt_text_are_refused(fmt):
    body = {"csv": 'text\n"a\x00cat"\n', "jsonl": '{"text": "a\\u0000cat"}\n',
            "txt": "a\x00cat\n"}[fmt]
    with pytest.raises(ImportRejected) as refused:
        parse_prompts(body.encode(), fmt=fmt)
    assert any("NUL" in d for d in refused.value.details)


def test_a_lone_surrogate_anywhere_in_a_row_is_refused_with_its_line():
    # JSON can spell half of a UTF-16 pair ("\ud83d"), which has no UTF-8 form to store.
    data = (b'{"text": "fine"}\n{"text": "surrogate \\ud800 x"}\n'
            b'{"text": "ok", "category": "a cat \\ud83d"}\n{"text": "ok", "\\udc00": 1}\n')
    with pytest.raises(ImportRejected) as caught:
        parse_prompts(data, fmt="jsonl")
    assert caught.value.details == [
        "line 2: Surrogate characters are not allowed: U+D800.",
        "line 3: Surrogate characters are not allowed: U+D83D.",
        "line 4: Surrogate characters are not allowed: U+DC00.",
    ]
