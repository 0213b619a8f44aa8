"""Project pages: the caller's projects, and a project's members (owners manage them).

The API's rules (``MembershipViewSet``): every member reads the member list, non-members get
404; only owners add, change or remove (others 403). Writes go through the API's services
(``member_candidate``, ``membership_add``, ``membership_change_role``, ``membership_remove``),
so a project always keeps an owner and a non-staff owner is told the same thing whether an
unrelated username exists or not.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from evalhub.campaigns.manage.errors import attach_service_error
from evalhub.core.errors import EvalHubError, NameTaken
from evalhub.core.forms import NameFormField, TextBoxField
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.projects.models import Membership, Project, Role
from evalhub.projects.selectors import SCIENCE_ROLES, role_in_project
from evalhub.projects.services import (
    NotAllowed,
    may_create_projects,
    member_candidate,
    membership_add,
    membership_change_role,
    membership_remove,
    project_create_by,
)


class ProjectForm(forms.Form):
    name = NameFormField(max_length=200)  # Project's columns
    slug = forms.SlugField(max_length=100, required=False,
                           help_text="Letters, digits, - and _; empty: made from the name.")
    description = TextBoxField(required=False, max_length=MAX_TEXT_CHARS)


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)  # the user model's column
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _project_for_member(request: HttpRequest, project_id: int) -> tuple[Project, str]:
    project = Project.objects.filter(pk=project_id).first()
    role = role_in_project(user=request.user, project_id=project_id) if project else None
    if project is None or role is None:
        raise Http404("No such project.")
    return project, role


def _project_for_owner(request: HttpRequest, project_id: int) -> Project:
    project, role = _project_for_member(request, project_id)
    if role != Role.OWNER:
        raise PermissionDenied("Only the project's owners manage its members.")
    return project


def _membership(project: Project, membership_id: int) -> Membership:
    membership = (Membership.objects.filter(pk=membership_id, project=project)
                  .select_related("user").first())
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@require_safe
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = (Membership.objects.filter(user=request.user).select_related("project")
                   .order_by("project__name"))
    return render(request, "projects/list.html", {
        "memberships": memberships, "science_roles": SCIENCE_ROLES,
        "may_create": may_create_projects(request.user)})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    """Create a project (and own it), for the users ``EVALHUB_PROJECT_CREATORS`` allows."""
    if not may_create_projects(request.user):
        raise PermissionDenied("You may not create projects; ask an administrator.")
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = project_create_by(user=request.user, name=data["name"],
                                        description=data["description"],
                                        slug=data["slug"] or None)
        except NotAllowed as error:
            raise PermissionDenied(error.message) from error
        except EvalHubError as error:
            # A slug made from the name (none given): the name is what to change.
            field = "slug" if data["slug"] else "name"
            if isinstance(error, NameTaken):
                form.add_error(field, error.message)
            else:
                attach_service_error(form, error, {"slug": field})
        else:
            return redirect(reverse("project-members", kwargs={"project_id": project.pk}))
    return render(request, "projects/new.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


def _members_page(request: HttpRequest, project: Project, role: str, *,
                  add_form: MemberAddForm | None = None, errors: dict[int, str] | None = None,
                  status: int = 200) -> HttpResponse:
    members = Membership.objects.filter(project=project).select_related("user").order_by(
        "role", "user__username")
    return render(request, "projects/members.html", {
        "project": project, "role": role, "is_owner": role == Role.OWNER,
        "members": members, "roles": Role.choices,
        "add_form": add_form or MemberAddForm(), "errors": errors or {},
    }, status=status)


@login_required
@require_safe
def members(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = _project_for_member(request, project_id)
    return _members_page(request, project, role)


def _back(project: Project) -> HttpResponse:
    return redirect(reverse("project-members", kwargs={"project_id": project.pk}))


@login_required
@require_POST
def member_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project_for_owner(request, project_id)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            user = member_candidate(actor=request.user, username=form.cleaned_data["username"])
            membership_add(project=project, user=user, role=form.cleaned_data["role"])
        except EvalHubError as error:
            attach_service_error(form, error, {"add ": "username", "already a member": "username",
                                               "role": "role"})
        else:
            return _back(project)
    return _members_page(request, project, Role.OWNER, add_form=form, status=400)


@login_required
@require_POST
def member_role(request: HttpRequest, project_id: int, membership_id: int) -> HttpResponse:
    project = _project_for_owner(request, project_id)
    membership = _membership(project, membership_id)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise EvalHubError("Choose one of the roles.")
        membership_change_role(membership=membership, role=form.cleaned_data["role"])
    except EvalHubError as error:
        return _members_page(request, project, Role.OWNER, status=400,
                             errors={membership.pk: error.message})
    return _back(project)


@login_required
@require_POST
def member_remove(request: HttpRequest, project_id: int, membership_id: int) -> HttpResponse:
    project = _project_for_owner(request, project_id)
    membership = _membership(project, membership_id)
    try:
        membership_remove(membership=membership)
    except EvalHubError as error:
        return _members_page(request, project, Role.OWNER, status=400,
                             errors={membership.pk: error.message})
    if membership.user_id == request.user.pk:
        return redirect(reverse("projects"))
    return _back(project)


urlpatterns = [
    path("projects/", project_list, name="projects"),
    path("projects/new/", project_new, name="project-new"),
    path("projects/<id:project_id>/members/", members, name="project-members"),
    path("projects/<id:project_id>/members/add/", member_add, name="project-member-add"),
    path("projects/<id:project_id>/members/<id:membership_id>/role/", member_role,
         name="project-member-role"),
    path("projects/<id:project_id>/members/<id:membership_id>/remove/", member_remove,
         name="project-member-remove"),
]
