"""Byte ranges of a video rendition (blobs/views.py ``_byte_range_response``), one
specification run against both storages: the filesystem and S3 object storage (moto's real
HTTP S3 server, in this process). On S3 the bucket is asked for the requested span only, not
the whole object, since a <video> sends a range request each time it plays on or seeks."""

from __future__ import annotations

import uuid

import boto3
import pytest
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.views import MEDIA_CACHE_CONTROL, video_url
from tests.blobs.test_video_media import _video_world
from tests.ports import free_port

pytestmark = pytest.mark.django_db

KEYS = {"access_key": "test", "secret_key": "test", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free local port, for this module's tests."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["filesystem", "s3"])
def storage(request, settings):
    """The media storage: the suite's filesystem one, or S3Storage on a fresh bucket."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"media-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEYS["access_key"],
                     aws_secret_access_key=KEYS["secret_key"], region_name=KEYS["region_name"]
                     ).create_bucket(Bucket=bucket)
        settings.STORAGES = {**settings.STORAGES, "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "file_overwrite": False,
                        "querystring_auth": True, **KEYS}}}
    settings.EVALHUB_MEDIA_DELIVERY = "signed" if request.param == "s3" else "stream"
    return request.param


@pytest.fixture
def gets(storage):
    """Each GetObject the storage's S3 client sends from now on: (its ``Range`` header, the
    number of bytes the bucket answers with). Empty on the filesystem."""
    sent: list[list] = []
    if storage == "s3":
        events = default_storage.connection.meta.client.meta.events

        def before_send(request, **kwargs):
            header = request.headers.get("Range")  # bytes, as botocore sends it
            sent.append([header.decode() if header else None, None])

        def after_call(parsed, **kwargs):
            sent[-1][1] = parsed["ContentLength"]

        events.register("before-send.s3.GetObject", before_send)
        events.register("after-call.s3.GetObject", after_call)
    return sent


@pytest.fixture
def rendition(storage, client):
    """A member signed in, a rendition written by the worker to the storage: its URL and bytes
    (read back through the storage, not through the view)."""
    world = _video_world()
    video = VideoBlob.objects.first()
    with default_storage.open(video.rendition.name, "rb") as handle:
        data = handle.read()
    assert len(data) > 300  # enough to tell a span from the whole object
    client.force_login(world.annotator)
    return video_url(video, world.campaign.project_id), data, video


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),  # from 100 to the end
    ("bytes=-50", -50, None),  # the last 50 bytes
    ("bytes=10-999999999", 10, None),  # an end past the file: up to its last byte
])
def test_a_range_is_answered_206_with_exactly_those_bytes(client, rendition, header, first,
                                                           last):
    url, data, _ = rendition
    size = len(data)
    start = first % size
    end = size - 1 if last is None else last
    response = client.get(url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert _body(response) == data[start:end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Content-Type"] == "video/webm"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == MEDIA_CACHE_CONTROL
    assert not response.has_header("Location")  # never redirected, whatever the storage


def test_without_a_range_the_whole_rendition_is_sent(client, rendition):
    url, data, _ = rendition
    response = client.get(url)
    assert response.status_code == 200 and _body(response) == data
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "video/webm"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == MEDIA_CACHE_CONTROL
    assert not response.has_header("Content-Range") and not response.has_header("Location")


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{far}", "bytes=-0"])
def test_a_range_outside_the_rendition_is_416_with_its_size(client, rendition, header):
    url, data, _ = rendition
    size = len(data)
    response = client.get(url, HTTP_RANGE=header.format(size=size, far=size + 10))
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


def test_a_head_request_of_a_range_has_its_headers_and_no_body(client, rendition):
    url, data, _ = rendition
    response = client.head(url, HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert _body(response) == b""
    response.close()


def test_a_rendition_missing_from_the_storage_is_404(client, rendition):
    url, _, video = rendition
    default_storage.delete(video.rendition.name)
    assert client.get(url, HTTP_RANGE="bytes=0-99").status_code == 404
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_on_s3_the_bucket_is_asked_for_the_requested_span_only(client, rendition, gets):
    url, data, _ = rendition
    size = len(data)
    for header in ("bytes=0-99", "bytes=100-", "bytes=-50"):
        _body(client.get(url, HTTP_RANGE=header))
    assert gets == [
        ["bytes=0-99", 100],  # not the whole object
        [f"bytes=100-{size - 1}", size - 100],
        [f"bytes={size - 50}-{size - 1}", 50],
    ]
    assert client.get(url, HTTP_RANGE=f"bytes={size}-").status_code == 416
    assert len(gets) == 3  # an unsatisfiable range reads nothing
