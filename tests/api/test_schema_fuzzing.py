"""Schemathesis against a live server, once per role: the OpenAPI schema tells the truth.

For every operation of ``/api/schema/`` schemathesis generates requests (valid ones from the
schema, aimed at the world's real objects half of the time, random ids otherwise) and sends
them with the role's API token to pytest-django's live server on the test database
(PostgreSQL under ``make test``). Every answer must be:

- no server error (no 5xx of any kind);
- a status code the schema documents for that operation;
- a body that matches the schema documented for that status (and content type).

Roles: an owner, a scientist and an annotator of the world's project, and an outsider (signed
in, no role anywhere). Examples per operation are few (``EXAMPLES``): the run is a smoke test of
the schema's honesty on every endpoint, not a search for deep bugs, and must stay fast.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from evalhub.campaigns.serving.rating import rate_next
from evalhub.projects.models import Role
from evalhub.runs.models import ReferenceSet
from tests.builders import build_campaign
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

EXAMPLES = 3
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

# Operations that are not fuzzed, and why:
# - the token endpoint checks passwords: random sign-ins would lock the live server's address
#   out through django-axes (429 is documented; tests/core covers the endpoint);
# - the exports stream a file (CSV, JSONL, Parquet, ZIP; the rankings as JSON Lines): their
#   bodies are not JSON and their parameters are checked by tests/exports.
EXCLUDED = {("POST", "/api/v1/auth/token/"),
            ("GET", "/api/v1/campaigns/{campaign_id}/export/"),
            ("GET", "/api/v1/campaigns/{campaign_id}/export/rankings/")}


@dataclass
class World:
    """One built campaign and what the roles act on; ids per path parameter."""

    tokens: dict[str, str]
    ids: dict[str, int | str] = field(default_factory=dict)


@pytest.fixture
def world(db) -> World:
    built = build_campaign(runs=2, prompts=2, annotators=1)
    project = built.campaign.project
    outsider = UserFactory()
    MembershipFactory(project=project, role=Role.ANNOTATOR)  # someone to change or remove
    reference_set = ReferenceSet.objects.create(project=project, name="references")
    lease = rate_next(annotator=built.annotator, campaign_id=built.campaign.pk)["lease"]
    users = {"owner": built.owner, "scientist": built.scientist,
             "annotator": built.annotator, "outsider": outsider}
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    run = built.runs[0]
    image = run.images.first()
    ids = {
        "projects": project.pk, "memberships": project.memberships.last().pk,
        "prompt-sets": run.prompt_set_id, "prompts": built.prompts[0].pk,
        "models": run.checkpoint.model_id, "checkpoints": run.checkpoint_id,
        "runs": run.pk, "images": image.pk, "reference-sets": reference_set.pk,
        "campaigns": built.campaign.pk, "rate": built.campaign.pk, "lease": lease,
    }
    return World(tokens=tokens, ids=ids)


def _real_path_parameters(operation, ids: dict) -> dict:
    """The world's object for each path parameter of ``operation`` (by the path's resource)."""
    path = operation.path
    resource = re.match(r"/api/v1/([^/]+)/", path).group(1)
    values = {}
    for parameter in re.findall(r"{(\w+)}", path):
        if parameter == "lease_id":
            values[parameter] = ids["lease"]
        elif parameter == "campaign_id":
            values[parameter] = ids["campaigns"]
        elif resource in ids:
            values[parameter] = ids[resource]
    return values


def _operations(schema) -> list:
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletes last: the other operations then still find the world's objects.
    return sorted((op for op in operations if (op.method.upper(), op.path) not in EXCLUDED),
                  key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


ROLES = ["annotator", "outsider", "scientist", "owner"]  # the owner last: it may delete


def _fuzz(operation, strategy, base_url: str, headers: dict[str, dict]) -> tuple[int, dict]:
    """Send ``EXAMPLES`` generated requests of ``operation`` once per role; the number of
    requests sent, and the first failure per role."""
    failed: dict[str, str] = {}
    sent = 0

    @given(case=strategy)
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck), derandomize=True)
    def exercise(case):
        # Each generated request goes to every role: generating it is the costly part.
        nonlocal sent
        for role in ROLES:
            if role in failed:
                continue
            response = case.call(base_url=base_url, headers=headers[role], timeout=30)
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers[role])
            except (Exception, BaseExceptionGroup) as exc:
                failed[role] = str(exc)

    exercise()
    return sent, failed


def test_every_answer_to_every_role_is_documented_and_no_server_error(live_server, world):
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/",
        headers={"Authorization": f"Token {world.tokens['scientist']}"})
    headers = {role: {"Authorization": f"Token {token}"} for role, token in world.tokens.items()}
    failures: list[str] = []
    requests = 0
    started = time.process_time()  # the live server answers in this process: its CPU counts

    for operation in _operations(schema):
        real = _real_path_parameters(operation, world.ids)
        strategy = st.one_of(operation.as_strategy(path_parameters=real),
                             operation.as_strategy()) if real else operation.as_strategy()
        sent, failed = _fuzz(operation, strategy, live_server.url, headers)
        requests += sent
        failures += [f"{operation.method.upper()} {operation.path} as {role}: {message}"
                     for role, message in failed.items()]

    print(f"{requests} requests, {time.process_time() - started:.1f} s of CPU")
    assert requests >= len(ROLES) * 70  # every operation was exercised for every role
    assert not failures, f"{len(failures)} failure(s):\n\n" + "\n\n".join(failures)
