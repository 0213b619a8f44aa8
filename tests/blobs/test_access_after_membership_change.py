"""A change of membership takes effect on the next media request, though answers are cached.

Media access is cached per (user, project, blob) for ``ACCESS_CACHE_SECONDS`` (a rating page
opens hundreds of tiles); each answer carries the user's access generation, which every change
to one of their memberships renews (evalhub/projects/receivers.py), so an answer from before the
change is recomputed. Before, a newly added member got 404 for the project's images for up to
120 s, and a removed member kept them as long.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from evalhub.blobs.access import ACCESS_CACHE_SECONDS, project_blob_access
from evalhub.blobs.names import project_display_name
from evalhub.projects.models import Membership, Role
from evalhub.projects.services import membership_add, membership_change_role, membership_remove
from tests.builders import build_campaign
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=1, annotators=0)


def _display_url(world) -> str:
    blob_id = world.runs[0].images.get().blob_id
    return f"/media/display/{project_display_name(world.campaign.project_id, blob_id)}.webp"


def test_the_tests_cache_is_one_that_keeps_answers():
    cache.set("evalhub:probe", 1, ACCESS_CACHE_SECONDS)
    assert cache.get("evalhub:probe") == 1


def test_a_user_added_as_a_member_is_served_the_image_on_the_next_request(
        world, django_capture_on_commit_callbacks):
    person = UserFactory()
    client = Client()
    client.force_login(person)
    url = _display_url(world)
    assert client.get(url).status_code == 404  # "no roles" is now cached
    assert client.get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        membership_add(project=world.campaign.project, user=person, role=Role.ANNOTATOR)
    assert client.get(url).status_code == 200


def test_a_removed_member_is_refused_the_image_on_the_next_request(
        world, django_capture_on_commit_callbacks):
    person = UserFactory()
    membership = membership_add(project=world.campaign.project, user=person,
                                role=Role.ANNOTATOR)
    client = Client()
    client.force_login(person)
    url = _display_url(world)
    assert client.get(url).status_code == 200  # the roles are now cached
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        membership_remove(membership=membership)
    assert client.get(url).status_code == 404


def test_a_changed_role_and_rows_deleted_in_bulk_take_effect_at_once(world):
    person = UserFactory()
    project = world.campaign.project
    blob_id = world.runs[0].images.get().blob_id
    membership = membership_add(project=project, user=person, role=Role.ANNOTATOR)
    assert project_blob_access(person, project.pk, blob_id).roles == {Role.ANNOTATOR}
    membership_change_role(membership=membership, role=Role.SCIENTIST)
    assert project_blob_access(person, project.pk, blob_id).original
    # A queryset's delete (and a cascade, a project's or a user's) sends each row's signal.
    Membership.objects.filter(user=person).delete()
    assert not project_blob_access(person, project.pk, blob_id).display
    project.members.add(person, through_defaults={"role": Role.ANNOTATOR})  # rows in bulk
    assert project_blob_access(person, project.pk, blob_id).display
    project.members.remove(person)
    assert not project_blob_access(person, project.pk, blob_id).display
    person.projects.add(project, through_defaults={"role": Role.ANNOTATOR})
    assert project_blob_access(person, project.pk, blob_id).display
    project.members.clear()
    assert not project_blob_access(person, project.pk, blob_id).display


def test_other_users_cached_answers_are_kept(world, django_assert_num_queries):
    """A change renews only its own user's generation: the others' answers stay cached, and a
    cached answer costs no query."""
    project = world.campaign.project
    blob_id = world.runs[0].images.get().blob_id
    assert project_blob_access(world.owner, project.pk, blob_id).original
    Membership.objects.create(project=ProjectFactory(), user=UserFactory(), role=Role.OWNER)
    with django_assert_num_queries(0):
        assert project_blob_access(world.owner, project.pk, blob_id).original


def test_an_answer_computed_before_the_change_committed_is_not_kept(world, monkeypatch):
    """A request that read the memberships just before a change committed stores its answer
    under the generation it read first, which the change has since renewed."""
    import evalhub.blobs.access as access

    person = UserFactory()
    project = world.campaign.project
    blob_id = world.runs[0].images.get().blob_id
    real_roles = access._roles

    def roles_then_membership_added(*args, **kwargs):
        roles = real_roles(*args, **kwargs)  # the rows as they were: no membership
        Membership.objects.create(project=project, user=person, role=Role.ANNOTATOR)
        return roles

    monkeypatch.setattr(access, "_roles", roles_then_membership_added)
    assert not project_blob_access(person, project.pk, blob_id).display
    monkeypatch.setattr(access, "_roles", real_roles)
    assert project_blob_access(person, project.pk, blob_id).display
