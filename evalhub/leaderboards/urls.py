"""HTML pages of the leaderboards app, mounted at the site root."""

urlpatterns: list = []
