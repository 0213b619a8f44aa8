"""The gallery and image pages (owners and scientists; annotators 403, others 404).

Thin: access.py checks the caller, forms.py the parameters, selectors.py reads. The gallery
renders one page of pairs; its script (static/js/gallery/gallery.js) steps through the page's
pairs from the page's data and asks for the next page (a plain page load) at its end.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_safe

from evalhub.campaigns.models import criterion_questions
from evalhub.core.converters import object_id
from evalhub.runs.gallery.access import image_for_science, project_for_science
from evalhub.runs.gallery.forms import GalleryForm, page_number
from evalhub.runs.gallery.selectors import (
    GalleryPage,
    RunOption,
    default_pair,
    gallery_page,
    gallery_run_options,
    image_detail,
    partner_run,
    project_categories,
    run_outputs_page,
)
from evalhub.runs.models import GenModel, MediaKind

# Only these parameters travel into page links (anything else a URL carried is dropped).
QUERY_KEYS = ("model", "a", "b", "category", "outcome", "sort", "criterion", "judge")


def _int_param(raw: str | None) -> int | None:
    return object_id(raw) if raw else None


def _page_url(base: str, form: GalleryForm, page: int, item: int | str) -> str:
    data = {k: form.cleaned_data.get(k) for k in QUERY_KEYS}
    params = {k: v for k, v in data.items() if v not in (None, "")}
    return f"{base}?{urlencode({**params, 'page': page, 'item': item})}"


def _navigation(request: HttpRequest, form: GalleryForm, page: GalleryPage) -> dict[str, Any]:
    base = request.path
    return {
        "prev": (_page_url(base, form, page.page - 1, "last") if page.page > 1 else None),
        "next": (_page_url(base, form, page.page + 1, 0) if page.page < page.pages else None),
        "item_urls": [_page_url(base, form, page.page, i) for i in range(len(page.items))],
    }


def _outputs_alone(request: HttpRequest, project_id: int, run: RunOption | None
                   ) -> dict[str, Any] | None:
    """The grid of a run shown alone: a page of its outputs and the links to its neighbours."""
    if run is None:
        return None
    number, note = page_number(request.GET.get("page"))
    found = run_outputs_page(project_id=project_id, run_id=run.id, page=number)

    def url(page: int) -> str:
        return f"{request.path}?{urlencode({'a': run.id, 'page': page})}"

    return {"page": found, "prev": url(found.page - 1) if found.page > 1 else None,
            "next": url(found.page + 1) if found.page < found.pages else None, "note": note}


@login_required
@require_safe
def gallery(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_for_science(user=request.user, project_id=project_id)
    models = list(GenModel.objects.filter(project=project).order_by("name")
                  .values_list("id", "name"))
    model_id = _int_param(request.GET.get("model"))
    if model_id not in {m for m, _ in models}:
        model_id = None  # the form reports a bad value next to the field
    runs = gallery_run_options(project_id=project.pk, model_id=model_id)
    params: QueryDict = request.GET.copy()
    # No runs chosen, or a model chosen whose runs do not include them (the model picker
    # was just changed): the default pair.
    listed = {str(run.id) for run in runs}
    chose_none = not params.get("a") and not params.get("b")
    no_default = False
    alone = None  # a run chosen alone that no other run of its kind can be shown beside
    if params.get("a") in listed and not params.get("b"):
        # Only the left run (the run and image pages link so): beside it, another run of the
        # same kind sharing a (prompt, seed) with it; with none, that run's outputs alone
        # rather than "this field is required" or "0 pairs".
        partner = partner_run(runs, int(params["a"]))
        if partner is not None:
            params["b"] = str(partner)
        else:
            alone = next(run for run in runs if str(run.id) == params["a"])
    if chose_none or (
            model_id is not None and not {params.get("a"), params.get("b")} <= listed):
        pair = default_pair(runs, model_id=model_id)
        if pair is not None:
            params["a"], params["b"] = str(pair[0]), str(pair[1])
        no_default = pair is None and chose_none
    # A project without runs, or without two runs worth comparing, gets the empty pickers
    # (and a line saying why), not "this field is required".
    # A run shown alone: the pickers show it chosen, with no error (its grid is the page).
    initial = {"a": alone.id, "model": model_id} if alone else None
    form = GalleryForm(params if runs and not no_default and alone is None else None,
                       runs=runs, models=models, initial=initial,
                       categories=project_categories(project_id=project.pk))
    page = navigation = None
    index = 0
    if form.is_valid():
        page = gallery_page(project_id=project.pk, query=form.query())
        navigation = _navigation(request, form, page)
        raw_item = request.GET.get("item", "")
        index = (len(page.items) - 1 if raw_item == "last"
                 else min(_int_param(raw_item) or 0, max(0, len(page.items) - 1)))
    outputs = _outputs_alone(request, project.pk, alone)
    by_id = {run.id: run for run in runs}
    chosen = (by_id.get(form.cleaned_data["a"]), by_id.get(form.cleaned_data["b"])) \
        if page is not None else (None, None)
    if any(run is not None and run.media_kind == MediaKind.VIDEO for run in chosen):
        form.fields["criterion"].choices = list(criterion_questions("video").items())
    return render(request, "gallery/gallery.html", {
        "project": project, "form": form, "page": page, "runs": runs,
        "left": chosen[0], "right": chosen[1], "index": index, "no_default": no_default,
        "alone": alone, "outputs": outputs,
        "page_note": outputs["note"] if outputs else form.page_note,
        "current": page.items[index] if page is not None and page.items else None,
        "navigation": navigation,
        # Pairs of two videos play in sync (static/js/gallery/videos.js): the page then loads
        # the player's styles and holds a place for its bar.
        "has_videos": bool(page) and any(item.left.video and item.right.video
                                         for item in page.items),
        "rows": list(zip(page.items, navigation["item_urls"], strict=True)) if page else [],
        "config": {
            "items": [item.as_json() for item in page.items] if page else [],
            "index": index,
            "navigation": navigation,
            "total": page.total if page else 0,
            "osd": static("vendor/openseadragon/"),
        },
    })


@login_required
@require_safe
def image_page(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_for_science(user=request.user, image_id=image_id)
    detail = image_detail(image=image)
    return render(request, "gallery/image.html", {
        "detail": detail, "image": image, "run": image.run, "project": image.run.project,
        "gallery_url": reverse("gallery", kwargs={"project_id": image.run.project_id}),
        "config": {"image": detail.display, "osd": static("vendor/openseadragon/")},
    })
