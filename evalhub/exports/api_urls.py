"""REST endpoints of the exports app, mounted under /api/v1/."""

urlpatterns: list = []
