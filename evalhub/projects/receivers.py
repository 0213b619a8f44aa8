"""Signal receivers of projects: a change of membership renews the member's media access.

Media access answers are cached per user (evalhub/blobs/access.py); each carries the user's
access generation, which these receivers renew whenever one of the user's ``Membership`` rows is
created, changed or deleted (a project's or a user's deletion included: the cascade sends
``post_delete`` for each membership), so the change takes effect on the next request.

The generation is renewed at once (the change is seen inside its own transaction) and again
when the transaction commits: a request that read the memberships just before the commit
stores its answer under the generation that the second renewal replaces.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from evalhub.projects.models import Membership, Project


def renew_access(*user_ids: int | None) -> None:
    """Renew the media access generation of ``user_ids`` now and when the transaction
    commits (at once outside a transaction)."""
    from evalhub.blobs.access import access_generation_renew

    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    for user_id in wanted:
        access_generation_renew(user_id)
    if wanted and transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: [access_generation_renew(u) for u in wanted])


@receiver(pre_save, sender=Membership, dispatch_uid="projects.membership_user_moved")
def on_membership_user_moved(sender: type[Membership], instance: Membership,
                             update_fields: Any = None, **kwargs: Any) -> None:
    """A membership given to another user (the admin can): the previous user loses it."""
    if instance.pk is None or (update_fields is not None and "user" not in update_fields
                               and "user_id" not in update_fields):
        return
    before = Membership.objects.filter(pk=instance.pk).values_list("user_id", flat=True).first()
    if before is not None and before != instance.user_id:
        renew_access(before)


@receiver(post_save, sender=Membership, dispatch_uid="projects.membership_saved")
def on_membership_saved(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    renew_access(instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="projects.membership_deleted")
def on_membership_deleted(sender: type[Membership], instance: Membership,
                          **kwargs: Any) -> None:
    renew_access(instance.user_id)


@receiver(m2m_changed, sender=Project.members.through, dispatch_uid="projects.members_changed")
def on_members_changed(sender: Any, instance: Any, action: str, reverse: bool,
                       pk_set: set[int] | None, **kwargs: Any) -> None:
    """``project.members.add/remove/clear`` (and ``user.projects...``) write the rows in bulk,
    without ``post_save`` or ``post_delete``."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # from a user: their own memberships changed
        renew_access(instance.pk)
    elif action == "pre_clear":  # pk_set is empty: the members are those still there
        renew_access(*instance.memberships.values_list("user_id", flat=True))
    else:
        renew_access(*(pk_set or ()))
