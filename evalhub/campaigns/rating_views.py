"""The two hot annotator endpoints as plain Django views: next/ and votes/.

Every annotator's every vote passes here, so these skip Django REST framework's request
machinery (content negotiation, parser and renderer classes, serializer fields, a query to
authenticate the token) and hand the rating service the raw credentials: on PostgreSQL the
whole request is then one database call. They answer exactly like the DRF endpoints around
them: API-token, rating-token (the rating page's, rating_tokens.py) or session authentication
(session requests pass the CSRF check), JSON bodies,
``{"detail": ...}`` errors and DRF-style ``{field: [message]}`` validation errors.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from evalhub.campaigns.leasing import LeaseNotYours
from evalhub.campaigns.raters import BadCredentials, NoSuchCampaign, Rater, rater_user
from evalhub.campaigns.rating import Vote, rate_next, rate_vote
from evalhub.campaigns.rating_tokens import SCHEME as RATING_SCHEME
from evalhub.campaigns.rating_tokens import rating_token_user_id
from evalhub.campaigns.voting import DISPLAYED_ANSWERS, VoteConflict
from evalhub.core.errors import EvalHubError

REQUIRED = "This field is required."


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def _csrf_refusal(request: HttpRequest) -> str | None:
    """Django's CSRF verdict for a session-authenticated request (None when it passes)."""
    check = CsrfViewMiddleware(lambda req: None)
    check.process_request(request)
    refused = check.process_view(request, None, (), {})
    return None if refused is None else "CSRF Failed: the page's CSRF token is missing or wrong."


def _header_credential(scheme: str, key: str) -> str:
    key = key.strip()
    if not key or " " in key:
        raise Refused(401, {"detail": "Invalid token header."}, {"WWW-Authenticate": scheme})
    return key


def rater_from_request(request: HttpRequest, campaign_id: int) -> Rater:
    """Who is rating: an Authorization header (API or rating token) first, else the session."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "token":
            return Rater(token=_header_credential("Token", key))
        if scheme.lower() == RATING_SCHEME.lower():
            # A bad token raises BadCredentials, answered 401 with the Rating challenge.
            token = _header_credential(RATING_SCHEME, key)
            return Rater(user_id=rating_token_user_id(token, campaign_id=campaign_id))
    if request.user.is_authenticated:
        if (reason := _csrf_refusal(request)) is not None:
            raise Refused(403, {"detail": reason})
        return Rater(user=request.user)
    raise Refused(401, {"detail": "Authentication credentials were not provided."},
                  {"WWW-Authenticate": "Token"})


def _checked_input(rater: Rater, parse):
    """Parse the input; bad credentials are answered 401 before any complaint about the input.

    (They are otherwise checked inside the one database call that does the work.)
    """
    try:
        return parse()
    except Refused:
        rater_user(rater)
        raise


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, {"detail": f"JSON parse error - {exc}"}) from exc
    if not isinstance(data, dict):
        raise Refused(400, {"non_field_errors": ["Expected a JSON object."]})
    return data


def _uuid(value: Any, field: str, errors: dict[str, list[str]]) -> uuid.UUID | None:
    if value is None:
        errors[field] = [REQUIRED]
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        errors[field] = ["Must be a valid UUID."]
        return None


def _exclude(value: Any, errors: dict[str, list[str]]) -> set[uuid.UUID]:
    if value is None:
        return set()
    if not isinstance(value, list):
        errors["exclude"] = [f'Expected a list of items but got type "{type(value).__name__}".']
        return set()
    leases = set()
    for item in value:
        if (lease := _uuid(item, "exclude", errors)) is not None:
            leases.add(lease)
    return leases


def _answers(value: Any, errors: dict[str, list[str]]) -> dict[str, str]:
    if value is None:
        errors["answers"] = [REQUIRED]
        return {}
    if not isinstance(value, dict):
        errors["answers"] = [
            f'Expected a dictionary of items but got type "{type(value).__name__}".']
        return {}
    wrong = [f'"{answer}" is not a valid choice.' for answer in value.values()
             if answer not in DISPLAYED_ANSWERS]
    if wrong:
        errors["answers"] = wrong
    return value


def _latency(value: Any, errors: dict[str, list[str]]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors["latency_ms"] = ["A valid integer is required."]
        return None
    if value < 0:
        errors["latency_ms"] = ["Ensure this value is greater than or equal to 0."]
    return value


def parse_next(data: dict[str, Any]) -> set[uuid.UUID]:
    """The leases the page already shows (not to be served again)."""
    errors: dict[str, list[str]] = {}
    exclude = _exclude(data.get("exclude"), errors)
    if errors:
        raise Refused(400, errors)
    return exclude


def parse_vote(data: dict[str, Any]) -> tuple[Vote, bool, set[uuid.UUID]]:
    """The vote, whether the next task is wanted, and the leases the page already shows."""
    errors: dict[str, list[str]] = {}
    client_id = _uuid(data.get("client_id"), "client_id", errors)
    lease_id = _uuid(data.get("lease"), "lease", errors)
    answers = _answers(data.get("answers"), errors)
    latency_ms = _latency(data.get("latency_ms"), errors)
    wanted = data.get("next")
    if wanted is not None and not isinstance(wanted, dict):
        errors["next"] = ["Expected an object such as {\"exclude\": [...]}."]
        wanted = None
    exclude = _exclude(wanted.get("exclude"), errors) if wanted is not None else set()
    if errors:
        raise Refused(400, errors)
    return Vote(client_id, lease_id, answers, latency_ms), wanted is not None, exclude


def _challenge(request: HttpRequest) -> str:
    """The scheme to name in WWW-Authenticate: the one the request tried, Token by default."""
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    return RATING_SCHEME if scheme.lower() == RATING_SCHEME.lower() else "Token"


def _answer(handler):
    """Run the handler; turn refusals and domain errors into the API's JSON answers."""

    def view(request: HttpRequest, campaign_id: int) -> JsonResponse:
        try:
            status, body = handler(request, campaign_id)
        except Refused as refused:
            response = JsonResponse(refused.body, status=refused.status)
            for name, value in refused.headers.items():
                response[name] = value
            return response
        except BadCredentials as exc:
            response = JsonResponse({"detail": exc.message}, status=401)
            response["WWW-Authenticate"] = _challenge(request)
            return response
        except NoSuchCampaign as exc:
            return JsonResponse({"detail": exc.message}, status=404)
        except LeaseNotYours as exc:
            return JsonResponse({"detail": exc.message}, status=403)
        except VoteConflict as exc:
            return JsonResponse({"detail": exc.message}, status=409)
        except EvalHubError as exc:
            return JsonResponse({"detail": exc.message, "errors": exc.details}, status=400)
        return JsonResponse(body, status=status)

    view.__doc__ = handler.__doc__
    return csrf_exempt(require_POST(view))  # CSRF is checked for session raters only


@_answer
def rate_next_view(request: HttpRequest, campaign_id: int) -> tuple[int, dict[str, Any]]:
    """POST next/ {"exclude": [lease, ...]}: lease the next task (201), or say none is left."""
    rater = rater_from_request(request, campaign_id)
    exclude = _checked_input(rater, lambda: parse_next(_json_body(request)))
    payload = rate_next(rater=rater, campaign_id=campaign_id, exclude=exclude)
    return (200 if payload.get("done") else 201), payload


@_answer
def rate_vote_view(request: HttpRequest, campaign_id: int) -> tuple[int, dict[str, Any]]:
    """POST votes/: store a vote once, 201 the first time and 200 with the same body for a retry.

    With ``next`` in the body the response also carries the following task, so a page or a
    script rates with one round trip per vote.
    """
    rater = rater_from_request(request, campaign_id)
    vote, want_next, exclude = _checked_input(rater, lambda: parse_vote(_json_body(request)))
    outcome = rate_vote(rater=rater, campaign_id=campaign_id, vote=vote, want_next=want_next,
                        exclude=exclude)
    body = {"client_id": str(outcome.result.client_id), "recorded": True,
            "progress": outcome.progress}
    if want_next:
        body["next"] = outcome.next
    return (201 if outcome.result.created else 200), body
