from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "evalhub.projects"
    label = "projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Membership changes renew the member's cached media access (blobs/access.py).
        from evalhub.projects import receivers  # noqa: F401
