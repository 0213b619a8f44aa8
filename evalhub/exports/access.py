"""Who may export a campaign's votes: owners and scientists of its project.

The campaign pages' rule (``campaigns.manage.access.campaign_for_science``), read by the export
API, the rankings export and the export page alike: an id never used and another project's
campaign answer the same 404 (the answer does not reveal that the campaign exists), an
annotator of the campaign's project 403 with the reason.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from evalhub.campaigns.manage.access import campaign_for_science
from evalhub.campaigns.models import Campaign


def campaign_for_export(*, user: AbstractBaseUser | AnonymousUser, campaign_id: int
                        ) -> tuple[Campaign, str]:
    """The campaign (with its project) and the caller's role in its project (owner or
    scientist); else 404, or 403 for the project's annotators."""
    try:
        return campaign_for_science(user=user, campaign_id=campaign_id)
    except PermissionDenied as exc:  # the reason in the exports' words
        raise PermissionDenied("Only owners and scientists may export preference data.") from exc
