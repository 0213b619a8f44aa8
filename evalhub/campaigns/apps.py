from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "evalhub.campaigns"
    label = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.campaigns.building.active import schedule_priority_refresh
        from evalhub.campaigns.signals import vote_recorded

        def on_vote(sender, campaign, **kwargs) -> None:
            schedule_priority_refresh(campaign=campaign)

        vote_recorded.connect(on_vote, weak=False, dispatch_uid="campaigns.active_priorities")
