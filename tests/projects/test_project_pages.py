"""Project pages: the caller's projects, and members (every member reads; owners manage).

Writes go through the membership services the API uses: a project keeps an owner, and a
non-staff owner adding a member learns nothing about usernames outside their projects.
"""

from __future__ import annotations

import pytest
from django.test import Client

from evalhub.projects.models import Membership, Project, Role
from tests.builders import logged_in
from tests.core.test_security_headers import _inline_code
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = ProjectFactory()
    for role in (Role.OWNER, Role.SCIENTIST, Role.ANNOTATOR):
        MembershipFactory(project=project, role=role)
    return project


def _member(project, role: str):
    return Membership.objects.filter(project=project, role=role).select_related("user")[0]


def _actions(project) -> list[tuple[str, dict]]:
    annotator = _member(project, Role.ANNOTATOR)
    return [
        (f"/projects/{project.pk}/members/add/", {"username": "x", "role": "annotator"}),
        (f"/projects/{project.pk}/members/{annotator.pk}/role/", {"role": "scientist"}),
        (f"/projects/{project.pk}/members/{annotator.pk}/remove/", {}),
    ]


def _roles(project) -> list[tuple[str, str]]:
    return sorted(Membership.objects.filter(project=project)
                  .values_list("user__username", "role"))


def test_anonymous_users_are_sent_to_sign_in(project):
    for url in ["/projects/", f"/projects/{project.pk}/members/"]:
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    before = _roles(project)
    for url, body in _actions(project):
        assert Client().post(url, body).status_code == 302
    assert _roles(project) == before


def test_every_member_reads_the_members_outsiders_get_404(project):
    url = f"/projects/{project.pk}/members/"
    for role in (Role.OWNER, Role.SCIENTIST, Role.ANNOTATOR):
        response = logged_in(_member(project, role).user).get(url)
        assert response.status_code == 200
        assert _inline_code(response.content.decode()) == []
        assert ("member-form" in response.content.decode()) == (role == Role.OWNER)
    assert logged_in(UserFactory()).get(url).status_code == 404
    assert logged_in(MembershipFactory(role=Role.OWNER).user).get(url).status_code == 404
    assert logged_in(UserFactory()).get("/projects/999999999/members/").status_code == 404


def test_only_owners_change_members_scientists_and_annotators_403_outsiders_404(project):
    before = _roles(project)
    for url, body in _actions(project):
        for role in (Role.SCIENTIST, Role.ANNOTATOR):
            assert logged_in(_member(project, role).user).post(url, body).status_code == 403
        assert logged_in(UserFactory()).post(url, body).status_code == 404
        assert logged_in(MembershipFactory(role=Role.OWNER).user).post(url, body
                                                                       ).status_code == 404
    assert _roles(project) == before


def test_the_project_list_shows_the_callers_projects_and_role(project):
    scientist = _member(project, Role.SCIENTIST).user
    elsewhere = ProjectFactory(name="Not yours")
    response = logged_in(scientist).get("/projects/")
    html = response.content.decode()
    assert response.status_code == 200
    assert project.name in html and "Your role: scientist" in html
    assert elsewhere.name not in html
    assert f"/projects/{project.pk}/campaigns/" in html


def test_an_owner_adds_changes_and_removes_a_member(project):
    owner = _member(project, Role.OWNER).user
    colleague = MembershipFactory(role=Role.SCIENTIST,
                                  project=MembershipFactory(user=owner).project).user
    client = logged_in(owner)
    response = client.post(f"/projects/{project.pk}/members/add/",
                           {"username": colleague.username, "role": "annotator"})
    assert response.status_code == 302
    membership = Membership.objects.get(project=project, user=colleague)
    assert membership.role == Role.ANNOTATOR
    client.post(f"/projects/{project.pk}/members/{membership.pk}/role/", {"role": "scientist"})
    assert Membership.objects.get(pk=membership.pk).role == Role.SCIENTIST
    client.post(f"/projects/{project.pk}/members/{membership.pk}/remove/")
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_adding_an_unknown_or_unrelated_username_says_the_same_next_to_the_field(project):
    owner = _member(project, Role.OWNER).user
    stranger = UserFactory()
    client = logged_in(owner)
    before = _roles(project)
    answers = []
    for username in (stranger.username, "nobody-by-this-name"):
        response = client.post(f"/projects/{project.pk}/members/add/",
                               {"username": username, "role": "annotator"})
        assert response.status_code == 400
        assert 'id="id_username_error"' in response.content.decode()
        answers.append(response.context["add_form"].errors["username"][0]
                       .replace(username, "NAME"))
    assert answers[0] == answers[1]
    long = client.post(f"/projects/{project.pk}/members/add/",
                       {"username": "x" * 151, "role": "owner"})
    assert long.status_code == 400 and long.context["add_form"].errors["username"]
    bad_role = client.post(f"/projects/{project.pk}/members/add/",
                           {"username": stranger.username, "role": "boss"})
    assert bad_role.context["add_form"].errors["role"]
    assert _roles(project) == before


def test_adding_someone_already_a_member_is_refused_and_changes_nothing(project):
    owner = _member(project, Role.OWNER).user
    second_owner = MembershipFactory(project=project, role=Role.OWNER).user
    before = _roles(project)
    response = logged_in(owner).post(f"/projects/{project.pk}/members/add/",
                                     {"username": second_owner.username, "role": "annotator"})
    assert response.status_code == 400
    assert 'id="id_username_error"' in response.content.decode()
    assert response.context["add_form"].errors["username"] == [
        f"{second_owner.username} is already a member (owner); change their role instead of "
        "adding them again."]
    assert _roles(project) == before


def test_the_last_owner_can_neither_leave_nor_be_demoted(project):
    owner = _member(project, Role.OWNER)
    client = logged_in(owner.user)
    demote = client.post(f"/projects/{project.pk}/members/{owner.pk}/role/",
                         {"role": "scientist"})
    leave = client.post(f"/projects/{project.pk}/members/{owner.pk}/remove/")
    for response in (demote, leave):
        assert response.status_code == 400
        assert "keeps at least one owner" in response.content.decode()
        assert f'id="member-{owner.pk}-error"' in response.content.decode()
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


def test_another_projects_membership_is_refused_like_a_missing_one(project):
    owner = _member(project, Role.OWNER).user
    theirs = MembershipFactory(role=Role.ANNOTATOR)
    client = logged_in(owner)
    for suffix in ("role/", "remove/"):
        foreign = client.post(f"/projects/{project.pk}/members/{theirs.pk}/{suffix}",
                              {"role": "owner"})
        missing = client.post(f"/projects/{project.pk}/members/999999999/{suffix}",
                              {"role": "owner"})
        assert foreign.status_code == missing.status_code == 404
    assert Membership.objects.get(pk=theirs.pk).role == Role.ANNOTATOR


def test_project_creation_follows_the_service_rule(settings):
    plain, staff = UserFactory(), UserFactory(is_staff=True)
    assert Client().get("/projects/new/").status_code == 302
    refused = logged_in(plain).get("/projects/new/")
    assert refused.status_code == 403
    page = refused.content.decode()
    # What to do, and only that: choosing roles is not what stands in the way here.
    assert "You may not create projects; ask an administrator." in page
    assert "choose its members' roles" not in page
    assert logged_in(plain).post("/projects/new/", {"name": "Mine"}).status_code == 403
    assert "new-project" not in logged_in(plain).get("/projects/").content.decode()
    assert "new-project" in logged_in(staff).get("/projects/").content.decode()
    response = logged_in(staff).post("/projects/new/", {"name": "Vision team",
                                                        "description": "Diffusion evals"})
    project = Project.objects.get(slug="vision-team")
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/members/"
    assert _roles(project) == [(staff.username, "owner")]
    settings.EVALHUB_PROJECT_CREATORS = "anyone"
    assert logged_in(plain).get("/projects/new/").status_code == 200


def test_project_creation_errors_are_next_to_their_field(project):
    staff = UserFactory(is_staff=True)
    before = Project.objects.count()
    taken = logged_in(staff).post("/projects/new/", {"name": "x", "slug": project.slug})
    same_name = logged_in(staff).post("/projects/new/", {"name": project.name})
    empty = logged_in(staff).post("/projects/new/", {"name": "!!!"})
    bad_slug = logged_in(staff).post("/projects/new/", {"name": "ok", "slug": "a b"})
    # The name rule (docs/security.md): no control or invisible character.
    hidden = logged_in(staff).post("/projects/new/", {"name": "abc\u202edcb"})
    # Its length is the stored name's: 150 characters NFC turns into 300 are too long.
    grows = logged_in(staff).post("/projects/new/", {"name": "\u0958" * 150})
    assert grows.context["form"].errors["name"] == [
        "Ensure this value has at most 200 characters (it has 300)."]
    assert hidden.context["form"].errors["name"] == [
        "A name cannot contain the invisible formatting character U+202E."]
    assert "already exists" in taken.context["form"].errors["slug"][0]
    assert "already exists" in same_name.context["form"].errors["name"][0]
    assert "empty slug" in empty.context["form"].errors["name"][0]
    assert bad_slug.context["form"].errors["slug"]
    for response in (taken, same_name, empty, bad_slug, hidden, grows):
        assert response.status_code == 400
    assert Project.objects.count() == before
