"""REST endpoints of the evaluation app, mounted under /api/v1/."""

urlpatterns: list = []
