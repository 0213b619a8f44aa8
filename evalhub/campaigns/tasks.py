from celery import shared_task

from evalhub.campaigns.building import campaign_build_tasks
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
