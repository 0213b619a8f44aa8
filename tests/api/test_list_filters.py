"""List filters by id answer the same for every id: they never tell whether an object of another
project exists (docs/security.md), and no value reaches the database as an error.

The filters are not listed by hand: every routed viewset's filter set is walked, and each filter
on a relation (or a primary key) is one case, so a new id filter cannot go untested.

* An id of another project's object and an id that was never used get identical answers (an
  empty list), for a caller who has no role in that project.
* A value that cannot be an id (a fraction, letters, a number past 64 bits) is 400 naming the
  parameter, whatever the value.
* An id of the caller's own object filters as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Max, Model
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter

from evalhub.projects.references import PROJECT_PATHS
from evalhub.runs.models import ReferenceSet
from tests.builders import CampaignWorld, build_campaign
from tests.factories import UserFactory

API = "/api/v1/"


@dataclass(frozen=True)
class IdFilter:
    prefix: str  # the list's route, e.g. "images"
    param: str  # the query parameter, e.g. "run"
    model: type[Model]  # what the id names

    @property
    def label(self) -> str:
        return f"{self.prefix}?{self.param}="


def _viewset_filters() -> list[tuple[str, type[Model], dict[str, Any]]]:
    """(route, model, filters by parameter) of every routed viewset that filters its list."""
    import_module(settings.ROOT_URLCONF)  # first: it registers the id converter they use
    from evalhub.config import api_urls

    found = []
    for prefix, viewset, _basename in api_urls.router.registry:
        model = viewset.serializer_class.Meta.model
        view = viewset()
        for backend in viewset.filter_backends:
            if hasattr(backend, "get_filterset_class"):
                filterset = backend().get_filterset_class(view, model._default_manager.none())
                if filterset is not None:
                    found.append((prefix, model, dict(filterset.base_filters)))
    return found


def _named_model(model: type[Model], field_name: str) -> type[Model] | None:
    """The model whose id the filter on ``field_name`` takes (None: not an id filter)."""
    field = None
    for part in field_name.split("__"):
        field = model._meta.get_field(part)
        if field.is_relation:
            model = field.related_model
    if field is not None and (field.many_to_one or field.one_to_one or field.primary_key):
        return model
    return None


def _id_filters() -> list[IdFilter]:
    found = []
    for prefix, model, filters in _viewset_filters():
        for param, list_filter in filters.items():
            named = _named_model(model, list_filter.field_name)
            if named is not None:
                found.append(IdFilter(prefix, param, named))
    return sorted(found, key=lambda f: f.label)


VIEWSET_FILTERS = _viewset_filters()
ID_FILTERS = _id_filters()


def test_the_walk_finds_the_known_id_filters():
    """So that the walk cannot silently find nothing."""
    expected = {
        "images?run=", "images?prompt=", "images?run__checkpoint=", "prompts?prompt_set=",
        "memberships?project=", "campaigns?project=", "checkpoints?model=",
        "checkpoints?model__project=", "runs?checkpoint=", "runs?prompt_set=", "runs?project=",
        "models?project=", "prompt-sets?project=", "reference-sets?project=",
        "metric-jobs?run=", "metric-jobs?project=", "run-metrics?run=",
        "run-metrics?reference_set=", "prompt-metrics?run=", "prompt-metrics?prompt=",
        "image-metrics?image=", "image-metrics?run=",
    }
    labels = {f.label for f in ID_FILTERS}
    assert expected <= labels, sorted(expected - labels)


def test_no_list_filter_looks_an_id_up_in_a_whole_table():
    # django-filter's ModelChoiceFilter validates the id against the model's default manager:
    # another project's id filtered, a never-used one was 400 "Select a valid choice".
    table_lookups = [f"{prefix}?{param}=" for prefix, _model, filters in VIEWSET_FILTERS
                     for param, list_filter in filters.items()
                     if isinstance(list_filter, ModelChoiceFilter | ModelMultipleChoiceFilter)]
    assert not table_lookups


@dataclass
class Projects:
    mine: CampaignWorld
    theirs: CampaignWorld
    caller: Any  # owner of project 1, no role in project 2

    def first_in(self, model: type[Model], world: CampaignWorld) -> Model:
        path = PROJECT_PATHS[model._meta.label]
        obj = model.objects.filter(**{path: world.campaign.project_id}).order_by("pk").first()
        assert obj is not None, f"no {model.__name__} in the project"
        return obj


@pytest.fixture
def projects(db) -> Projects:
    mine, theirs = (build_campaign(runs=2, prompts=1, annotators=0, name=name)
                    for name in ("mine", "theirs"))
    for world in (mine, theirs):
        ReferenceSet.objects.create(project=world.campaign.project, name="reference")
    return Projects(mine, theirs, mine.owner)


def _never_used(model: type[Model]) -> int:
    return (model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1000


@pytest.mark.parametrize("id_filter", ID_FILTERS, ids=lambda f: f.label)
def test_another_projects_id_is_answered_like_an_id_never_used(api, projects, id_filter):
    api.force_authenticate(projects.caller)
    url = f"{API}{id_filter.prefix}/"
    foreign = projects.first_in(id_filter.model, projects.theirs)
    theirs = api.get(url, {id_filter.param: foreign.pk})
    unused = api.get(url, {id_filter.param: _never_used(id_filter.model)})
    assert (theirs.status_code, theirs.json()) == (unused.status_code, unused.json())
    assert theirs.status_code == 200 and theirs.json()["results"] == []
    own = api.get(url, {id_filter.param: projects.first_in(id_filter.model, projects.mine).pk})
    assert own.status_code == 200, own.json()


@pytest.mark.parametrize("value", ["1.5", "2.0", "abc", "1e3", str(2**63), str(-(2**63) - 1),
                                   str(10**30)])
@pytest.mark.parametrize("id_filter", ID_FILTERS, ids=lambda f: f.label)
def test_a_value_that_cannot_be_an_id_is_refused_naming_the_parameter(api, db, id_filter,
                                                                      value):
    api.force_authenticate(UserFactory())
    response = api.get(f"{API}{id_filter.prefix}/", {id_filter.param: value})
    assert response.status_code == 400
    assert list(response.json()) == [id_filter.param]


def test_an_id_of_the_callers_own_object_filters_the_list(api, projects):
    api.force_authenticate(projects.caller)
    run = projects.mine.runs[1]
    images = api.get(f"{API}images/", {"run": run.pk}).json()["results"]
    assert images and {image["run"] for image in images} == {run.pk}
    largest = api.get(f"{API}image-metrics/", {"run": 2**63 - 1})
    assert largest.status_code == 200 and largest.json()["results"] == []
