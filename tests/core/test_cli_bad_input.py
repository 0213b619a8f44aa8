"""Bad input to any management command gives a clear message, never a traceback.

``manage.py`` prints a ``CommandError`` as one line ("CommandError: ...") and exits 1; any other
exception is printed with its traceback. So each case calls the command (``call_command``, the
same ``handle`` and argument parser as the command line) and expects a ``CommandError`` whose
message says what is wrong; two cases run ``manage.py`` for real and read its stderr. A failed
import leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from evalhub.prompts.models import PromptSet
from evalhub.runs.models import GenerationRun, ReferenceSet
from tests.builders import build_campaign
from tests.conftest import REPO_ROOT
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

#: ``caf\xe9`` (Latin-1) as Python reads it from argv: the undecodable byte as a lone surrogate.
BAD = b"caf\xe9".decode("utf-8", "surrogateescape")


@pytest.fixture
def world(tmp_path):
    built = build_campaign(prompts=2, annotators=1, run_names=["run-a", "run-b"])
    (tmp_path / "folder").mkdir()
    (tmp_path / "prompts.csv").write_text("text\na red cube\n")
    (tmp_path / "broken.csv").write_text("text,category\na red cube,colour,extra\n")
    (tmp_path / "broken.jsonl").write_text('{"file": "a.png", "prompt": \n')
    (tmp_path / "images.zip").write_bytes(b"this is not a zip file")
    return built, tmp_path


def _cases(built, tmp: Path) -> list[tuple[str, list[str], str]]:
    """(command, arguments, what the message must say)."""
    slug = built.campaign.project.slug
    campaign = str(built.campaign.pk)
    prompt_set = built.runs[0].prompt_set.name
    model = built.runs[0].checkpoint.model.name
    checkpoint = built.runs[0].checkpoint.name
    new_run = ["--run", "new", "--model", model, "--checkpoint", checkpoint,
               "--prompt-set", prompt_set]
    return [
        # import_prompts
        ("import_prompts", [str(tmp / "missing.csv"), "--project", slug], "missing.csv"),
        ("import_prompts", [str(tmp / "folder"), "--project", slug, "--format", "csv"],
         "folder"),
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", "no-such-project"],
         "No project with slug 'no-such-project'"),
        ("import_prompts", [str(tmp / "broken.csv"), "--project", slug], "line"),
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", slug, "--name", "n" * 201],
         "--name"),
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", slug,
                            "--description", "nul\x00byte"], "--description"),
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", slug,
                            "--images", str(tmp / "images.zip")], "zip"),
        # import_images
        ("import_images", [str(tmp / "missing"), "--project", slug, *new_run], "does not exist"),
        ("import_images", [str(tmp / "folder"), "--project", slug, *new_run,
                           "--manifest", str(tmp / "missing.csv")], "missing.csv"),
        ("import_images", [str(tmp / "folder"), "--project", slug, *new_run,
                           "--manifest", str(tmp / "broken.jsonl")], "line 1"),
        ("import_images", [str(tmp / "folder"), "--project", slug, "--run", "n" * 201,
                           "--model", model, "--checkpoint", checkpoint,
                           "--prompt-set", prompt_set], "--run"),
        ("import_images", [str(tmp / "folder"), "--project", slug, "--run", "new",
                           "--model", model, "--checkpoint", "nope", "--prompt-set",
                           prompt_set], "No checkpoint"),
        # import_reference_set
        ("import_reference_set", [str(tmp / "missing"), "--project", slug, "--name", "refs"],
         "does not exist"),
        ("import_reference_set", [str(tmp / "images.zip"), "--project", slug, "--name", "refs"],
         "zip"),
        ("import_reference_set", [str(tmp / "folder"), "--project", slug, "--name", "r" * 201],
         "--name"),
        # generate
        ("generate", ["--project", slug, *new_run, "--seeds", "a-b"], "--seeds"),
        ("generate", ["--project", slug, *new_run, "--seeds", "0-99999999999"], "--seeds"),
        ("generate", ["--project", slug, *new_run, "--param", "steps"], "--param"),
        ("generate", ["--project", slug, "--run", "nope"], "No run 'nope'"),
        ("generate", ["--project", slug, *new_run, "--wait", "--timeout", "-1"], "--timeout"),
        # compute_metrics
        ("compute_metrics", ["--project", slug, "--run", "nope"], "No run"),
        ("compute_metrics", ["--project", slug, "--run", "run-a", "--metrics", "bogus"],
         "bogus"),
        ("compute_metrics", ["--project", slug, "--run", "run-a", "--reference-set", "nope"],
         "No reference set"),
        ("compute_metrics", ["--project", slug, "--run", "run-a", "--option", "x"],
         "--option"),
        # export_preferences
        ("export_preferences", ["999999", "--format", "raw-csv", "--output",
                                str(tmp / "o.csv")], "No campaign with id 999999"),
        ("export_preferences", [campaign, "--format", "raw-csv", "--output",
                                str(tmp / "no" / "such" / "dir" / "o.csv")], "does not exist"),
        ("export_preferences", [campaign, "--format", "raw-csv", "--output",
                                str(tmp / "o.csv"), "--since", "yesterday"], "yesterday"),
        ("export_preferences", [campaign, "--format", "raw-csv", "--output",
                                str(tmp / "o.csv"), "--batch-size", "0"], "batch"),
        ("export_preferences", [campaign, "--format", "raw-csv", "--output",
                                str(tmp / "o.csv"), "--category", "c" * 101], "--category"),
        ("export_preferences", [campaign, "--format", "nope", "--output", str(tmp / "o")],
         "--format"),
        # leaderboard, metric_judges
        ("leaderboard", ["999999"], "No campaign with id 999999"),
        ("leaderboard", [campaign, "--ab", "x"], "--ab must be two different run ids"),
        ("leaderboard", [campaign, "--ab", "1,999999"], "are not part of this campaign"),
        ("leaderboard", [campaign, "--since", "yesterday"], "--since must be"),
        ("leaderboard", [campaign, "--min-gold-accuracy", "lots"], "gold"),
        ("metric_judges", ["999999"], "No campaign with id 999999"),
        ("metric_judges", ["not-a-number"], "campaign_id"),
        # An argument with a byte that is not UTF-8 (``caf\xe9`` from a Latin-1 terminal)
        # reaches Python as a lone surrogate: refused in words, not a UnicodeEncodeError.
        ("register_checkpoint", ["--project", slug, "--model", BAD, "--checkpoint", "c"],
         "argument --model: not valid UTF-8 text"),
        ("register_checkpoint", ["--project", BAD, "--model", "m", "--checkpoint", "c"],
         "--project: not valid UTF-8 text"),
        ("register_checkpoint", ["--project", slug, "--model", "m", "--checkpoint", "c",
                                 "--param", f"note={BAD}"], "Surrogate characters"),
        ("generate", ["--project", slug, "--run", BAD], "argument --run: not valid UTF-8"),
        ("create_campaign", ["--project", slug, "--name", BAD, "--runs", "run-a", "run-b"],
         "argument --name: not valid UTF-8"),
        ("create_campaign", ["--project", slug, "--name", "c", "--runs", "run-a", BAD],
         "argument --runs: not valid UTF-8"),
        ("create_campaign", ["--project", slug, "--name", "c", "--runs", "run-a", "run-b",
                             "--annotators", BAD], "argument --annotators: not valid UTF-8"),
        ("export_preferences", [campaign, "--format", "raw-csv", "--output",
                                str(tmp / "o.csv"), "--category", BAD],
         "argument --category: not valid UTF-8"),
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", slug, "--name", BAD],
         "argument --name: not valid UTF-8"),
        # A name follows the name rule (docs/security.md), as in the API.
        ("import_prompts", [str(tmp / "prompts.csv"), "--project", slug, "--name",
                            "red\x1b[31m"], "A name cannot contain the control character"),
        ("import_reference_set", [str(tmp / "folder"), "--project", slug, "--name",
                                  "shapes\u200b-base"], "invisible formatting character U+200B"),
        ("create_campaign", ["--project", slug, "--name", " ", "--runs", "run-a", "run-b"],
         "a name cannot be empty"),
    ]


def test_every_bad_input_is_a_command_error_with_a_clear_message(world):
    built, tmp = world
    counts = (PromptSet.objects.count(), GenerationRun.objects.count(),
              ReferenceSet.objects.count())
    problems = []
    for command, args, says in _cases(built, tmp):
        label = f"{command} {' '.join(a[:40] for a in args)}"
        try:
            call_command(command, *args, stdout=io.StringIO())
        except CommandError as exc:
            if says not in str(exc):
                problems.append(f"{label}: message {str(exc)[:300]!r} does not say {says!r}")
        except Exception as exc:  # any other exception is a traceback
            problems.append(f"{label}: {type(exc).__name__}: {exc}"[:400])
        else:
            problems.append(f"{label}: accepted")
    assert not problems, "\n".join(problems)
    # Nothing half-made: no prompt set, run or reference set from a refused command.
    assert (PromptSet.objects.count(), GenerationRun.objects.count(),
            ReferenceSet.objects.count()) == counts


def test_manage_py_prints_the_message_and_no_traceback(tmp_path):
    db = settings.DATABASES["default"]  # the test database, where project "nope" is missing
    # An ASCII terminal: what it cannot show is printed as an escape, never a UnicodeEncodeError.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "ascii"}
    cases = [(["import_prompts", str(tmp_path / "p.csv"), "--project", "p", "--name", "n" * 201],
              "argument --name: longer than 200 characters")]
    if db["ENGINE"].endswith("postgresql"):  # a second process can reach the test database
        env["DATABASE_URL"] = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                               f"{db['PORT'] or 5432}/{db['NAME']}")
        cases.append((["import_prompts", str(tmp_path / "missing.csv"), "--project", "nope"],
                      "No project with slug 'nope'"))
    for args, says in cases:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        assert says in done.stderr, done.stderr


def test_names_given_on_the_command_line_are_trimmed_and_normalised_as_in_the_api(world):
    built, tmp = world
    slug = built.campaign.project.slug
    call_command("import_prompts", str(tmp / "prompts.csv"), "--project", f" {slug} ",
                 "--name", " cafe\u0301.csv ", stdout=io.StringIO())
    assert PromptSet.objects.filter(name="caf\u00e9.csv").exists()
    (tmp / "refs").mkdir()
    (tmp / "refs" / "a.png").write_bytes(png_bytes())
    call_command("import_reference_set", str(tmp / "refs"), "--project", slug,
                 "--name", " r ", stdout=io.StringIO())
    assert ReferenceSet.objects.filter(name="r").exists()


def test_a_prompt_sets_name_taken_from_its_file_name_follows_the_name_rule(world):
    built, tmp = world
    slug = built.campaign.project.slug
    # A file name written on macOS (NFD): the prompt set's name is the NFC one, as typed.
    (tmp / "cafe\u0301.txt").write_text("a red cube\n")
    call_command("import_prompts", str(tmp / "cafe\u0301.txt"), "--project", slug,
                 stdout=io.StringIO())
    assert PromptSet.objects.filter(name="caf\u00e9").exists()
    # A control character, or a byte that is not UTF-8: refused in words, --name suggested.
    before = PromptSet.objects.count()
    for stem, says in (("red\x1b[31m", "the control character U+001B"),
                       (BAD, "not valid UTF-8 text")):
        path = tmp / f"{stem}.txt"
        path.write_text("a red cube\n")
        with pytest.raises(CommandError) as refused:
            call_command("import_prompts", str(path), "--project", slug, stdout=io.StringIO())
        message = str(refused.value)
        assert "cannot be a prompt-set name" in message and says in message, message
        assert message.endswith("pass --name."), message
    assert PromptSet.objects.count() == before


def test_a_name_already_taken_is_said_once(world):
    built, tmp = world
    taken = built.runs[0].prompt_set.name
    with pytest.raises(CommandError) as refused:
        call_command("import_prompts", str(tmp / "prompts.csv"), "--project",
                     built.campaign.project.slug, "--name", taken, stdout=io.StringIO())
    assert str(refused.value) == (f"Project {built.campaign.project.slug} already has a "
                                  f"prompt set named {taken!r}.")


def test_output_an_ascii_terminal_cannot_show_is_escaped_not_a_crash():
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", "print('caf\u00e9')"],
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONIOENCODING": "ascii"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "caf\\xe9"
