"""Who may create projects and manage members: configurable creators, owners only, a project
always keeps an owner, and adding a member does not reveal which usernames exist."""

import pytest

from evalhub.projects.models import Membership, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_by_default_only_staff_and_users_given_the_permission_create_projects(api):
    from django.contrib.auth.models import Permission

    plain, staff, allowed = UserFactory(), UserFactory(is_staff=True), UserFactory()
    allowed.user_permissions.add(Permission.objects.get(codename="add_project"))
    for user, status in ((plain, 403), (staff, 201), (allowed, 201)):
        api.force_authenticate(user)
        response = api.post("/api/v1/projects/", {"name": f"p-{user.username}"})
        assert response.status_code == status, response.content
    assert not Membership.objects.filter(user=plain).exists()


def test_anyone_may_create_projects_when_the_setting_says_so(api, settings):
    settings.EVALHUB_PROJECT_CREATORS = "anyone"
    api.force_authenticate(UserFactory())
    assert api.post("/api/v1/projects/", {"name": "open science"}).status_code == 201


def _memberships(api, owner, project):
    api.force_authenticate(owner)
    return {m["username"]: m for m in api.get("/api/v1/memberships/",
                                              {"project": project.id}).json()["results"]}


def test_the_last_owner_can_neither_leave_nor_be_demoted(api):
    owner = MembershipFactory(role=Role.OWNER)
    project = owner.project
    mine = _memberships(api, owner.user, project)[owner.user.username]
    demote = api.patch(f"/api/v1/memberships/{mine['id']}/", {"role": "scientist"})
    leave = api.delete(f"/api/v1/memberships/{mine['id']}/")
    assert (demote.status_code, leave.status_code) == (409, 409)
    assert "at least one owner" in demote.json()["detail"]
    assert Membership.objects.get(pk=mine["id"]).role == Role.OWNER
    second = MembershipFactory(project=project, role=Role.OWNER)
    assert api.patch(f"/api/v1/memberships/{mine['id']}/",
                     {"role": "scientist"}).status_code == 200
    assert Membership.objects.filter(project=project, role=Role.OWNER).get() == second


def test_a_non_staff_owner_learns_nothing_about_usernames_outside_their_projects(api):
    owner = MembershipFactory(role=Role.OWNER)
    colleague = MembershipFactory(user=UserFactory(), role=Role.ANNOTATOR,
                                  project=MembershipFactory(user=owner.user).project).user
    stranger = UserFactory()
    api.force_authenticate(owner.user)
    answers = {name: api.post("/api/v1/memberships/", {
        "project": owner.project_id, "username": name, "role": "annotator"})
        for name in (stranger.username, "no-such-user-anywhere")}
    assert {r.status_code for r in answers.values()} == {400}
    first, second = (r.json()["detail"].replace(name, "NAME") for name, r in answers.items())
    assert first == second  # the same answer for an existing and a missing username
    added = api.post("/api/v1/memberships/", {"project": owner.project_id,
                                              "username": colleague.username,
                                              "role": "annotator"})
    assert added.status_code == 201
    staff = MembershipFactory(project=owner.project, role=Role.OWNER,
                              user=UserFactory(is_staff=True)).user
    api.force_authenticate(staff)
    assert api.post("/api/v1/memberships/", {"project": owner.project_id,
                                             "username": stranger.username,
                                             "role": "annotator"}).status_code == 201
    # Staff see every account anyway: they are told plainly that a name does not exist.
    missing = api.post("/api/v1/memberships/", {"project": owner.project_id,
                                                "username": "no-such-user-anywhere",
                                                "role": "annotator"})
    assert missing.status_code == 400
    assert missing.json()["detail"] == "There is no active user named 'no-such-user-anywhere'."


def test_adding_an_existing_member_through_the_api_is_a_conflict_not_a_role_change(api):
    owner = MembershipFactory(role=Role.OWNER)
    other_owner = MembershipFactory(project=owner.project, role=Role.OWNER)
    api.force_authenticate(owner.user)
    response = api.post("/api/v1/memberships/", {"project": owner.project_id,
                                                 "username": other_owner.user.username,
                                                 "role": "annotator"})
    assert response.status_code == 409
    assert "is already a member (owner)" in response.json()["detail"]
    assert Membership.objects.get(pk=other_owner.pk).role == Role.OWNER


def test_scientists_and_annotators_cannot_manage_members(api):
    project = ProjectFactory()
    target = MembershipFactory(project=project, role=Role.ANNOTATOR)
    for role in (Role.SCIENTIST, Role.ANNOTATOR):
        member = MembershipFactory(project=project, role=role).user
        api.force_authenticate(member)
        assert api.patch(f"/api/v1/memberships/{target.pk}/",
                         {"role": "owner"}).status_code == 403
        assert api.delete(f"/api/v1/memberships/{target.pk}/").status_code == 403
    assert Membership.objects.get(pk=target.pk).role == Role.ANNOTATOR


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_memberships_project_and_user_are_fixed_and_only_its_role_changes(api, method):
    # They used to be dropped silently: 200, with project and user unchanged.
    owner = MembershipFactory(role=Role.OWNER)
    other = MembershipFactory(user=owner.user, role=Role.OWNER).project
    member = MembershipFactory(project=owner.project, role=Role.ANNOTATOR)
    url = f"/api/v1/memberships/{member.pk}/"
    api.force_authenticate(owner.user)
    send = getattr(api, method)
    for change, field in (({"project": other.pk}, "project"),
                          ({"project": other.pk + 1000}, "project"),
                          ({"project": 1.5}, "project"),
                          ({"username": owner.user.username}, "username")):
        response = send(url, {"role": "scientist", **change}, format="json")
        assert response.status_code == 400, change
        assert list(response.json()) == [field]
        assert "is fixed: only its role changes" in response.json()[field][0]
    member.refresh_from_db()
    assert (member.project_id, member.role) == (owner.project_id, Role.ANNOTATOR)
    fetched = api.get(url).json()  # sent back as fetched, with a new role: accepted
    response = send(url, {**fetched, "role": "scientist"}, format="json")
    assert response.status_code == 200, response.json()
    member.refresh_from_db()
    assert member.role == Role.SCIENTIST

