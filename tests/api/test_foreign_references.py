"""Every writable relation field of the API refuses an object of another project.

The fields are not listed by hand: they are found by walking the API the way a client sees it,
the OpenAPI operations drf-spectacular generates (request body of every operation, custom actions
and plain APIViews included) and the viewsets of the routers (the serializer each write action
uses). Every field of those serializers that is a relation and not read-only is one case:

* **A, the worst case**: a user who is an owner of both projects, so can see both objects, writes
  an object of project 1 that points at an object of project 2. The answer is a 4xx, no row in
  any EvalHub table is created or changed, and the answer names nothing of project 2.
* **B, an outsider to project 2**: an owner of project 1 only sends the id of project 2's
  object. The answer is exactly the answer for an id that was never used (status and body, the
  id replaced), so it tells nothing about whether the object exists.

Each operation has a recipe: a body that is accepted when everything is in project 1 (tested
too, so that a refusal is the reference's doing and not a broken body). A relation the walk finds
without a recipe fails its cases: a new writable relation cannot go untested.

Behind the API, the services that every surface calls (run_create, campaign_create,
gold_task_add, metric_job_create) refuse a foreign object with one message naming the field
only, and the commands that create runs look names up inside ``--project`` only, so another
project's prompt set is answered like one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db.models import Max, Model
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import build_mock_request
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIClient

from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.services import campaign_create
from evalhub.evaluation.services import metric_job_create
from evalhub.projects.models import Project, Role
from evalhub.projects.references import (
    PROJECT_PATHS,
    ForeignReference,
    ScopedPrimaryKeyRelatedField,
)
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import GenerationRun, ReferenceSet
from evalhub.runs.services import run_create
from tests.builders import CampaignWorld, build_campaign
from tests.factories import MembershipFactory, UserFactory, png_bytes

API = "/api/v1/"
WRITE_ACTIONS = {"create": "POST", "update": "PUT", "partial_update": "PATCH"}
# Every name of project 2 carries this marker, so one search finds any of them in an answer.
SECRET = "p2secret"


# --- The walk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    """One writable relation field of one write operation."""

    method: str
    path: str  # the OpenAPI path template, e.g. "/api/v1/runs/{id}/"
    field: str
    model: type[Model]  # what the field points at
    many: bool
    siblings: tuple[str, ...]  # the other writable relation fields of the same body
    scoped: bool  # the field accepts only objects the caller can see

    @property
    def detail(self) -> bool:
        return "{" in self.path

    @property
    def label(self) -> str:
        """``runs.prompt_set[PATCH]``, ``campaigns/gold.image_a[POST]``."""
        parts = [p for p in self.path.removeprefix(API).strip("/").split("/")
                 if not p.startswith("{")]
        return f"{'/'.join(parts)}.{self.field}[{self.method}]"


def _relation_fields(serializer: serializers.BaseSerializer
                     ) -> dict[str, serializers.Field]:
    return {name: f for name, f in serializer.fields.items()
            if isinstance(f, serializers.RelatedField | serializers.ManyRelatedField)
            and not f.read_only}


def _relations_of(method: str, path: str, serializer: Any) -> Iterator[Relation]:
    if serializer is None:
        return
    instance = serializer() if isinstance(serializer, type) else serializer
    if not isinstance(instance, serializers.BaseSerializer):
        return  # a plain type or a file: no fields
    fields = _relation_fields(instance)
    for name, relation in fields.items():
        many = isinstance(relation, serializers.ManyRelatedField)
        single = relation.child_relation if many else relation
        yield Relation(method=method, path=path, field=name, model=single.queryset.model,
                       many=many, siblings=tuple(sorted(set(fields) - {name})),
                       scoped=isinstance(single, ScopedPrimaryKeyRelatedField))


def _from_schema() -> Iterator[Relation]:
    """Request bodies of every operation of the generated OpenAPI schema."""
    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    with_body = {(path, method.upper()) for path, operations in schema["paths"].items()
                 for method, operation in operations.items() if "requestBody" in operation}
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        path = generator.coerce_path(path, method, view)
        if (path, method) not in with_body:
            continue
        view.request = build_mock_request(method, path, view, None)
        yield from _relations_of(method, path, view.schema.get_request_serializer())


def _from_routers() -> Iterator[Relation]:
    """The serializer each write action of every routed viewset uses (where it differs from
    what the schema documents, both are walked)."""
    import_module(settings.ROOT_URLCONF)  # first: it registers the id converter they use
    from evalhub.config import api_urls

    for prefix, viewset, _basename in api_urls.router.registry:
        for action, method in WRITE_ACTIONS.items():
            if not hasattr(viewset, action) or \
                    method.lower() not in viewset.http_method_names:
                continue
            view = viewset()
            view.action = action
            view.request = None
            view.format_kwarg = None
            view.kwargs = {}
            path = f"{API}{prefix}/" + ("" if action == "create" else "{id}/")
            yield from _relations_of(method, path, view.get_serializer_class())


def writable_relations() -> list[Relation]:
    found: dict[tuple[str, str, str], Relation] = {}
    for relation in [*_from_schema(), *_from_routers()]:
        found.setdefault((relation.method, relation.path, relation.field), relation)
    return sorted(found.values(), key=lambda r: r.label)


RELATIONS = writable_relations()
# Case A needs something of project 1 to point from: the object a detail route writes, or
# another relation of the body. A create whose only relation names its project (a model in a
# project, a membership) has nothing to cross: it is case B that covers it.
CROSSABLE = [r for r in RELATIONS if r.detail or r.siblings]


def test_the_walk_finds_the_known_relations():
    """So that the walk cannot silently find nothing."""
    labels = {r.label for r in RELATIONS}
    expected = {
        "runs.checkpoint[POST]", "runs.prompt_set[POST]",
        "runs.checkpoint[PATCH]", "runs.prompt_set[PATCH]",
        "campaigns.project[POST]", "campaigns.runs[POST]",
        "campaigns/gold.image_a[POST]", "campaigns/gold.image_b[POST]",
        "metric-jobs.run[POST]", "metric-jobs.reference_set[POST]",
        "models.project[POST]", "models.project[PUT]", "models.project[PATCH]",
        "checkpoints.model[POST]", "checkpoints.model[PUT]", "checkpoints.model[PATCH]",
        "prompt-sets.project[POST]", "prompt-sets.project[PUT]", "prompt-sets.project[PATCH]",
        "prompt-sets/import.project[POST]",
        "reference-sets.project[POST]", "reference-sets.project[PUT]",
        "reference-sets.project[PATCH]",
        "memberships.project[POST]",
    }
    assert expected <= labels, sorted(expected - labels)
    assert {"campaigns.runs[POST]", "runs.prompt_set[PATCH]"} <= {r.label for r in CROSSABLE}


@pytest.mark.parametrize("relation", RELATIONS, ids=lambda r: r.label)
def test_every_writable_relation_accepts_only_objects_the_caller_can_see(relation):
    assert relation.scoped, (
        f"{relation.label} is a {relation.model.__name__} relation that is not a "
        "ScopedPrimaryKeyRelatedField: another project's object would be told apart from a "
        "missing one.")
    assert relation.model._meta.label in PROJECT_PATHS


# --- Two projects --------------------------------------------------------------------------


@dataclass
class Worlds:
    mine: CampaignWorld  # project 1
    theirs: CampaignWorld  # project 2, every name marked SECRET
    both: Any  # owner of both projects
    mine_only: Any  # owner of project 1 only
    candidate: Any  # a user `both` may add to a project (they share project 2)
    reference_sets: dict[int, ReferenceSet] = field(default_factory=dict)  # by project id

    @property
    def project(self) -> Project:
        return self.mine.campaign.project

    def in_project(self, model: type[Model], project: Project) -> Model:
        """The first object of ``model`` in ``project``."""
        path = PROJECT_PATHS[model._meta.label]
        return model.objects.filter(**{path: project.pk}).order_by("pk").first()

    def foreign(self, model: type[Model]) -> Model:
        obj = self.in_project(model, self.theirs.campaign.project)
        assert obj is not None, f"project 2 has no {model.__name__}"
        return obj


def _reference_set(project: Project, name: str) -> ReferenceSet:
    reference_set = ReferenceSet.objects.create(project=project, name=name)
    reference_set.images.add(blob_store_bytes(png_bytes((9, 90, 190)), name=f"{name}.png"))
    return reference_set


@pytest.fixture
def worlds(db) -> Worlds:
    mine = build_campaign(runs=2, prompts=2, annotators=0)
    theirs = build_campaign(
        runs=2, prompts=2, annotators=0, name=f"{SECRET}-campaign",
        run_names=[f"{SECRET}-run-0", f"{SECRET}-run-1"], model_name=f"{SECRET}-model",
        checkpoint_names=[f"{SECRET}-step-0", f"{SECRET}-step-1"],
        prompt_text=lambda i: f"{SECRET} prompt {i}")
    project = theirs.campaign.project
    Project.objects.filter(pk=project.pk).update(name=f"{SECRET} project", slug=f"{SECRET}-x")
    PromptSet.objects.filter(project=project).update(name=f"{SECRET}-prompts")
    both = UserFactory()
    for world in (mine, theirs):
        MembershipFactory(project=world.campaign.project, user=both, role=Role.OWNER)
    candidate = MembershipFactory(project=project, role=Role.ANNOTATOR).user
    reference_sets = {
        mine.campaign.project_id: _reference_set(mine.campaign.project, "mine-reference"),
        project.pk: _reference_set(project, f"{SECRET}-reference"),
    }
    return Worlds(mine, theirs, both, mine.owner, candidate, reference_sets)


# --- Recipes: a write of project 1 that is accepted as it is -------------------------------


@dataclass
class Write:
    url: str
    body: dict[str, Any]
    instance: Model | None = None  # the object a detail route changes
    multipart: bool = False


def _run(w: Worlds) -> GenerationRun:
    return w.mine.runs[0]


def _checkpoint_body(w: Worlds) -> dict[str, Any]:
    return {"model": _run(w).checkpoint.model_id, "name": "step-new", "training_step": 5}


def _same_prompt_images(w: Worlds) -> tuple[Any, Any]:
    first, second = w.mine.runs
    image_a = first.images.order_by("prompt__position", "seed").first()
    return image_a, second.images.get(prompt=image_a.prompt, seed=image_a.seed)


def _gold(w: Worlds) -> Write:
    image_a, image_b = _same_prompt_images(w)
    # b before a: the built campaign already pairs (a, b); the gold pair is a new task.
    return Write(f"{API}campaigns/{w.mine.campaign.pk}/gold/",
                 {"image_a": image_b.pk, "image_b": image_a.pk, "answer": "a"})


def _prompt_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("prompts.txt", b"a blue square\na green circle\n",
                              content_type="text/plain")


RECIPES: dict[tuple[str, str], Callable[[Worlds], Write]] = {
    ("POST", f"{API}runs/"): lambda w: Write(f"{API}runs/", {
        "checkpoint": _run(w).checkpoint_id, "prompt_set": _run(w).prompt_set_id,
        "name": "run-new"}),
    ("PATCH", f"{API}runs/{{id}}/"): lambda w: Write(
        f"{API}runs/{_run(w).pk}/", {"prompt_set": _run(w).prompt_set_id,
                                     "checkpoint": _run(w).checkpoint_id}, _run(w)),
    ("POST", f"{API}campaigns/"): lambda w: Write(f"{API}campaigns/", {
        "project": w.project.pk, "name": "campaign-new", "runs": [r.pk for r in w.mine.runs]}),
    ("POST", f"{API}campaigns/{{id}}/gold/"): _gold,
    ("POST", f"{API}metric-jobs/"): lambda w: Write(f"{API}metric-jobs/", {
        "run": _run(w).pk, "metrics": ["fid"],
        "reference_set": w.reference_sets[w.project.pk].pk}),
    ("POST", f"{API}models/"): lambda w: Write(f"{API}models/", {
        "project": w.project.pk, "name": "model-new"}),
    ("PUT", f"{API}models/{{id}}/"): lambda w: Write(
        f"{API}models/{_run(w).checkpoint.model_id}/",
        {"project": w.project.pk, "name": "model-renamed"}, _run(w).checkpoint.model),
    ("PATCH", f"{API}models/{{id}}/"): lambda w: Write(
        f"{API}models/{_run(w).checkpoint.model_id}/", {"project": w.project.pk},
        _run(w).checkpoint.model),
    ("POST", f"{API}checkpoints/"): lambda w: Write(f"{API}checkpoints/", _checkpoint_body(w)),
    ("PUT", f"{API}checkpoints/{{id}}/"): lambda w: Write(
        f"{API}checkpoints/{_run(w).checkpoint_id}/", _checkpoint_body(w), _run(w).checkpoint),
    ("PATCH", f"{API}checkpoints/{{id}}/"): lambda w: Write(
        f"{API}checkpoints/{_run(w).checkpoint_id}/",
        {"model": _run(w).checkpoint.model_id}, _run(w).checkpoint),
    ("POST", f"{API}prompt-sets/"): lambda w: Write(f"{API}prompt-sets/", {
        "project": w.project.pk, "name": "prompts-new"}),
    ("PUT", f"{API}prompt-sets/{{id}}/"): lambda w: Write(
        f"{API}prompt-sets/{_run(w).prompt_set_id}/",
        {"project": w.project.pk, "name": "prompts-renamed"}, _run(w).prompt_set),
    ("PATCH", f"{API}prompt-sets/{{id}}/"): lambda w: Write(
        f"{API}prompt-sets/{_run(w).prompt_set_id}/", {"project": w.project.pk},
        _run(w).prompt_set),
    ("POST", f"{API}prompt-sets/import/"): lambda w: Write(f"{API}prompt-sets/import/", {
        "project": w.project.pk, "name": "imported", "file": _prompt_file()}, multipart=True),
    ("POST", f"{API}reference-sets/"): lambda w: Write(f"{API}reference-sets/", {
        "project": w.project.pk, "name": "reference-new"}),
    ("PUT", f"{API}reference-sets/{{id}}/"): lambda w: Write(
        f"{API}reference-sets/{w.reference_sets[w.project.pk].pk}/",
        {"project": w.project.pk, "name": "reference-renamed"},
        w.reference_sets[w.project.pk]),
    ("PATCH", f"{API}reference-sets/{{id}}/"): lambda w: Write(
        f"{API}reference-sets/{w.reference_sets[w.project.pk].pk}/",
        {"project": w.project.pk}, w.reference_sets[w.project.pk]),
    ("POST", f"{API}memberships/"): lambda w: Write(f"{API}memberships/", {
        "project": w.project.pk, "username": w.candidate.username, "role": "annotator"}),
}


def _recipe(relation: Relation, worlds: Worlds) -> Write:
    recipe = RECIPES.get((relation.method, relation.path))
    assert recipe is not None, f"no recipe for {relation.method} {relation.path}: add one"
    return recipe(worlds)


def _pointing_at(write: Write, relation: Relation, pk: int) -> dict[str, Any]:
    """The recipe's body with ``relation`` pointing at ``pk``: a PATCH sends that field
    alone (nothing else in the body to be refused for), a list keeps one object of project 1
    beside it (the mixed list is the worst case)."""
    mine = list(write.body.get(relation.field) or [])[:1] if relation.many else []
    body = {} if relation.method == "PATCH" else dict(write.body)
    if relation.many:
        body[relation.field] = [*mine, pk]
    else:
        body[relation.field] = pk
    return body


def _send(api: APIClient, relation: Relation, write: Write, body: dict[str, Any]) -> Response:
    send = getattr(api, relation.method.lower())
    return send(write.url, body, format="multipart" if write.multipart else "json")


def _database_state(instance: Model | None) -> dict[str, Any]:
    """Row counts of every EvalHub table, and the written object's columns."""
    state: dict[str, Any] = {
        model._meta.label: model.objects.count()
        for model in apps.get_models() if model.__module__.startswith("evalhub.")}
    if instance is not None:
        state["instance"] = type(instance).objects.filter(pk=instance.pk).values().get()
    return state


def _missing_pk(model: type[Model]) -> int:
    return (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1_000_003


def _without_id(response: Response, pk: int) -> str:
    return re.sub(rf"\b{pk}\b", "<id>", response.content.decode())


# --- The cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("relation", RELATIONS, ids=lambda r: r.label)
def test_the_recipe_is_accepted_when_everything_is_in_one_project(api, worlds, relation):
    write = _recipe(relation, worlds)
    api.force_authenticate(worlds.both)
    response = _send(api, relation, write, write.body)
    assert 200 <= response.status_code < 300, response.content


@pytest.mark.parametrize("relation", CROSSABLE, ids=lambda r: r.label)
def test_a_member_of_both_projects_cannot_point_at_the_other_project(api, worlds, relation):
    write = _recipe(relation, worlds)
    foreign = worlds.foreign(relation.model)
    before = _database_state(write.instance)
    api.force_authenticate(worlds.both)
    response = _send(api, relation, write, _pointing_at(write, relation, foreign.pk))
    assert 400 <= response.status_code < 500, response.content
    assert _database_state(write.instance) == before
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize("relation", RELATIONS, ids=lambda r: r.label)
def test_another_projects_id_is_answered_like_an_id_that_does_not_exist(api, worlds,
                                                                        relation):
    foreign = worlds.foreign(relation.model)
    missing = _missing_pk(relation.model)
    write = _recipe(relation, worlds)
    before = _database_state(write.instance)
    api.force_authenticate(worlds.mine_only)
    to_foreign = _send(api, relation, write, _pointing_at(write, relation, foreign.pk))
    write = _recipe(relation, worlds)  # a fresh upload for the second request
    to_missing = _send(api, relation, write, _pointing_at(write, relation, missing))
    assert 400 <= to_foreign.status_code < 500, to_foreign.content
    assert to_foreign.status_code == to_missing.status_code
    assert _without_id(to_foreign, foreign.pk) == _without_id(to_missing, missing)
    assert _database_state(write.instance) == before
    assert SECRET not in to_foreign.content.decode()


# --- The services every surface shares ----------------------------------------------------


def _foreign_gold_pair(w: Worlds) -> None:
    # Two images of one prompt, both of project 2: only the project check can refuse them.
    first, second = w.theirs.runs
    image_a = first.images.order_by("pk").first()
    image_b = second.images.get(prompt=image_a.prompt, seed=image_a.seed)
    gold_task_add(campaign=w.mine.campaign, image_a=image_a, image_b=image_b, answer="a")


SERVICES: dict[str, Callable[[Worlds], Any]] = {
    "run_create(prompt_set)": lambda w: run_create(
        checkpoint=_run(w).checkpoint, prompt_set=w.foreign(PromptSet), name="run-new"),
    "campaign_create(runs)": lambda w: campaign_create(
        project=w.project, name="campaign-new", runs=[_run(w), w.foreign(GenerationRun)]),
    "gold_task_add(image_a, image_b)": _foreign_gold_pair,
    "metric_job_create(reference_set)": lambda w: metric_job_create(
        run=_run(w), metrics=["fid"], reference_set=w.foreign(ReferenceSet)),
}


@pytest.mark.parametrize("call", sorted(SERVICES))
def test_the_services_refuse_a_foreign_object_naming_only_the_field(worlds, call):
    """What the API, the pages, the CLI and the demo call: the same refusal for all."""
    before = _database_state(None)
    with pytest.raises(ForeignReference) as refused:
        SERVICES[call](worlds)
    assert refused.value.message.endswith(": no such object in this project.")
    assert refused.value.details[0] in call
    assert SECRET not in str(refused.value)
    assert _database_state(None) == before


# --- The command line ----------------------------------------------------------------------


def _cli_generate(w: Worlds, prompt_set: str, _source: Any = None) -> list[str]:
    run = _run(w)
    return ["generate", "--project", w.project.slug, "--run", "cli-run",
            "--model", run.checkpoint.model.name, "--checkpoint", run.checkpoint.name,
            "--prompt-set", prompt_set, "--seeds", "0"]


CLI = {
    "generate": _cli_generate,
    # The same run options, without generate's own --seeds.
    "import_images": lambda w, prompt_set, source: [
        "import_images", str(source), *_cli_generate(w, prompt_set)[1:-2]],
}


@pytest.mark.parametrize("command", sorted(CLI))
def test_the_cli_refuses_a_prompt_set_of_another_project_like_a_missing_one(worlds, command,
                                                                           tmp_path):
    """The commands look names up inside --project and create runs through run_create, which
    checks the prompt set's project again; the refusal names no other project."""
    foreign = PromptSet.objects.get(project=worlds.theirs.campaign.project)
    before = _database_state(None)
    with pytest.raises(CommandError) as to_foreign:
        call_command(*CLI[command](worlds, foreign.name, tmp_path))
    with pytest.raises(CommandError) as to_missing:
        call_command(*CLI[command](worlds, "never-made", tmp_path))
    assert str(to_foreign.value).replace(foreign.name, "<name>") == \
        str(to_missing.value).replace("never-made", "<name>")
    assert worlds.theirs.campaign.project.name not in str(to_foreign.value)
    assert _database_state(None) == before
