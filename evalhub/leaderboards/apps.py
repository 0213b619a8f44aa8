from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "evalhub.leaderboards"
    label = "leaderboards"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.campaigns.signals import vote_recorded
        from evalhub.leaderboards.receivers import on_vote_recorded

        vote_recorded.connect(on_vote_recorded, dispatch_uid="leaderboards.on_vote_recorded")
