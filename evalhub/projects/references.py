"""One rule for references between objects: both ends live in the same project.

Every write that points at another object (a run at its prompt set and checkpoint, a campaign at
its runs and gold images, a metric job at its run and reference set, a membership or any
project-owned object at its project) is checked here, by the services and by the API base
class, with one refusal that names the field and nothing about the object it was given.

``PROJECT_PATHS`` says, for each project-owned model, the ORM path to its project id. The API's
relation fields (:class:`ScopedPrimaryKeyRelatedField`) use it to accept only objects the caller
can see, so that an object of a project the caller cannot see is answered exactly like an id that
does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers
from rest_framework.relations import MANY_RELATION_KWARGS

from evalhub.core.converters import fits_id_column, whole_number
from evalhub.core.errors import EvalHubError
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.core.serializers import RejectUnknownFields
from evalhub.projects.models import Role

# "app_label.Model" -> path from the model to its project id (labels, so that this module
# imports no other app's models).
PROJECT_PATHS: dict[str, str] = {
    "projects.Project": "pk",
    "projects.Membership": "project_id",
    "prompts.PromptSet": "project_id",
    "prompts.Prompt": "prompt_set__project_id",
    "runs.GenModel": "project_id",
    "runs.Checkpoint": "model__project_id",
    "runs.GenerationRun": "project_id",
    "runs.Image": "run__project_id",
    "runs.ReferenceSet": "project_id",
    "campaigns.Campaign": "project_id",
    "evaluation.MetricJob": "project_id",
}


class ForeignReference(EvalHubError):
    """A reference to an object outside the project (400; says nothing about the object)."""


def project_path(model: type[Model]) -> str | None:
    return PROJECT_PATHS.get(model._meta.label)


def project_id_of(obj: Model) -> int | None:
    """The id of the project ``obj`` belongs to (None for objects outside every project)."""
    path = project_path(type(obj))
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    value: Any = obj
    for part in path.split("__"):
        value = getattr(value, part)
    return value


def check_same_project(project_id: int, **references: Model | Iterable[Model] | None) -> None:
    """Refuse when any referenced object (or one of a list) is not in ``project_id``.

    The keyword names the field, and the refusal names only the field.
    """
    for field, value in references.items():
        objects = [] if value is None else (
            [value] if isinstance(value, Model) else list(value))
        for obj in objects:
            owner = project_id_of(obj)
            if owner is not None and owner != project_id:
                raise ForeignReference(f"{field}: no such object in this project.",
                                       details=[field])


def visible_to(user: Any, queryset: QuerySet, *, roles: tuple[str, ...] | None = None
               ) -> QuerySet:
    """``queryset`` limited to objects in projects where ``user`` holds one of ``roles``
    (owner and scientist by default; any role for projects and memberships)."""
    path = project_path(queryset.model)
    if path is None:
        return queryset
    if user is None or not user.is_authenticated:
        return queryset.none()
    from evalhub.projects.selectors import projects_for_user

    if roles is None and queryset.model._meta.label in ("projects.Project",
                                                          "projects.Membership"):
        roles = (Role.OWNER, Role.SCIENTIST, Role.ANNOTATOR)
    projects = projects_for_user(user=user, roles=roles or (Role.OWNER, Role.SCIENTIST))
    return queryset.filter(**{f"{path}__in": projects.values("id")})


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A relation field that accepts only objects the requesting user can see: an object of
    another project gets the same "does not exist" answer as an id that was never used.

    An id is a whole number (a digit string too, as forms send it): DRF passed ``1.9`` to the
    query, which truncated it to object 1. A number too large for an id column is answered
    like an id that was never used, without a query (the driver refused it: a 500).

    With ``many=True`` the list is a :class:`ScopedManyRelatedField`: one query for the whole
    list, and ``max_length`` / ``min_length`` limit how many ids it takes."""

    @classmethod
    def many_init(cls, *args: Any, **kwargs: Any) -> ScopedManyRelatedField:
        # The list's own keywords stay off the child (a relation field takes no max_length).
        lengths = {key: kwargs.pop(key) for key in ("max_length", "min_length") if key in kwargs}
        list_kwargs = {key: value for key, value in kwargs.items()
                       if key in MANY_RELATION_KWARGS}
        return ScopedManyRelatedField(child_relation=cls(*args, **kwargs), **list_kwargs,
                                      **lengths)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        return visible_to(getattr(request, "user", None), super().get_queryset())

    def id_of(self, data: Any) -> int:
        """``data`` as an id that may name an object: refused as DRF's "incorrect type" when
        it is not a whole number, as "does not exist" when it does not fit an id column."""
        number = whole_number(data)
        if number is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not fits_id_column(number):
            self.fail("does_not_exist", pk_value=number)
        return number

    def to_internal_value(self, data: Any) -> Model:
        return super().to_internal_value(self.id_of(data))


class ScopedManyRelatedField(serializers.ManyRelatedField):
    """A list of :class:`ScopedPrimaryKeyRelatedField` ids, resolved with one scoped
    ``pk__in`` query however long the list (DRF's list asks its child once per id, so a
    request listing thousands of ids held a web thread for as many queries).

    The answers are the child's, in the order sent: the first id that is not a whole number,
    does not fit an id column, does not exist or is not visible to the caller is refused as
    the child refuses it (the field and the id, nothing about an object of another project);
    the objects come back in the order of the ids, a repeated id as the same object again.
    ``max_length`` (at most that many ids) is checked before anything else, so an over-long
    list costs no query and is not even read item by item."""

    default_error_messages = {
        "max_length": "Ensure this field has no more than {max_length} elements.",
        "min_length": "Ensure this field has at least {min_length} elements.",
    }

    def __init__(self, *args: Any, max_length: int | None = None,
                 min_length: int | None = None, **kwargs: Any) -> None:
        self.max_length = max_length
        self.min_length = min_length
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> list[Model]:
        if isinstance(data, str) or not hasattr(data, "__iter__"):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not hasattr(data, "__len__"):
            data = list(data)
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if not self.allow_empty and len(data) == 0:
            self.fail("empty")
        if self.min_length is not None and len(data) < self.min_length:
            self.fail("min_length", min_length=self.min_length)
        child: ScopedPrimaryKeyRelatedField = self.child_relation
        # The ids up to the first item that is not one: what the child would have looked up
        # before refusing that item (an id before it that names nothing is refused first).
        ids: list[int] = []
        refusal: serializers.ValidationError | None = None
        for item in data:
            try:
                ids.append(child.id_of(item))
            except serializers.ValidationError as refused:
                refusal = refused
                break
        found = {obj.pk: obj for obj in child.get_queryset().filter(pk__in=set(ids))} \
            if ids else {}
        for number in ids:
            if number not in found:
                child.fail("does_not_exist", pk_value=number)
        if refusal is not None:
            raise refusal
        return [found[number] for number in ids]


class ScopedModelSerializer(RejectUnknownFields, serializers.ModelSerializer):
    """ModelSerializer whose generated relation fields are scoped to the caller's projects,
    and whose text fields without a column length (``TextField``) accept at most
    ``MAX_TEXT_CHARS`` characters (evalhub/core/limits.py)."""

    serializer_related_field = ScopedPrimaryKeyRelatedField

    def build_standard_field(self, field_name: str, model_field: Any) -> tuple[type, dict]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if (issubclass(field_class, serializers.CharField) and not kwargs.get("read_only")
                and kwargs.get("max_length") is None):
            kwargs["max_length"] = MAX_TEXT_CHARS
        return field_class, kwargs

    def get_unique_together_validators(self) -> list:
        """DRF's "The fields project, name must make a unique set." in words: "This project
        already has a model with this name." (the first field is the one that holds the rest)."""
        validators = super().get_unique_together_validators()
        model = self.Meta.model._meta
        for validator in validators:
            holder, *rest = validator.fields
            if not rest:
                continue
            holder_name = model.get_field(holder).verbose_name
            named = " and ".join(str(model.get_field(f).verbose_name) for f in rest)
            # The validator formats its message with field_names: no other braces in it.
            validator.message = (f"This {holder_name} already has a {model.verbose_name} with "
                                 f"this {named}.").replace("{", "(").replace("}", ")")
        return validators


def relation_references(serializer: serializers.Serializer) -> dict[str, Model | list[Model]]:
    """The validated objects a serializer's relation fields point at, by field name."""
    found: dict[str, Model | list[Model]] = {}
    for name, value in serializer.validated_data.items():
        if isinstance(value, Model) and project_path(type(value)):
            found[name] = value
        elif isinstance(value, list | tuple) and value and all(
                isinstance(v, Model) for v in value):
            found[name] = list(value)
    return found

