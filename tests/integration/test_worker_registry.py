"""Every task name the code sends is in a running worker's registry (``celery inspect
registered``): what the worker really discovered, not what the test process imported."""

import pytest

from evalhub import celery_app
from tests.config.test_task_names import enqueued_task_names

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_running_worker_has_registered_every_task_name_the_code_sends(worker):
    replies = celery_app.control.inspect(destination=[worker.nodename], timeout=10).registered()
    assert replies, f"{worker.nodename} did not answer\n{worker.log()}"
    registered = {entry.split(" ")[0] for entry in replies[worker.nodename]}
    sent = enqueued_task_names()
    assert "evalhub.blobs.build_tiles" in sent
    assert {name: where for name, where in sent.items() if name not in registered} == {}
