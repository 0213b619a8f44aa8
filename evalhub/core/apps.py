from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "evalhub.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.core.prepared import cache_long_statement_conversion
        from evalhub.core.receivers import connect_vote_counter

        connect_vote_counter()
        cache_long_statement_conversion()
