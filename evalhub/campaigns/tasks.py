from celery import shared_task

from evalhub.campaigns.building.pairs import campaign_build_tasks
from evalhub.campaigns.models import Campaign, CampaignStatus


@shared_task(name="evalhub.campaigns.build_tasks")
def build_campaign_tasks(campaign_id: int) -> int:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    try:
        return campaign_build_tasks(campaign=campaign)
    except Exception as exc:
        Campaign.objects.filter(pk=campaign_id).update(
            status=CampaignStatus.FAILED, build_report={"error": str(exc)})
        raise


@shared_task(name="evalhub.campaigns.refresh_priorities")
def refresh_campaign_priorities(campaign_id: int) -> int:
    from evalhub.campaigns.building.active import campaign_refresh_priorities

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return len(campaign_refresh_priorities(campaign=campaign))
