from django.urls import path, re_path

from evalhub.campaigns.page import views

urlpatterns = [
    path("rate/<id:campaign_id>/", views.rate_page, name="rate"),
    re_path(r"^rate/tiles/(?P<token>[0-9a-f]{64})\.dzi$", views.tile_descriptor,
            name="rate-tiles-dzi"),
    re_path(r"^rate/tiles/(?P<token>[0-9a-f]{64})_files/(?P<level>\d{1,2})/"
            r"(?P<col>\d{1,5})_(?P<row>\d{1,5})\.(?P<ext>jpeg|webp)$",
            views.tile_image, name="rate-tiles-tile"),
    re_path(r"^rate/tiles/(?P<token>[0-9a-f]{64})_files/(?P<level>\d{1,2})/"
            r"whole\.(?P<ext>jpeg|webp)$", views.tile_whole, name="rate-tiles-whole"),
]
