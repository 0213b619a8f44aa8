"""Names stored before the name rule (:func:`evalhub.core.limits.name_text`): finding them and
mending them (``manage.py check_names``, docs/operations.md "Names stored before the rule").

Every input path applies the rule now, but rows written before it were left as they were: a
decomposed "café" (``e`` + U+0301) beside a newly typed NFC twin, a name holding a bidi
override or ESC that garbles pages and terminals. :func:`name_problem` and
:func:`mended_name` are pure; :func:`names_against_rule` reads every stored name and
:func:`names_mend` writes the mended ones, one transaction per object, as a rename does (the
API's update saves the field and nothing else: leaderboards notice a rename through their
fingerprint, which reads the names, docs/leaderboards.md). A project's slug is mended like its
other names: the API renames slugs too (``PATCH /api/v1/projects/<id>/``), and URLs name
projects by id.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from evalhub.campaigns.models import Campaign

# The rule's own character sets, so that the mend removes exactly what name_text refuses and
# keeps what it keeps.
from evalhub.core.limits import (
    NAME_FIELDS,
    NAME_FLAG_TAGS,
    NAME_JOINERS,
    NAME_REFUSED_CATEGORIES,
    name_text,
)
from evalhub.core.text import terminal_text
from evalhub.projects.models import Project
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, ReferenceSet

#: The problem of a name the rule accepts but changes.
NOT_NFC = "not NFC"

# What the rule refuses (name_text's categories) and lone surrogates, which text_problem
# refuses (category Cs; no database stores one, but the pure functions take any str).
_REFUSED = frozenset(NAME_REFUSED_CATEGORIES) | {"Cs"}


@dataclass(frozen=True)
class NamedKind:
    """A model whose ``NAME_FIELDS`` columns are names, as the operator reads it."""

    model: type[models.Model]
    kind: str
    #: The lookup from an object to its project's slug.
    project_slug: str

    @property
    def fields(self) -> list[models.Field]:
        return [field for field in self.model._meta.concrete_fields if field.name in NAME_FIELDS]


#: Every model with a name (tests/core/test_check_names.py checks that none is missing).
NAMED_KINDS: tuple[NamedKind, ...] = (
    NamedKind(Project, "project", "slug"),
    NamedKind(GenModel, "model", "project__slug"),
    NamedKind(Checkpoint, "checkpoint", "model__project__slug"),
    NamedKind(PromptSet, "prompt set", "project__slug"),
    NamedKind(GenerationRun, "run", "project__slug"),
    NamedKind(ReferenceSet, "reference set", "project__slug"),
    NamedKind(Campaign, "campaign", "project__slug"),
)


def name_problem(value: str) -> str | None:
    """Why ``value`` does not follow the name rule: the rule's refusal in its words, or
    :data:`NOT_NFC` when the rule accepts it only once normalised; None when it follows it."""
    try:
        checked = name_text(value)
    except ValueError as exc:
        return str(exc)
    return None if checked == value else NOT_NFC


def mended_name(value: str) -> str:
    """``value`` made to follow the name rule with the least change: the characters the rule
    refuses removed (a joiner kept where the rule keeps it, between two visible characters; the
    tags of a subdivision flag kept), leading and trailing whitespace trimmed as every input
    path trims it, then NFC-normalised (after the removals: ``e`` ESC U+0301 composes only once
    the ESC is gone). The result may still be unusable (empty, too long, taken):
    :func:`names_mend` checks that."""
    # Tokens: a subdivision flag as one (its tags are kept), every other character alone.
    tokens: list[str] = []
    position = 0
    for flag in NAME_FLAG_TAGS.finditer(value):
        tokens.extend(value[position:flag.start()])
        tokens.append(flag.group())
        position = flag.end()
    tokens.extend(value[position:])
    tokens = _trimmed([token for token in tokens
                       if len(token) > 1 or token in NAME_JOINERS
                       or unicodedata.category(token) not in _REFUSED])

    def visible(index: int) -> bool:
        return (0 <= index < len(tokens) and tokens[index] not in NAME_JOINERS
                and not tokens[index].isspace())

    # A joiner stays where both neighbours are visible; removing the others leaves every kept
    # joiner's neighbours as they were, so one pass is enough.
    tokens = _trimmed([token for index, token in enumerate(tokens)
                       if token not in NAME_JOINERS
                       or (visible(index - 1) and visible(index + 1))])
    return unicodedata.normalize("NFC", "".join(tokens))


def _trimmed(tokens: list[str]) -> list[str]:
    start, end = 0, len(tokens)
    while start < end and tokens[start].isspace():
        start += 1
    while end > start and tokens[end - 1].isspace():
        end -= 1
    return tokens[start:end]


@dataclass(frozen=True)
class NameFinding:
    """A stored name that does not follow the rule."""

    named: NamedKind
    pk: int
    project_slug: str
    field: str
    value: str
    problem: str

    def describe(self) -> str:
        """``run 12, project demo: name "caf\\u202e"``: the name escaped for a terminal."""
        project = ("" if self.named.model is Project
                   else f", project {terminal_text(self.project_slug)}")
        return (f'{self.named.kind} {self.pk}{project}: {self.field} '
                f'"{terminal_text(self.value)}"')


@dataclass(frozen=True)
class NameScan:
    checked: int
    findings: list[NameFinding]


def names_against_rule() -> NameScan:
    """Every stored name that :func:`name_text` would refuse or change, in the order of
    :data:`NAMED_KINDS` then by id, and how many names were read. Read in Python, one column at
    a time: the rule is Python's (Unicode categories, NFC), which neither database spells the
    same way, and names are few next to images."""
    checked = 0
    findings = []
    for named in NAMED_KINDS:
        for field in named.fields:
            rows = (named.model.objects.order_by("pk")
                    .values_list("pk", field.attname, named.project_slug)
                    .iterator(chunk_size=2000))
            for pk, value, project_slug in rows:
                checked += 1
                problem = name_problem(value)
                if problem:
                    findings.append(NameFinding(named, pk, project_slug, field.name, value,
                                                problem))
    return NameScan(checked=checked, findings=findings)


@dataclass(frozen=True)
class NameMend:
    """What :func:`names_mend` did with a finding: ``mended`` is the name stored, or None with
    ``refusal`` saying why a person has to rename it."""

    finding: NameFinding
    mended: str | None = None
    refusal: str | None = None


def names_mend(findings: Iterable[NameFinding]) -> list[NameMend]:
    """Store the :func:`mended_name` of each finding that can take it, one transaction per
    object (a project's name and slug together), the row locked and read again first: a name
    renamed since the scan is mended from what it is now, or left alone when it follows the
    rule by then. A mended name must follow the rule, be non-empty, pass its column's own
    validators (length, a slug's characters) and take no name another object has under the
    model's unique constraints; otherwise the name is left as it is and the refusal says why.
    Findings of objects deleted since the scan are left out."""
    by_object: dict[tuple[type[models.Model], int], list[NameFinding]] = {}
    for finding in findings:
        by_object.setdefault((finding.named.model, finding.pk), []).append(finding)
    results: list[NameMend] = []
    for (model, pk), group in by_object.items():
        changed: list[NameMend] = []
        try:
            with transaction.atomic():
                row = model.objects.select_for_update().filter(pk=pk).first()
                if row is None:
                    continue
                for finding in group:
                    current = getattr(row, finding.field)
                    if name_problem(current) is None:
                        continue
                    mended, refusal = _mend(row, finding, current)
                    if refusal:
                        results.append(NameMend(finding, refusal=refusal))
                        continue
                    setattr(row, finding.field, mended)
                    changed.append(NameMend(finding, mended=mended))
                if changed:
                    # As the API's rename saves it (serializer.save()): signals and all.
                    row.save(update_fields=[mend.finding.field for mend in changed])
        except IntegrityError as exc:
            # A constraint the checks above do not read (a condition, an expression), or a
            # name taken by another request in between: nothing of this object was stored.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
            changed = [NameMend(mend.finding, refusal=f"the database refused "
                                f'"{terminal_text(mend.mended or "")}": {reason}')
                       for mend in changed]
        results.extend(changed)
    return results


def _mend(row: models.Model, finding: NameFinding, current: str) -> tuple[str, str | None]:
    """The mended name of ``row``'s field and why it cannot be stored (None: it can)."""
    mended = mended_name(current)
    shown = f'"{terminal_text(mended)}"'
    if not mended:
        return mended, "empty once mended"
    try:
        name_text(mended)
    except ValueError as exc:  # mended_name removes what the rule refuses: a defect if seen
        return mended, f"{shown} once mended, and still: {exc}"
    field = row._meta.get_field(finding.field)
    try:
        field.run_validators(mended)
    except ValidationError as exc:
        return mended, f"{shown} once mended, which the field refuses: {' '.join(exc.messages)}"
    taken_by = _taken_by(row, field, mended)
    if taken_by is not None:
        return mended, f"would equal {finding.named.kind} {taken_by}'s {field.name} ({shown})"
    return mended, None


def _taken_by(row: models.Model, field: models.Field, value: str) -> int | None:
    """The id of another object that already has ``value`` under one of the model's unique
    constraints holding ``field`` (the field's own ``unique``, ``unique_together``, every
    ``UniqueConstraint`` without a condition), or None."""
    meta = row._meta
    together: list[tuple[str, ...]] = [(field.name,)] if field.unique else []
    together += [tuple(names) for names in meta.unique_together if field.name in names]
    together += [tuple(constraint.fields) for constraint in meta.total_unique_constraints
                 if field.name in constraint.fields]
    for names in together:
        lookup = {}
        for name in names:
            column = meta.get_field(name)
            lookup[column.attname] = value if name == field.name else getattr(row, column.attname)
        if any(v is None for v in lookup.values()):  # NULLs never equal one another
            continue
        other = (type(row).objects.filter(**lookup).exclude(pk=row.pk)
                 .order_by("pk").values_list("pk", flat=True).first())
        if other is not None:
            return other
    return None
