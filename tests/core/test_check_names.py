"""``manage.py check_names``: names stored before the name rule (core/limits.py ``name_text``),
listed, and mended with ``--fix`` where a mended name is free (core/names.py).

Legacy names are written with ``QuerySet.update``, which bypasses every input path's rule, as
the rows written before the rule existed did.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import models

from evalhub.core.limits import NAME_FIELDS, name_text
from evalhub.core.names import (
    NAMED_KINDS,
    NOT_NFC,
    mended_name,
    name_problem,
    names_against_rule,
    names_mend,
)
from evalhub.runs.models import GenerationRun, GenModel, ReferenceSet
from tests.factories import (
    CampaignFactory,
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ProjectFactory,
)

NFD_CAFE = "cafe\u0301"
NFC_CAFE = "caf\u00e9"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji: three joined by ZWJ
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


def legacy(obj: models.Model, **names: str) -> None:
    """Store ``names`` on ``obj`` as a row written before the rule: no input path's check."""
    type(obj).objects.filter(pk=obj.pk).update(**names)


def check_names(*arguments: str) -> tuple[int, str]:
    """The command's exit status (CommandError's returncode, as manage.py exits) and stdout."""
    out = StringIO()
    try:
        call_command("check_names", *arguments, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + f"[error] {exc}"
    return 0, out.getvalue()


def stored(obj: models.Model, field: str = "name") -> str:
    return getattr(type(obj).objects.get(pk=obj.pk), field)


# The pure rules.

def test_every_named_model_is_scanned():
    """Every EvalHub model with a name column (``NAME_FIELDS``) is in the scan, so a model
    added later cannot keep legacy names unseen."""
    named = {model for model in apps.get_models()
             if model.__module__.startswith("evalhub.")
             and any(isinstance(field, models.CharField) and field.name in NAME_FIELDS
                     for field in model._meta.concrete_fields)}
    assert named == {kind.model for kind in NAMED_KINDS}


@pytest.mark.parametrize(("value", "problem"), [
    ("caf\u00e9", None),
    (FAMILY + " team", None),
    (f"flag {ENGLAND}", None),
    ("  padded  ", None),  # trimmed by every input path, but not what the rule refuses
    (NFD_CAFE, NOT_NFC),
    ("evil\u202egnp.exe", "A name cannot contain the invisible formatting character U+202E."),
    ("\x1b[2Jwiped", "A name cannot contain the control character U+001B."),
    ("zero\u200bwidth", "A name cannot contain the invisible formatting character U+200B."),
    ("joiner\u200d", "A name can hold the joiner U+200D only between two visible characters."),
])
def test_name_problem_is_the_rules_refusal_or_not_nfc(value, problem):
    assert name_problem(value) == problem


@pytest.mark.parametrize(("value", "mended"), [
    (NFD_CAFE, NFC_CAFE),
    ("evil\u202egnp.exe", "evilgnp.exe"),
    ("\x1b[2Jwiped", "[2Jwiped"),
    ("zero\u200bwidth", "zerowidth"),
    ("line\u2028break", "linebreak"),
    (f"{FAMILY} team\x07", f"{FAMILY} team"),  # the emoji's joiners kept
    (f"{ENGLAND}\u200b win", f"{ENGLAND} win"),  # the flag's tags kept
    ("\u200d name \u200d", "name"),  # joiners at the ends, then the spaces they left
    ("a\u200d\u200db", "ab"),  # two together: neither is between visible characters
    ("a \u200db", "a b"),
    ("e\x1b\u0301", "\u00e9"),  # composed once the ESC between them is gone
    ("\u202e\u202c", ""),
    ("\t name\n", "name"),
])
def test_mended_name_removes_what_the_rule_refuses_and_keeps_the_rest(value, mended):
    assert mended_name(value) == mended
    if mended:
        assert name_text(mended) == mended


# The listing.

@pytest.mark.django_db
def test_names_that_follow_the_rule_pass_with_status_0():
    run = GenerationRunFactory(name=f"{FAMILY} run")  # project (name, slug), model, ckpt, set
    CampaignFactory(project=run.project)
    status, out = check_names()
    assert status == 0
    assert out == "all 7 names follow the rule\n"


@pytest.mark.django_db
def test_the_listing_names_each_legacy_name_escaped_with_what_is_wrong():
    run = GenerationRunFactory(name="fine")
    project = run.project
    legacy(run, name=NFD_CAFE)
    model = run.checkpoint.model
    legacy(model, name="evil\u202egnp")
    legacy(project, name="\x1b[2Jwiped")
    reference = ReferenceSet.objects.create(project=project, name="refs")
    legacy(reference, name="zero\u200bwidth")

    status, out = check_names()

    assert status == 1
    lines = out.splitlines()
    assert lines[:4] == [
        f'project {project.pk}: name "\\x1b[2Jwiped": '
        "A name cannot contain the control character U+001B.",
        f'model {model.pk}, project {project.slug}: name "evil\\u202egnp": '
        "A name cannot contain the invisible formatting character U+202E.",
        f'run {run.pk}, project {project.slug}: name "{NFD_CAFE}": not NFC',
        f'reference set {reference.pk}, project {project.slug}: name "zero\\u200bwidth": '
        "A name cannot contain the invisible formatting character U+200B.",
    ]
    assert lines[4] == ("[error] Names that do not follow the name rule: 4 of 7. "
                        "Run check_names --fix, then rename what it lists.")
    # Only read: nothing changed.
    assert stored(run) == NFD_CAFE and stored(project) == "\x1b[2Jwiped"
    assert "\x1b" not in out and "\u202e" not in out  # the terminal sees escapes only


@pytest.mark.django_db
def test_a_bad_slug_is_listed_and_its_project_escaped_on_its_objects_lines():
    model = GenModelFactory(name="fine")
    legacy(model.project, slug="demo\x1b")
    legacy(model, name="bad\x07")
    status, out = check_names()
    assert status == 1
    assert (f'project {model.project.pk}: slug "demo\\x1b": '
            "A name cannot contain the control character U+001B.") in out
    assert f'model {model.pk}, project demo\\x1b: name "bad\\x07"' in out


# --fix.

@pytest.mark.django_db
def test_fix_mends_each_legacy_name_and_a_second_run_finds_nothing():
    run = GenerationRunFactory(name="fine")
    project, model = run.project, run.checkpoint.model
    legacy(run, name=NFD_CAFE)
    legacy(model, name="evil\u202egnp")
    legacy(project, name="\x1b[2Jwiped ")
    campaign = CampaignFactory(project=project)
    legacy(campaign, name=f"{FAMILY}\u200b team")
    untouched = GenerationRunFactory(checkpoint=run.checkpoint, name=f"{FAMILY} twin")

    status, out = check_names("--fix")

    assert status == 0, out
    assert stored(run) == NFC_CAFE
    assert stored(model) == "evilgnp"
    assert stored(project) == "[2Jwiped"
    assert stored(campaign) == f"{FAMILY} team"  # the ZWJ sequence kept, the ZWSP gone
    assert stored(untouched) == f"{FAMILY} twin"
    assert f'mended run {run.pk}, project {project.slug}: name "{NFD_CAFE}" -> "{NFC_CAFE}"' \
        in out
    assert f'mended model {model.pk}, project {project.slug}: name "evil\\u202egnp" -> ' \
           '"evilgnp"' in out
    assert out.splitlines()[-1] == "mended 4 names; all 9 names follow the rule"

    assert check_names() == (0, "all 9 names follow the rule\n")
    assert check_names("--fix") == (0, "all 9 names follow the rule\n")


@pytest.mark.django_db
def test_fix_refuses_a_mend_that_would_take_another_objects_name():
    """The NFD "café" beside its NFC twin in the same project: the unique (project, name) of
    runs would refuse it; it is left as it is, and listed for a person to rename."""
    twin = GenerationRunFactory(name=NFC_CAFE)
    legacy_run = GenerationRunFactory(checkpoint=twin.checkpoint, name="legacy")
    legacy(legacy_run, name=NFD_CAFE)
    # Another project's run of that name is no collision (unique per project).
    elsewhere = GenerationRunFactory(name="elsewhere")
    legacy(elsewhere, name=NFD_CAFE)

    status, out = check_names("--fix")

    assert status == 1
    assert stored(legacy_run) == NFD_CAFE
    assert stored(twin) == NFC_CAFE
    assert stored(elsewhere) == NFC_CAFE
    assert (f'not mended run {legacy_run.pk}, project {twin.project.slug}: name "{NFD_CAFE}": '
            f'would equal run {twin.pk}\'s name ("{NFC_CAFE}")') in out
    assert out.splitlines()[-1] == \
        "[error] 1 name could not be mended: rename it (listed above)."

    status, out = check_names()
    assert status == 1
    assert out.splitlines()[0] == \
        f'run {legacy_run.pk}, project {twin.project.slug}: name "{NFD_CAFE}": not NFC'
    assert len(out.splitlines()) == 2

    GenerationRun.objects.filter(pk=legacy_run.pk).update(name="renamed by a person")
    assert check_names()[0] == 0


@pytest.mark.django_db
def test_two_legacy_names_that_mend_alike_take_it_once():
    """The first mended takes the name; the second would equal it and is listed."""
    first = CheckpointFactory(name="x")
    second = CheckpointFactory(model=first.model, name="y")
    legacy(first, name="step\x1b")
    legacy(second, name="step\u200b")
    # Another model's checkpoint may share the name (unique per model).
    other = CheckpointFactory(name="z")
    legacy(other, name="step\u202e")

    status, out = check_names("--fix")

    assert status == 1
    assert stored(first) == "step" and stored(other) == "step"
    assert stored(second) == "step\u200b"
    assert f"would equal checkpoint {first.pk}'s name" in out


@pytest.mark.django_db
def test_fix_lists_a_name_empty_once_mended_and_leaves_it():
    model = GenModelFactory()
    legacy(model, name="\u202e\u202c ")
    status, out = check_names("--fix")
    assert status == 1
    assert (f'not mended model {model.pk}, project {model.project.slug}: '
            'name "\\u202e\\u202c ": empty once mended') in out
    assert stored(model) == "\u202e\u202c "


@pytest.mark.django_db
def test_fix_mends_a_projects_slug_when_it_stays_a_free_slug():
    """Slugs are renamed through the API too (PATCH): a mended slug is stored when it is still
    a slug and no other project's; otherwise it is listed with the reason."""
    fixable, decomposed, taken = ProjectFactory(), ProjectFactory(), ProjectFactory()
    legacy(fixable, slug="lab\x1b", name="Lab\u200b")
    legacy(decomposed, slug=NFD_CAFE)
    ProjectFactory(slug="demo")
    legacy(taken, slug="demo\u202e")

    status, out = check_names("--fix")

    assert status == 1
    assert (stored(fixable, "slug"), stored(fixable)) == ("lab", "Lab")
    assert stored(decomposed, "slug") == NFD_CAFE
    assert f'not mended project {decomposed.pk}: slug "{NFD_CAFE}": "{NFC_CAFE}" once mended, ' \
           "which the field refuses: Enter a valid “slug”" in out
    assert stored(taken, "slug") == "demo\u202e"
    assert "would equal project" in out and "'s slug (\"demo\")" in out


@pytest.mark.django_db
def test_fix_lists_a_name_too_long_once_normalised():
    """NFC can lengthen a name (U+0958 has no composed form: two characters): the column's
    length is checked on the mended name, which is listed, not cut."""
    model = GenModelFactory()
    legacy(model, name="\u0958" * 101 + "\x1b")
    status, out = check_names("--fix")
    assert status == 1
    assert ("once mended, which the field refuses: Ensure this value has at most 200 "
            "characters (it has 202).") in out
    assert stored(model) == "\u0958" * 101 + "\x1b"


@pytest.mark.django_db
def test_a_name_renamed_since_the_scan_is_mended_from_what_it_is_now():
    first, second = GenModelFactory(), GenModelFactory()
    legacy(first, name="old\x1b")
    legacy(second, name="also\x1b")
    findings = names_against_rule().findings
    GenModel.objects.filter(pk=first.pk).update(name="renamed")  # a person, meanwhile
    GenModel.objects.filter(pk=second.pk).update(name="changed\u200b")

    results = names_mend(findings)

    assert stored(first) == "renamed"
    assert stored(second) == "changed"
    assert [(r.finding.pk, r.mended) for r in results] == [(second.pk, "changed")]


@pytest.mark.django_db
def test_an_object_deleted_since_the_scan_is_left_out():
    model = GenModelFactory()
    legacy(model, name="gone\x1b")
    findings = names_against_rule().findings
    model.delete()
    assert names_mend(findings) == []


@pytest.mark.django_db
def test_a_name_the_database_refuses_is_listed_and_nothing_of_its_object_stored(monkeypatch):
    """A constraint the checks do not read, or a name taken by another request between the
    check and the save: the unique constraint refuses it, and the object keeps its names."""
    twin = GenModelFactory(name="step")
    model = GenModelFactory(project=twin.project, name="x")
    legacy(model, name="step\x1b")
    monkeypatch.setattr("evalhub.core.names._taken_by", lambda row, field, value: None)

    status, out = check_names("--fix")

    assert status == 1
    assert f'not mended model {model.pk}, project {twin.project.slug}: name "step\\x1b": ' \
           'the database refused "step": duplicate key value violates unique constraint ' \
           '"unique_model"' in out
    assert stored(model) == "step\x1b"
