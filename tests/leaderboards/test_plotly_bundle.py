"""The dashboards load plotly.js's cartesian bundle, the smallest that draws their traces, and
whitenoise sends it compressed."""

import gzip
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from evalhub.leaderboards import charts

BUNDLE = "vendor/plotly/plotly-cartesian-4.1.1.min.js"


def test_every_trace_the_charts_draw_is_in_the_cartesian_bundle():
    # plotly.js-cartesian-dist: scatter, bar, box, heatmap, histogram(2d), contour, pie,
    # violin, ... (the basic bundle lacks heatmap, which the win-rate matrices need).
    drawn = set(re.findall(r"go\.(\w+)\(", Path(charts.__file__).read_text())) - {"Figure"}
    assert drawn <= {"Scatter", "Bar", "Heatmap"}, drawn
    source = Path(finders.find(BUNDLE)).read_text(encoding="utf-8")
    assert "plotly.js (cartesian - minified) v4.1.1" in source[:200]
    for trace in ("scatter", "bar", "heatmap"):
        assert f'moduleType:"trace",name:"{trace}"' in source, trace


@pytest.mark.django_db
def test_the_dashboard_references_the_bundle_and_whitenoise_sends_it_gzipped(
        settings, tmp_path, client, project, scientist):
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(project=project)
    client.force_login(scientist)
    page = client.get(f"/dashboard/campaigns/{campaign.id}/")
    assert page.status_code == 200
    assert f'<script src="/static/{BUNDLE}"></script>' in page.content.decode()

    # As deployed (and as `make run` does): collectstatic writes the compressed copies,
    # whitenoise picks the one the browser accepts.
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    plain_size = (tmp_path / "static" / BUNDLE).stat().st_size
    compressed = Client().get(f"/static/{BUNDLE}", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert compressed.status_code == 200
    assert compressed["Content-Encoding"] == "gzip"
    body = b"".join(compressed.streaming_content)
    assert len(body) < plain_size / 3 and len(gzip.decompress(body)) == plain_size
    assert "public" in compressed["Cache-Control"]  # the same file for everyone
    assert compressed["Content-Type"].startswith("text/javascript")
    plain = Client().get(f"/static/{BUNDLE}")
    assert "Content-Encoding" not in plain
    assert plain_size < 1.6e6 < 4.8e6  # the full bundle was 4.8 MB
    assert settings.STORAGES["staticfiles"]["BACKEND"].startswith("whitenoise.storage.Compressed")
