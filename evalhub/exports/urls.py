"""HTML pages of the exports app, mounted at the site root."""

urlpatterns: list = []
