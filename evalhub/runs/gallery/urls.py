"""The gallery's pages, mounted at the site root (evalhub/config/urls.py)."""

from django.urls import path

from evalhub.runs.gallery import views

urlpatterns = [
    path("gallery/<id:project_id>/", views.gallery, name="gallery"),
    path("gallery/images/<id:image_id>/", views.image_page, name="gallery-image"),
]
