"""Every text field the API writes refuses NUL characters and text over its length.

The fields are found, not listed: the request body of every operation of the OpenAPI schema
(custom actions and plain APIViews included) and the write serializers of every routed viewset.
Each writable ``CharField`` (and each list of them) must

* have a ``max_length``, equal to its model column's when it writes one (``CharField`` columns
  keep theirs, text columns get ``MAX_TEXT_CHARS``, evalhub/core/limits.py);
* answer 400 through the API, naming the field, when sent a NUL character or one character too
  many, with nothing stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import build_mock_request
from rest_framework import serializers

from evalhub.campaigns.serving.rating import rate_next
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.prompts.parsers import MAX_PROMPT_CHARS
from evalhub.runs.models import ReferenceSet
from tests.builders import build_campaign

WRITE_ACTIONS = {"create": "POST", "update": "PUT", "partial_update": "PATCH"}


@dataclass(frozen=True)
class TextField:
    method: str
    path: str  # OpenAPI template, e.g. "/api/v1/runs/{id}/"
    name: str
    max_length: int | None
    model_length: int | None  # the length of the model column it writes, when known
    multipart: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path} {self.name}"


def _model_column(serializer: serializers.BaseSerializer, name: str, field: serializers.Field,
                  view_model: type[models.Model] | None) -> models.Field | None:
    """The model field ``field`` writes: its source on a ModelSerializer's model, else the
    same-named field of the view's model (a plain input serializer mirroring it)."""
    model = getattr(getattr(serializer, "Meta", None), "model", None) or view_model
    if model is None:
        return None
    source = field.source if field.source not in (None, "*") else name
    for part in source.split(".")[:-1]:
        try:
            model = model._meta.get_field(part).related_model
        except FieldDoesNotExist:
            return None
    try:
        return model._meta.get_field(source.split(".")[-1])
    except FieldDoesNotExist:
        return None


def _text_fields(method: str, path: str, serializer: Any, view: Any,
                 multipart: bool) -> Iterator[TextField]:
    instance = serializer() if isinstance(serializer, type) else serializer
    if not isinstance(instance, serializers.BaseSerializer):
        return
    view_model = None
    queryset = getattr(view, "queryset", None)
    if queryset is None and hasattr(view, "base_queryset"):
        queryset = view.base_queryset()
    if queryset is not None:
        view_model = queryset.model
    for name, field in instance.fields.items():
        if field.read_only:
            continue
        text = field.child if isinstance(field, serializers.ListField) else field
        if not isinstance(text, serializers.CharField):
            continue
        column = _model_column(instance, name, field, view_model)
        model_length = None
        if isinstance(column, models.CharField):
            model_length = column.max_length
        elif isinstance(column, models.TextField):
            model_length = MAX_TEXT_CHARS
        yield TextField(method, path, name, text.max_length, model_length, multipart)


def _walk() -> list[TextField]:
    import_module(settings.ROOT_URLCONF)  # registers the id converter the API URLs use
    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    bodies = {(path, method.upper()): operation["requestBody"]["content"]
              for path, operations in schema["paths"].items()
              for method, operation in operations.items() if "requestBody" in operation}
    found: dict[tuple, TextField] = {}
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        path = generator.coerce_path(path, method, view)
        if (path, method) not in bodies:
            continue
        view.request = build_mock_request(method, path, view, None)
        multipart = "application/json" not in bodies[(path, method)]
        for text in _text_fields(method, path, view.schema.get_request_serializer(), view,
                                 multipart):
            found.setdefault((text.method, text.path, text.name), text)
        # The serializer the write action really uses, where it differs from the documented.
        if getattr(view, "action", None) in WRITE_ACTIONS and hasattr(view, "get_serializer_class"):
            view.format_kwarg = None
            for text in _text_fields(method, path, view.get_serializer_class(), view,
                                     multipart):
                found.setdefault((text.method, text.path, text.name), text)
    return sorted(found.values(), key=lambda t: t.label)


TEXT_FIELDS = _walk()


def test_the_walk_finds_the_text_fields_users_write():
    labels = {t.label for t in TEXT_FIELDS}
    assert {"POST /api/v1/campaigns/ prompt_category", "POST /api/v1/campaigns/ instructions",
            "PATCH /api/v1/prompt-sets/{id}/ description", "POST /api/v1/models/ name",
            "POST /api/v1/projects/ slug"} <= labels
    assert len(TEXT_FIELDS) > 30
    assert MAX_TEXT_CHARS == MAX_PROMPT_CHARS  # one limit for every free text


@pytest.mark.parametrize("text", TEXT_FIELDS, ids=lambda t: t.label)
def test_every_text_field_has_the_length_of_what_it_writes(text):
    assert text.max_length is not None, f"{text.label} accepts text of any length"
    if text.model_length is not None:
        assert text.max_length == text.model_length, text.label


@pytest.fixture
def world(db):
    built = build_campaign(prompts=2, annotators=1)
    project = built.campaign.project
    run = built.runs[0]
    lease = rate_next(annotator=built.owner, campaign_id=built.campaign.pk)["lease"]
    ids = {
        "projects": project.pk, "memberships": project.memberships.last().pk,
        "prompt-sets": run.prompt_set_id, "prompts": built.prompts[0].pk,
        "models": run.checkpoint.model_id, "checkpoints": run.checkpoint_id,
        "runs": run.pk, "images": run.images.first().pk,
        "reference-sets": ReferenceSet.objects.create(project=project, name="refs").pk,
        "campaigns": built.campaign.pk, "rate": built.campaign.pk,
    }
    return built, ids, lease


def _url(path: str, ids: dict, lease: str) -> str:
    resource = re.match(r"/api/v1/([^/]+)/", path).group(1)

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "lease_id":
            return lease
        return str(ids["campaigns"] if name == "campaign_id" else ids[resource])

    return re.sub(r"{(\w+)}", value, path)


def _names_field(answer: dict, name: str) -> bool:
    return name in answer or name in str(answer.get("detail", "")) or name in str(
        answer.get("errors", ""))




def test_a_nul_or_one_character_too_many_is_a_400_naming_the_field(api, world):
    """One world for every field (each answer is a refusal that stores nothing, so the fields
    do not disturb each other); every failing field is reported."""
    built, ids, lease = world
    api.force_authenticate(built.owner)
    tables = {model: model.objects.count() for model in apps.get_models()
              if model._meta.app_label in {"projects", "prompts", "runs", "campaigns"}}
    failures = []
    for text in TEXT_FIELDS:
        send = getattr(api, text.method.lower())
        too_long = "x" * ((text.max_length or MAX_TEXT_CHARS) + 1)
        for bad in ("nul\x00byte", too_long):
            response = send(_url(text.path, ids, lease), {text.name: bad},
                            format="multipart" if text.multipart else "json")
            if response.status_code != 400 or not _names_field(response.json(), text.name):
                failures.append(f"{text.label} {bad[:8]!r}: {response.status_code} "
                                f"{response.content[:200]!r}")
    assert not failures, "\n".join(failures)
    assert tables == {model: model.objects.count() for model in tables}
