"""REST endpoints of the leaderboards app, mounted under /api/v1/."""

urlpatterns: list = []
