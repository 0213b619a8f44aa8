"""HTML pages of the evaluation app, mounted at the site root."""

urlpatterns: list = []
