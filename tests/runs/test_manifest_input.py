"""A run's manifest (manifest.csv / manifest.jsonl): what each value must be, and how bad input
is refused: every bad line named at once, with its line number, and never a server error or a
traceback. Nothing is imported from a refused manifest."""

import io
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.manifest import (
    manifest_find,
    manifest_read,
    parse_manifest,
)
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import MAX_SEED, GenerationRun
from tests.factories import (
    GenerationRunFactory,
    PromptFactory,
)
from tests.runs.helpers import distinct_pngs, make_zip, manifest_csv

LIMIT = 10**9
TOO_LONG = "x" * 131_073  # one past the csv module's field limit


def _details(data: bytes, name: str = "manifest.csv") -> list[str]:
    with pytest.raises(ImportRejected) as refused:
        parse_manifest(data, name=name)
    return refused.value.details


def _jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


# --- CSV: a quote never closed, a field past the csv limit -------------------------------

@pytest.mark.parametrize(("manifest", "line"), [
    # In the last column: the rest of the file would become the note of line 2.
    (b'file,prompt,seed,note\ngood.png,one red circle,0,"oops\n'
     b"good2.png,two blue squares,0,fine\n", 2),
    # In the prompt column: the seed would be missing, but the quote is the problem.
    (b'file,prompt,seed\ngood.png,"one red circle,0\ngood2.png,two blue squares,0\n', 2),
    (b'file,prompt,seed\ngood.png,one red circle,0\n\n"good2.png,two blue squares,0\n', 4),
])
def test_a_quote_never_closed_is_refused_on_the_line_it_opens(manifest, line):
    assert _details(manifest) == [
        f"manifest line {line}: a quote opened in this row is never closed, so the rest of the "
        "file would be one value"]


def test_a_quote_never_closed_in_the_header_is_refused():
    with pytest.raises(ImportRejected, match="header cannot be read") as refused:
        parse_manifest(b'file,"prompt,seed\ngood.png,a,0\n', name="manifest.csv")
    assert refused.value.details[0].startswith("manifest line 1: a quote opened")


def test_quoted_values_that_close_may_span_lines():
    rows = parse_manifest(b'file,prompt,seed,note\na.png,"one red\ncircle",0,"two\nlines"\n',
                          name="manifest.csv")
    assert [(r.line, r.prompt, r.metadata) for r in rows] == [
        (4, "one red\ncircle", {"note": "two\nlines"})]  # a record's line is its last one


def test_a_value_past_the_csv_field_limit_is_named_with_every_other_bad_line():
    manifest = (f"file,prompt,seed\ngood.png,{TOO_LONG},0\ngood2.png,a,x\n"
                f"good3.png,b,1\n").encode()
    assert _details(manifest) == [
        "manifest line 2: a field is longer than 131072 characters",
        "manifest line 3: seed 'x' is not an integer",
    ]


# --- seeds and prompt ids: integers written as integers, seeds in the runs' range ---------

@pytest.mark.parametrize("seed", ["99999999999999999999", str(MAX_SEED + 1), "-1"])
def test_a_seed_outside_the_runs_range_is_refused_on_its_line(seed):
    details = _details(f"file,prompt,seed\na.png,p,0\nb.png,p,{seed}\n".encode())
    assert details == [f"manifest line 3: Seeds are 0 to {MAX_SEED}; out of range: {seed}."]


def test_a_seed_of_thousands_of_digits_is_refused_not_a_crash():
    details = _details(f"file,prompt,seed\na.png,p,{'9' * 5000}\n".encode())
    assert details[0].startswith("manifest line 2: seed '9999") and "out of range" in details[0]


@pytest.mark.parametrize("seed", ["1_000", "\u0663", "1e3", "0x10", "+-1", "1.0", "\uff11"])
def test_a_csv_seed_is_plain_ascii_digits(seed):
    details = _details(f"file,prompt,seed\na.png,p,{seed}\n".encode())
    assert details == [f"manifest line 2: seed {seed!r} is not an integer"]


def test_csv_integers_may_carry_spaces_and_a_minus_sign():
    rows = parse_manifest(b"file,prompt_id,seed\na.png, 12 , 7 \nb.png,-3,0\n",
                          name="manifest.csv")
    assert [(r.prompt_id, r.seed) for r in rows] == [(12, 7), (-3, 0)]


@pytest.mark.parametrize(("record", "problem"), [
    ({"prompt_id": 1.9, "seed": 0}, "prompt_id 1.9 is not an integer"),
    ({"prompt_id": True, "seed": 0}, "prompt_id true is not an integer"),
    ({"prompt_id": "1", "seed": 0}, 'prompt_id "1" is not an integer'),
    ({"prompt": "p", "seed": 1.0}, "seed 1.0 is not an integer"),
    ({"prompt": "p", "seed": False}, "seed false is not an integer"),
    ({"prompt": "p", "seed": "7"}, 'seed "7" is not an integer'),
    ({"prompt": "p", "seed": [7]}, "seed [7] is not an integer"),
    ({"prompt": ["p"], "seed": 7}, "prompt is list, not text"),
])
def test_a_jsonl_integer_is_a_json_integer(record, problem):
    details = _details(_jsonl({"file": "a.png", **record}), name="manifest.jsonl")
    assert details == [f"manifest line 1: {problem}"]


def test_a_jsonl_file_name_is_text():
    details = _details(_jsonl({"file": 5, "prompt": "p", "seed": 0}), name="manifest.jsonl")
    assert details == ["manifest line 1: file is int, not text"]


def test_the_largest_seed_is_imported(db, tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="p")
    archive = make_zip(tmp_path / "r.zip", {
        "a.png": distinct_pngs(1)[0], "manifest.csv": manifest_csv([("a.png", "p", MAX_SEED)])})
    with open_source(archive, max_total_bytes=LIMIT) as source:
        run_images_import(run=run, source=source)
    assert run.images.get().seed == MAX_SEED


# --- values the database cannot store ------------------------------------------------------

@pytest.mark.parametrize(("manifest", "name", "line"), [
    (b'file,prompt,seed,note\na.png,p,0,"a\x00b"\n', "manifest.csv", 2),
    (_jsonl({"file": "a.png", "prompt": "p", "seed": 0, "extra": {"k": ["a\x00b"]}}),
     "manifest.jsonl", 1),
])
def test_a_nul_byte_in_a_kept_value_is_refused(manifest, name, line):
    assert _details(manifest, name=name) == [
        f"manifest line {line}: a value contains a NUL byte, which the database cannot store"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_json_numbers_no_database_stores_are_invalid_json(value):
    manifest = b'{"file": "a.png", "prompt": "p", "seed": 0, "score": %s}\n' % value.encode()
    details = _details(manifest, name="manifest.jsonl")
    assert len(details) == 1 and details[0].startswith("manifest line 1: invalid JSON")


# --- JSON Lines are split on newlines only -------------------------------------------------

def test_a_jsonl_value_may_hold_unicode_line_separators():
    manifest = _jsonl(
        {"file": "a.png", "prompt": "p", "seed": 0, "note": "one\u2028two\u2029three\x85"},
        {"file": "b.png", "prompt": "p", "seed": 1},
    ).replace(b"\n", b"\r\n")
    rows = parse_manifest(manifest, name="manifest.jsonl")
    assert [(r.line, r.file) for r in rows] == [(1, "a.png"), (2, "b.png")]
    assert rows[0].metadata == {"note": "one\u2028two\u2029three\x85"}


# --- every problem at once ---------------------------------------------------------------

def test_every_bad_line_is_reported_together():
    manifest = (b"file,prompt,seed\n"
                b"a.png,p,abc\n"
                b",p,0\n"
                b"c.png,p,0\n"
                b"d.png,,99999999999999999999\n"
                b"e.png,p,0,extra\n")
    assert _details(manifest) == [
        "manifest line 2: seed 'abc' is not an integer",
        "manifest line 3: no file",
        "manifest line 5: no prompt (give a prompt or prompt_id column); "
        f"Seeds are 0 to {MAX_SEED}; out of range: 99999999999999999999.",
        "manifest line 6: more values than columns",
    ]


def test_the_good_rows_and_the_bad_lines_can_be_read_together():
    """For an import that reports the manifest's bad lines with the problems of the files its
    good rows name."""
    rows, errors = manifest_read(b"file,prompt,seed\na.png,p,abc\nb.png,p,1\n",
                                 name="manifest.csv")
    assert [(r.line, r.file, r.seed) for r in rows] == [(3, "b.png", 1)]
    assert errors == ["manifest line 2: seed 'abc' is not an integer"]


# --- which manifest -----------------------------------------------------------------------

def test_a_folder_with_both_manifests_is_ambiguous():
    with pytest.raises(ImportRejected, match=r"both manifest\.csv and manifest\.jsonl") as refused:
        manifest_find(["a.png", "manifest.jsonl", "manifest.csv"])
    assert refused.value.details == ["manifest: manifest.csv", "manifest: manifest.jsonl"]
    assert manifest_find(["a.png", "manifest.jsonl"]) == "manifest.jsonl"
    with pytest.raises(ImportRejected, match=r"manifest\.csv or manifest\.jsonl"):
        manifest_find(["a.png", "sub/manifest.csv"])


def test_a_zip_holding_both_manifests_is_refused_naming_both(db, tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="p")
    archive = make_zip(tmp_path / "both.zip", {
        "a.png": distinct_pngs(1)[0],
        "manifest.csv": manifest_csv([("a.png", "p", 0)]),
        "manifest.jsonl": _jsonl({"file": "a.png", "prompt": "p", "seed": 1}),
    })
    with open_source(archive, max_total_bytes=LIMIT) as source, pytest.raises(
            ImportRejected, match=r"both manifest\.csv and manifest\.jsonl"):
        run_images_import(run=run, source=source)
    assert run.images.count() == 0


def test_bad_lines_and_bad_files_are_refused_together(db, tmp_path):
    # A bad seed used to stop the import before any file was looked at.
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="p")
    archive = make_zip(tmp_path / "bad.zip", {
        "a.png": distinct_pngs(1)[0], "broken.png": b"\x89PNG\r\n\x1a\n nothing more",
        "manifest.csv": manifest_csv([("a.png", "p", "abc"), ("broken.png", "p", 1),
                                      ("missing.png", "p", 2)]),
    })
    with open_source(archive, max_total_bytes=LIMIT) as source, pytest.raises(
            ImportRejected) as refused:
        run_images_import(run=run, source=source)
    problems = "\n".join(refused.value.details)
    assert "line 2" in problems and "broken.png" in problems and "missing.png" in problems
    assert len(refused.value.details) == 3 and run.images.count() == 0


def test_a_generated_run_takes_no_imported_images(db, tmp_path):
    from evalhub.runs.models import RunSource

    run = GenerationRunFactory(source=RunSource.GENERATED)
    PromptFactory(prompt_set=run.prompt_set, text="p")
    archive = make_zip(tmp_path / "one.zip", {
        "a.png": distinct_pngs(1)[0], "manifest.csv": manifest_csv([("a.png", "p", 9)])})
    with open_source(archive, max_total_bytes=LIMIT) as source, pytest.raises(
            ImportRejected, match="only imported runs take images"):
        run_images_import(run=run, source=source)
    assert run.images.count() == 0


def test_a_manifest_column_named_source_file_does_not_hide_the_file(db, tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="p")
    archive = make_zip(tmp_path / "meta.zip", {
        "a.png": distinct_pngs(1)[0],
        "manifest.jsonl": _jsonl({"file": "a.png", "prompt": "p", "seed": 1,
                                  "source_file": "elsewhere.png"})})
    with open_source(archive, max_total_bytes=LIMIT) as source:
        run_images_import(run=run, source=source)
    assert run.images.get().metadata["source_file"] == "a.png"


# --- through the API and the CLI: a clear refusal, never a 500 or a traceback ----------

BAD_MANIFESTS = {
    "field past the csv limit": (f"file,prompt,seed\na.png,{TOO_LONG},0\n",
                                 "manifest line 2: a field is longer than 131072 characters"),
    "seed past 64 bits": ("file,prompt,seed\na.png,a red circle,9223372036854775808\n",
                          "manifest line 2: Seeds are 0 to"),
    "quote never closed": ('file,prompt,seed,note\na.png,a red circle,0,"oops\n'
                           "b.png,a red circle,1,fine\n",
                           "manifest line 2: a quote opened in this row is never closed"),
}


def _archive(tmp_path, manifest: str) -> io.BytesIO:
    a, b = distinct_pngs(2)
    path = make_zip(tmp_path / "run.zip", {"a.png": a, "b.png": b,
                                           "manifest.csv": manifest.encode()})
    upload = io.BytesIO(path.read_bytes())
    upload.name = "run.zip"
    return upload


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_the_api_refuses_a_bad_manifest_with_400_and_no_run(api, scientist, catalog, tmp_path,
                                                            case):
    manifest, expected = BAD_MANIFESTS[case]
    prompt_set, checkpoint = catalog
    api.force_authenticate(scientist)
    response = api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.pk, "prompt_set": prompt_set.pk, "name": "imported",
        "archive": _archive(tmp_path, manifest)}, format="multipart")
    assert response.status_code == 400, response.content[:500]
    assert any(e.startswith(expected) for e in response.json()["errors"]), response.json()
    assert not GenerationRun.objects.exists()


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_the_cli_refuses_a_bad_manifest_in_one_message(project, catalog, tmp_path, case):
    manifest, expected = BAD_MANIFESTS[case]
    path = tmp_path / "run.zip"
    path.write_bytes(_archive(tmp_path, manifest).getvalue())
    with pytest.raises(CommandError, match="nothing was imported") as refused:
        call_command("import_images", str(path), "--project", project.slug, "--run", "r",
                     "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set", "shapes",
                     stdout=StringIO())
    assert expected in str(refused.value)
    assert not GenerationRun.objects.exists()
