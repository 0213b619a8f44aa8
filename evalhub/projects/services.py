"""Write-side operations on projects and their members.

Rules: who may create a project is configurable (``EVALHUB_PROJECT_CREATORS``: ``staff``, the
default, means staff users and users given the ``projects.add_project`` permission;
``anyone`` means every signed-in user). Only owners add, change or remove members (the API's
write roles); a project always keeps at least one owner; a non-staff owner adds only people
they already share a project with, and is told the same thing whether another username exists
or not. Adding someone who is already a member is refused: their role changes only through
``membership_change_role``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify

from evalhub.core.errors import EvalHubError, NameTaken
from evalhub.core.fixed import fixed_fields_check
from evalhub.projects.models import Membership, Project, Role


@transaction.atomic
def project_create(
    *, name: str, owner: AbstractBaseUser, description: str = "", slug: str | None = None
) -> Project:
    """Create a project and make ``owner`` its first owner."""
    slug = slug or slugify(name)[:100]
    if not slug:
        raise EvalHubError(f"Project name {name!r} gives an empty slug; choose another name.")
    if Project.objects.filter(slug=slug).exists():
        # 409 duplicate, as every name already taken (docs/api.md), the slug made from the
        # name included: the API names ``slug``, the page the field that made it.
        raise NameTaken("slug", f"A project with slug {slug!r} already exists.")
    project = Project.objects.create(name=name, slug=slug, description=description)
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


class MembershipRefused(EvalHubError):
    """The membership change would break a project rule (409)."""

    http_status = 409


class NotAllowed(EvalHubError):
    """The caller may not do this (403)."""

    http_status = 403


def may_create_projects(user: AbstractBaseUser) -> bool:
    if settings.EVALHUB_PROJECT_CREATORS == "anyone":
        return user.is_authenticated
    return user.is_staff or user.has_perm("projects.add_project")


def project_create_by(*, user: AbstractBaseUser, name: str, description: str = "",
                      slug: str | None = None) -> Project:
    """A user creates a project (and owns it), if ``EVALHUB_PROJECT_CREATORS`` lets them."""
    if not may_create_projects(user):
        raise NotAllowed("Only staff and users given the permission may create projects; "
                         "ask an administrator.")
    return project_create(name=name, owner=user, description=description, slug=slug)


def member_candidate(*, actor: AbstractBaseUser, username: str) -> AbstractBaseUser:
    """The user an owner wants to add. Staff may add anyone; other owners only people they
    share a project with, so the answer never tells whether an unrelated username exists."""
    users = get_user_model().objects.filter(username=username, is_active=True)
    if not actor.is_staff:
        users = users.filter(memberships__project__memberships__user=actor).distinct()
    user = users.first()
    if user is None and actor.is_staff:  # staff may be told: they can see every account
        raise EvalHubError(f"There is no active user named {username!r}.")
    if user is None:
        raise EvalHubError(f"You can add {username!r} only if you already share a project "
                           "with them; an administrator can add anyone.")
    return user


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise EvalHubError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")


def _owners_left(project_id: int, *, without: Membership) -> int:
    # Locked: two owners demoting each other at once must not leave none.
    owners = list(Membership.objects.select_for_update().filter(
        project_id=project_id, role=Role.OWNER).values_list("pk", flat=True))
    return len([pk for pk in owners if pk != without.pk])


def membership_fixed_check(*, membership: Membership, changes: Mapping[str, Any]) -> None:
    """A membership's project and user are what it is: only its role changes. Another project
    or username sent with a change is refused under its field (it was silently ignored)."""
    fixed_fields_check(
        current={"project": membership.project_id, "username": membership.user.get_username()},
        changes=changes,
        message="A membership's {field} is fixed: only its role changes (add the person to "
                "the other project, or add the other person, instead).")


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    _check_role(role)
    if (membership.role == Role.OWNER and role != Role.OWNER
            and _owners_left(membership.project_id, without=membership) == 0):
        raise MembershipRefused("A project keeps at least one owner: make someone else an "
                                "owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Take ``membership``'s user out of the project: off the annotator lists of its campaigns
    too (a list names only members; re-adding the person later must not give back an old
    assignment), and the pairs they hold back to the others now.

    An empty annotator list lets every member rate (``Campaign.annotators``): removing the only
    annotator named for a campaign that can still be rated (neither closed nor failed) would
    open it to everyone, so that removal is refused (nothing changed) until the owner names
    its other annotators or closes it. (Pausing it instead would only defer the opening to
    whoever resumes it.)"""
    # Imported here: campaigns depend on projects.
    from evalhub.campaigns.models import Campaign, CampaignStatus, Lease
    from evalhub.campaigns.services import leases_expire

    if (membership.role == Role.OWNER
            and _owners_left(membership.project_id, without=membership) == 0):
        raise MembershipRefused("A project keeps at least one owner: make someone else an "
                                "owner first.")
    # The membership first: an owner naming this person on a campaign's list at the same time
    # (campaign_set_annotators locks the memberships it checks) either commits before, and its
    # new place on the list is seen and removed below, or finds them no longer a member.
    if not Membership.objects.select_for_update().filter(pk=membership.pk).exists():
        return  # removed meanwhile, by another request
    assigned = Campaign.annotators.through.objects.filter(
        campaign__project_id=membership.project_id, user_id=membership.user_id)
    # Locked: an owner editing a campaign's list at the same time sees the removal or waits,
    # and two removals from one campaign's list queue on its row (the "only annotator" check).
    # no_key: the join locks the campaign rows too, and a plain FOR UPDATE there blocks the
    # key-share lock of every lease or vote written meanwhile, whose task the lease expiry
    # below then waits for: a deadlock.
    campaign_ids = list(assigned.select_for_update(no_key=True)
                        .values_list("campaign_id", flat=True))
    sole = list(Campaign.objects.filter(pk__in=campaign_ids).exclude(
        status__in=(CampaignStatus.CLOSED, CampaignStatus.FAILED))
        .annotate(named=Count("annotators")).filter(named=1)
        .order_by("name").values_list("name", flat=True))
    if sole:
        names = ", ".join(repr(name) for name in sole)
        raise MembershipRefused(
            f"{membership.user.get_username()} is the only annotator named for campaign"
            f"{'s' if len(sole) > 1 else ''} {names}; removing them would let every member of "
            "the project rate it. Name its other annotators (or close it) first.")
    assigned.delete()
    membership.delete()
    # The pairs they held in the project's campaigns go back to the others now.
    leases_expire(Lease.objects.filter(campaign__project_id=membership.project_id,
                                       annotator_id=membership.user_id))


class AlreadyMember(MembershipRefused):
    """Adding someone who is already a member (409): adding never changes a role."""


def membership_add(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add ``user`` to ``project`` as ``role``; someone already a member is refused, unchanged.

    "Add" must not quietly change a role: re-adding an owner as an annotator would demote them
    without the check that a project keeps an owner (``membership_change_role`` makes it).
    """
    _check_role(role)
    # get_or_create: two owners adding the same person at once get one membership, and the
    # second is told it exists rather than hitting the unique constraint.
    membership, created = Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": role})
    if not created:
        raise AlreadyMember(f"{user.get_username()} is already a member ({membership.role}); "
                            "change their role instead of adding them again.")
    return membership


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` ``role`` in ``project`` (adding or changing the membership), for setups
    that state who should be a member (the demo data). An owner adding someone goes through
    ``membership_add``, which never changes an existing role."""
    _check_role(role)
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
