"""The campaign pages (owners and scientists; annotators 403, others 404).

Thin: access.py checks the caller, forms.py parses, the API's services write, selectors.py
reads. A refused write re-renders the page with the service's message next to its field
(status 400) and stores nothing; a write that succeeds redirects (post/redirect/get). Either
way the browser lands on the form's section: each form's action carries the section's
fragment (``#gold``, ``#metric-judges``...), kept by the rendered refusal and by the redirect.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from evalhub.campaigns.building.gold import gold_task_add, gold_task_remove
from evalhub.campaigns.manage.access import campaign_for_science
from evalhub.campaigns.manage.errors import attach_service_error
from evalhub.campaigns.manage.forms import (
    CREATE_HINTS,
    GOLD_HINTS,
    AnnotatorsForm,
    CampaignCreateForm,
    CampaignEditForm,
    ExcludeForm,
    GoldAddForm,
    MetricJudgeForm,
    StatusForm,
    status_actions,
)
from evalhub.campaigns.manage.selectors import gold_pairs, live_progress, recent_reports
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.campaigns.quality.annotators import annotator_set_excluded
from evalhub.campaigns.selectors import campaign_medium, rating_panes
from evalhub.campaigns.services import (
    OVER,
    TRANSITIONS,
    campaign_create,
    campaign_set_annotators,
    campaign_set_status,
    campaign_update,
)
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.quality_snapshot import quality_get
from evalhub.leaderboards.services import (
    JUDGE_METRICS,
    check_metric_judges_apply,
    metric_judges_queue,
)
from evalhub.runs.gallery.access import project_for_science
from evalhub.runs.gallery.selectors import project_categories


def _manage_url(campaign: Campaign, anchor: str = "") -> str:
    return reverse("campaign-manage", kwargs={"campaign_id": campaign.pk}) + anchor


@login_required
@require_safe
def campaign_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_for_science(user=request.user, project_id=project_id)
    campaigns = Campaign.objects.filter(project=project).order_by("-id")
    return render(request, "campaigns/manage/list.html",
                  {"project": project, "campaigns": campaigns})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_new(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_for_science(user=request.user, project_id=project_id)
    categories = project_categories(project_id=project.pk)
    form = CampaignCreateForm(request.POST if request.method == "POST" else None,
                              project=project, categories=categories)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = campaign_create(
                project=project, name=data["name"], runs=list(data["runs"]),
                criteria=data["criteria"], instructions=data["instructions"],
                prompt_category=data["prompt_category"],
                judgments_per_pair=data["judgments_per_pair"], gold_rate=data["gold_rate"],
                pair_policy=data["pair_policy"], min_lpips_distance=data["min_lpips_distance"],
                lease_seconds=data["lease_seconds"], open_when_built=data["open_when_built"],
                task_kind=data["task_kind"], k=data["k"], rank_all=data["rank_all"],
                annotators=list(data["annotators"]), created_by=request.user)
        except EvalHubError as error:
            attach_service_error(form, error, CREATE_HINTS)
        else:
            return redirect(_manage_url(campaign))
    status = 400 if request.method == "POST" else 200
    return render(request, "campaigns/manage/new.html", {"project": project, "form": form},
                  status=status)


def _id_url(name: str, key: str, **fixed: int) -> Callable[[int], str]:
    """``pk -> reverse(name, kwargs={**fixed, key: pk})`` with one ``reverse``: a page of 200
    gold pairs reversed 600 URLs, a fifth of its time. The id is the route's last variable
    part, so the URL is the same text around it."""
    marker = 987654321987
    head, tail = reverse(name, kwargs={**fixed, key: marker}).rsplit(str(marker), 1)
    return lambda pk: f"{head}{pk}{tail}"


def _gold_rows(campaign: Campaign) -> list[dict]:
    image_url = _id_url("gallery-image", "image_id")
    remove_url = _id_url("campaign-manage-gold-remove", "task_id", campaign_id=campaign.pk)
    return [{"task": task, "image_a_url": image_url(task.image_a_id),
             "image_b_url": image_url(task.image_b_id), "remove_url": remove_url(task.pk)}
            for task in gold_pairs(campaign=campaign)]


# The newest reports the page lists; the section says how many there are in all.
REPORTS_SHOWN = 100


def _report_rows(campaign: Campaign, medium: str) -> dict:
    """The newest reports, each pane named as the rating page names it ("left image", "video 3"
    for slot 2 of a best-of-K video campaign: ``rating_panes``)."""
    found = recent_reports(campaign=campaign, limit=REPORTS_SHOWN)
    image_url = _id_url("gallery-image", "image_id")
    names = {pane["side"]: pane["name"]
             for pane in rating_panes(campaign=campaign, medium=medium)}
    return {"total": found.total, "rows": [
        {"report": report, "pane": names.get(report.side, report.side),
         "image_url": image_url(report.image_id) if report.image_id else ""}
        for report in found.rows]}


# Service refusals of a metric judge -> the field they are about (errors.py).
JUDGE_HINTS = {"epsilon": "epsilon", "cannot judge": "metric", "best-of-K": "metric"}


def _judges_refused(campaign: Campaign) -> str | None:
    """Why no metric judge applies to the campaign (best of K, failed), in the service's
    words."""
    try:
        check_metric_judges_apply(campaign)
    except EvalHubError as error:
        return error.message
    return None


def _detail(request: HttpRequest, campaign: Campaign, role: str, *,
            gold_form: GoldAddForm | None = None, errors: dict[str, str] | None = None,
            annotators_form: AnnotatorsForm | None = None,
            judge_form: MetricJudgeForm | None = None, status: int = 200) -> HttpResponse:
    # Quality, agreement and votes per annotator as the background refresh stored them (no
    # pass over every vote per request); the page says when they were computed.
    stored = quality_get(campaign=campaign)
    quality = list(stored.annotators)
    progress = live_progress(campaign=campaign)
    medium = campaign_medium(campaign=campaign)
    return render(request, "campaigns/manage/detail.html", {
        "campaign": campaign, "project": campaign.project, "role": role,
        "runs": campaign.runs.select_related("checkpoint__model").order_by("name"),
        "actions": status_actions(campaign, TRANSITIONS),
        "progress": progress,
        "annotators": stored.progress,
        "quality": quality,
        "quality_state": stored,
        "flagged": [row for row in quality if row.flagged or row.excluded],
        "agreement": stored.agreement,
        "gold_form": gold_form or GoldAddForm(campaign=campaign),
        "gold_pairs": _gold_rows(campaign),
        "medium": medium,
        "reports": _report_rows(campaign, medium),
        "annotators_form": annotators_form or AnnotatorsForm(campaign=campaign),
        "judge_form": judge_form or MetricJudgeForm(),
        "judges_refused": _judges_refused(campaign),
        # A closed or failed campaign takes no more gold pairs: the page does not offer them
        # (the service refuses them too); a failed one no metric judge (judges_refused).
        "over": campaign.status in OVER,
        # After the name and instructions were saved (post/redirect/get).
        "edited": request.GET.get("edited") == "1",
        # After a metric judge was queued (post/redirect/get): which one.
        "judge_queued": (request.GET.get("judge_queued")
                         if request.GET.get("judge_queued") in JUDGE_METRICS else None),
        "assigned": list(campaign.annotators.order_by("username")),
        "errors": errors or {},
        "config": {"progress_url": reverse("campaign-manage-progress",
                                           kwargs={"campaign_id": campaign.pk}),
                   "progress": progress.as_json()},
    }, status=status)


@login_required
@require_safe
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    return _detail(request, campaign, role)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Rename the campaign or reword its instructions (``campaign_update``, as the API's
    ``PATCH``), in any status; a refusal is shown at its field (a name taken: at the name)."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = CampaignEditForm(request.POST if request.method == "POST" else None,
                            campaign=campaign)
    if request.method == "POST" and form.is_valid():
        try:
            # Only what was changed on the form: a field left as the page showed it keeps
            # whatever it is now (a colleague's edit since the page was opened is not
            # reverted). A post without the shown values (a script's) sends every field.
            sent = {field: value for field, value in form.cleaned_data.items()
                    if form.add_initial_prefix(field) not in request.POST
                    or field in form.changed_data}
            campaign_update(campaign=campaign, **sent)
        except EvalHubError as error:
            attach_service_error(form, error)
        else:
            return redirect(reverse("campaign-manage", kwargs={"campaign_id": campaign.pk})
                            + "?" + urlencode({"edited": 1}) + "#settings")
    status = 400 if request.method == "POST" else 200
    return render(request, "campaigns/manage/edit.html", {
        "campaign": campaign, "project": campaign.project, "role": role, "form": form,
    }, status=status)


@login_required
@require_safe
def campaign_progress(request: HttpRequest, campaign_id: int) -> JsonResponse:
    """What the page's script polls while the campaign builds (and votes arrive)."""
    campaign, _ = campaign_for_science(user=request.user, campaign_id=campaign_id)
    return JsonResponse(live_progress(campaign=campaign).as_json())


@login_required
@require_safe
def campaign_close(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """What closing ends, and the button that closes (POST to ``campaign_status`` with
    ``confirm``): "Close" on the campaign page comes here, never closes in one click."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    if CampaignStatus.CLOSED not in TRANSITIONS.get(campaign.status, frozenset()):
        return redirect(_manage_url(campaign))  # closed or failed already: nothing to confirm
    progress = live_progress(campaign=campaign)
    return render(request, "campaigns/manage/close.html", {
        "campaign": campaign, "project": campaign.project, "role": role, "progress": progress,
        "can_pause": CampaignStatus.PAUSED in TRANSITIONS.get(campaign.status, frozenset()),
    })


@login_required
@require_POST
def campaign_status(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Pause, resume, open or close, as ``TRANSITIONS`` allows from the status the button was
    shown for (a second scientist's change meanwhile is refused, not overwritten). Closing is
    for good: only from the confirmation page (``confirm``); without it, that page."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _detail(request, campaign, role, status=400,
                       errors={"status": "Choose one of the buttons."})
    if form.cleaned_data["status"] == CampaignStatus.CLOSED and not request.POST.get("confirm"):
        return redirect(reverse("campaign-manage-close", kwargs={"campaign_id": campaign.pk}))
    try:
        campaign_set_status(campaign=campaign, status=form.cleaned_data["status"],
                            from_status=form.cleaned_data["current"])
    except EvalHubError as error:
        campaign.refresh_from_db(fields=["status"])
        return _detail(request, campaign, role, status=400, errors={"status": error.message})
    return redirect(_manage_url(campaign))


@login_required
@require_POST
def campaign_exclude(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Exclude (or include again) an annotator's votes from statistics and exports."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = ExcludeForm(request.POST)
    if not form.is_valid():
        return _detail(request, campaign, role, status=400,
                       errors={"exclude": "No such annotator in this project."})
    try:
        annotator_set_excluded(campaign=campaign, annotator_id=form.cleaned_data["annotator"],
                               excluded=form.cleaned_data["excluded"],
                               note=form.cleaned_data["note"])
    except EvalHubError:
        return _detail(request, campaign, role, status=400,
                       errors={"exclude": "No such annotator in this project."})
    return redirect(_manage_url(campaign, "#quality"))


@login_required
@require_POST
def campaign_annotators(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Choose who may rate the campaign (none ticked: every member of the project)."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = AnnotatorsForm(request.POST, campaign=campaign)
    if form.is_valid():
        try:
            campaign_set_annotators(campaign=campaign,
                                    annotators=list(form.cleaned_data["annotators"]))
        except EvalHubError as error:
            form.add_error("annotators", error.message)
        else:
            return redirect(_manage_url(campaign, "#who-rates"))
    return _detail(request, campaign, role, annotators_form=form, status=400)


@login_required
@require_POST
def campaign_gold_add(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = GoldAddForm(request.POST, campaign=campaign)
    if form.is_valid():
        try:
            gold_task_add(campaign=campaign, **form.cleaned_data)
        except EvalHubError as error:
            attach_service_error(form, error, GOLD_HINTS)
        else:
            return redirect(_manage_url(campaign, "#gold"))
    return _detail(request, campaign, role, gold_form=form, status=400)


@login_required
@require_POST
def campaign_gold_remove(request: HttpRequest, campaign_id: int, task_id: int
                         ) -> HttpResponse:
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    try:
        gold_task_remove(campaign=campaign, task_id=task_id)
    except EvalHubError as error:
        return _detail(request, campaign, role, status=400, errors={"gold": error.message})
    return redirect(_manage_url(campaign, "#gold"))


@login_required
@require_POST
def campaign_metric_judge(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Queue a metric judge on the campaign's pairs, as the API's ``POST .../metric-judges/``
    does: the same checks (the metric's tie threshold, pairs only), then the same worker task,
    which casts the judgments and refreshes the leaderboards."""
    campaign, role = campaign_for_science(user=request.user, campaign_id=campaign_id)
    form = MetricJudgeForm(request.POST)
    if form.is_valid():
        metric, epsilon = form.cleaned_data["metric"], form.cleaned_data["epsilon"]
        try:
            metric_judges_queue(campaign=campaign, metric=metric, epsilon=epsilon)
        except EvalHubError as error:
            attach_service_error(form, error, JUDGE_HINTS)
        else:
            return redirect(reverse("campaign-manage", kwargs={"campaign_id": campaign.pk})
                            + "?" + urlencode({"judge_queued": metric}) + "#metric-judges")
    return _detail(request, campaign, role, judge_form=form, status=400)
